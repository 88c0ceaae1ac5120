import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backendGone, errorOf, hasCommand, pollUntil } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { sendCancelRequest } from '../support/wire.js';

const run = promisify(execFile);
const TENANTS = ['t1', 't2', 't3', 't4', 't5', 't6', 't7', 't8'];

let proxy: TestProxy;

beforeAll(async () => {
  proxy = await startTestProxy({
    pool: { mode: 'transaction', size: 4, acquireTimeoutMs: 20_000 },
    tenancy: { tenants: [...TENANTS.map((id) => ({ id })), { id: 'acme' }, { id: 'globex' }] },
  });
  for (const t of TENANTS) {
    await proxy.direct(`
      CREATE SCHEMA tenant_${t};
      CREATE TABLE tenant_${t}.marker (tenant text NOT NULL);
      INSERT INTO tenant_${t}.marker VALUES ('${t}');
      CREATE TABLE tenant_${t}.writes (id serial PRIMARY KEY, writer text NOT NULL);`);
  }
});
afterAll(async () => {
  await proxy?.close();
});


const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

describe('transaction pooling', () => {
  it('hundreds of clients of 8 tenants over 4 backends never see each other', async () => {
    const clients = await Promise.all(
      Array.from({ length: 160 }, async (_, i) => {
        const tenant = TENANTS[i % TENANTS.length] as string;
        return { tenant, client: await proxy.connect(tenant), timeout: String(1000 + i) };
      }),
    );
    try {
      // Each client sets a session setting of its own; transaction pooling must replay it wherever it runs.
      await Promise.all(clients.map(({ client, timeout }) => client.query(`SET statement_timeout = ${timeout}`)));
      const seen: string[] = [];
      await Promise.all(
        clients.map(async ({ tenant, client, timeout }) => {
          for (let round = 0; round < 12; round++) {
            const kind = pick(['read', 'write', 'tx', 'prepared']);
            if (kind === 'read') {
              const r = await client.query("SELECT tenant, current_setting('app.current_tenant_id') AS guc, current_setting('statement_timeout') AS st FROM marker");
              seen.push(`${tenant}:${r.rows[0].tenant}:${r.rows[0].guc}:${r.rows[0].st === `${timeout}ms` || r.rows[0].st === `${Number(timeout) / 1000}s` ? 'ok' : r.rows[0].st}`);
            } else if (kind === 'write') {
              await client.query('INSERT INTO writes (writer) VALUES ($1)', [tenant]);
            } else if (kind === 'tx') {
              await client.query('BEGIN');
              const r = await client.query('SELECT tenant FROM marker');
              await client.query('INSERT INTO writes (writer) VALUES ($1)', [r.rows[0].tenant]);
              await client.query('COMMIT');
            } else {
              const r = await client.query({ name: 'marker', text: 'SELECT tenant FROM marker WHERE tenant = $1 OR true', values: [tenant] });
              seen.push(`${tenant}:${r.rows[0].tenant}:${tenant}:ok`);
            }
          }
        }),
      );
      expect(seen.length).toBeGreaterThan(100);
      for (const entry of seen) {
        const [asked, got, guc, st] = entry.split(':');
        expect(got, entry).toBe(asked);
        expect(guc, entry).toBe(asked);
        expect(st, entry).toBe('ok');
      }
      for (const t of TENANTS) {
        const r = await proxy.direct(`SELECT count(*)::int AS n, count(*) FILTER (WHERE writer <> '${t}')::int AS foreign FROM tenant_${t}.writes`);
        expect(r.rows[0]?.foreign, t).toBe(0);
      }
      const backends = await proxy.direct(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = current_database() AND pid <> pg_backend_pid()",
      );
      expect(backends.rows[0]?.n).toBeGreaterThan(0);
      expect(backends.rows[0]?.n).toBeLessThanOrEqual(4);
    } finally {
      await Promise.all(clients.map(({ client }) => client.end()));
    }
  });

  it('a fresh client sees nothing another client left behind, and a SET lasts for its own client only', async () => {
    const a = await proxy.connect('t1');
    await a.query('SET statement_timeout = 4321');
    const mine = await a.query("SELECT current_setting('statement_timeout') AS st");
    expect(mine.rows[0].st).toBe('4321ms');
    await a.end();
    const b = await proxy.connect('t1');
    const theirs = await b.query("SELECT current_setting('statement_timeout') AS st, (SELECT count(*)::int FROM pg_prepared_statements WHERE name NOT LIKE 'pgfence_%') AS foreign_prepared");
    expect(theirs.rows[0]).toEqual({ st: '0', foreign_prepared: 0 });
    await b.end();
  });

  it('refuses session state that cannot follow a client, with 0A000, and allows ON COMMIT DROP', async () => {
    const c = await proxy.connect('t2');
    try {
      for (const sql of [
        'PREPARE p AS SELECT 1',
        'CREATE TEMP TABLE scratch (x int)',
        'DECLARE c CURSOR WITH HOLD FOR SELECT 1',
        'SELECT pg_advisory_lock(42)',
      ]) {
        const err = await errorOf(c.query(sql));
        expect(err.code, sql).toBe('0A000');
        expect(err.message, sql).toContain('transaction pooling');
      }
      await c.query('BEGIN');
      await c.query('CREATE TEMP TABLE scratch (x int) ON COMMIT DROP');
      await c.query('INSERT INTO scratch VALUES (1)');
      await c.query('SELECT pg_advisory_xact_lock(42)');
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
  });

  it('named prepared statements work with more clients than backends, across tenants', async () => {
    const clients = await Promise.all(TENANTS.map(async (t) => ({ t, c: await proxy.connect(t) })));
    try {
      for (let round = 0; round < 5; round++) {
        await Promise.all(
          clients.map(async ({ t, c }) => {
            const r = await c.query({ name: 'who', text: 'SELECT tenant, $1::int AS round FROM marker', values: [round] });
            expect(r.rows[0]).toEqual({ tenant: t, round });
          }),
        );
      }
    } finally {
      await Promise.all(clients.map(({ c }) => c.end()));
    }
  });

  it('times out a client waiting for a backend with 53300 while others hold all of them', async () => {
    const small = await startTestProxy({ pool: { mode: 'transaction', size: 1, acquireTimeoutMs: 500 } });
    try {
      const holder = await small.connect('acme');
      await holder.query('BEGIN');
      const waiter = await small.connect('globex').catch((e: pg.DatabaseError) => e);
      expect((waiter as pg.DatabaseError).code).toBe('53300');
      await holder.query('COMMIT');
      const later = await small.connect('globex');
      expect((await later.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(2);
      await later.end();
      await holder.end();
    } finally {
      await small.close();
    }
  });

  it('caps the backends one tenant may hold, while other tenants go on', async () => {
    const capped = await startTestProxy({ pool: { mode: 'transaction', size: 3, maxPerTenant: 1, acquireTimeoutMs: 700 } });
    try {
      const first = await capped.connect('acme');
      const second = await capped.connect('acme');
      const other = await capped.connect('globex');
      await first.query('BEGIN');
      await first.query('SELECT 1');
      const blocked = await errorOf(second.query('SELECT 1'));
      expect(blocked.code).toBe('53300');
      expect((await other.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(2);
      await first.query('COMMIT');
      await Promise.all([first.end(), second.end().catch(() => undefined), other.end()]);
    } finally {
      await capped.close();
    }
  });

  it('cancels the query of this client and no other', async () => {
    const victim = await proxy.connect('t3');
    const bystander = await proxy.connect('t4');
    // The bystander's query waits for a lock held here, so it is still running when the cancel
    // comes and after it, however slow the machine; it finishes when the lock goes.
    const locker = new pg.Client({ connectionString: proxy.directUrl });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE tenant_t4.marker IN ACCESS EXCLUSIVE MODE');
      const slow = victim.query('SELECT pg_sleep(10)').catch((e: pg.DatabaseError) => e);
      const calm = bystander.query('SELECT tenant AS done FROM marker');
      // Cancel once both run on their backends: the victim's sleeping, the bystander's waiting for the lock.
      await pollUntil('both queries running', async () => {
        const r = await proxy.direct<{ sleeping: number; waiting: number }>(
          `SELECT count(*) FILTER (WHERE query = 'SELECT pg_sleep(10)')::int AS sleeping,
                  count(*) FILTER (WHERE query = 'SELECT tenant AS done FROM marker' AND wait_event_type = 'Lock')::int AS waiting
             FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'`,
        );
        return r.rows[0]?.sleeping === 1 && r.rows[0].waiting === 1 ? true : undefined;
      });
      const key = victim as unknown as { processID: number; secretKey: number };
      await sendCancelRequest(proxy.port, key.processID, key.secretKey);
      expect(((await slow) as pg.DatabaseError).code).toBe('57014');
      await locker.query('COMMIT');
      expect((await calm).rows).toEqual([{ done: 't4' }]);
      expect((await victim.query('SELECT 1 AS ok')).rows[0].ok).toBe(1);
    } finally {
      await locker.end();
      await victim.end();
      await bystander.end();
    }
  });

  it('a client killed mid-transaction leaves nothing committed and its backend is closed', async () => {
    const c = await proxy.connect('t5');
    await c.query('BEGIN');
    await c.query("INSERT INTO writes (writer) VALUES ('ghost')");
    const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    expect(await backendGone(proxy, pid)).toBe(true);
    const ghosts = await proxy.direct("SELECT count(*)::int AS n FROM tenant_t5.writes WHERE writer = 'ghost'");
    expect(ghosts.rows[0]?.n).toBe(0);
  });
});

const havePgbench = await hasCommand('pgbench');

describe.skipIf(!havePgbench)('pgbench through transaction pooling', () => {
  it('runs -M prepared with more clients than backends, two tenants at once', async () => {
    const env = async (tenant: string): Promise<NodeJS.ProcessEnv> => ({
      ...process.env,
      PGHOST: '127.0.0.1',
      PGPORT: String(proxy.port),
      PGUSER: tenant,
      PGDATABASE: 'app',
      PGPASSWORD: await proxy.token(tenant),
    });
    for (const t of ['t6', 't7']) await run('pgbench', ['-i', '-s', '1', '-q', '--no-vacuum'], { env: await env(t), timeout: 120_000 });
    const runs = await Promise.all(
      ['t6', 't7'].map(async (t) => run('pgbench', ['-n', '-S', '-M', 'prepared', '-c', '6', '-j', '2', '-t', '100'], { env: await env(t), timeout: 120_000 })),
    );
    for (const { stdout } of runs) {
      expect(stdout).toMatch(/number of transactions actually processed: 600\/600/);
      expect(stdout).toMatch(/number of failed transactions: 0/);
    }
  });
});
