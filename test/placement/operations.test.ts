import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseExposition, valueOf } from '../admin/exposition.js';
import { createTestDatabase, type TestDatabase, withClient } from '../support/db.js';
import { pollUntil } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { SEED_SQL } from '../support/seed.js';

/**
 * The admin console and the metrics over two backend targets (two databases of the suite's
 * Postgres): SHOW POOLS and SHOW DATABASES name each pool's target, the pool series carry a
 * `target` label, and PAUSE, RESUME and RECONNECT act on every target's pools.
 */
describe.each(['session', 'transaction'] as const)('console and metrics over two targets (%s pooling)', (mode) => {
  let eu: TestDatabase;
  let own: TestDatabase;
  let proxy: TestProxy;
  let defaultDb: string;

  beforeAll(async () => {
    eu = await createTestDatabase('ops_eu');
    await withClient(eu.url, (c) => c.query(SEED_SQL));
    own = await createTestDatabase('ops_own');
    await withClient(own.url, (c) => c.query('CREATE SCHEMA app; CREATE TABLE app.items (id int)'));
    proxy = await startTestProxy({
      pool: { mode, size: 3, acquireTimeoutMs: 5_000 },
      admin: { enabled: true, port: 0 },
      backends: { eu: { url: eu.url, pool: { size: 2 } } },
      tenancy: {
        tenants: [{ id: 'acme' }, { id: 'globex', placement: { target: 'eu' } }, { id: 'hooli', placement: { target: 'eu', database: own.name, schema: 'app' } }],
      },
    });
    defaultDb = new URL(proxy.directUrl).pathname.slice(1);
  });

  afterAll(async () => {
    await proxy?.close();
    await eu?.drop();
    await own?.drop();
  });

  async function consoleClient(): Promise<pg.Client> {
    const admin = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'ops', database: 'pgfence', password: await proxy.token('acme', { pgfence_admin: true }) });
    admin.on('error', () => undefined);
    await admin.connect();
    return admin;
  }

  async function scrape(): Promise<ReturnType<typeof parseExposition>> {
    const res = await fetch(`http://127.0.0.1:${proxy.running.adminPort}/metrics`);
    return parseExposition(await res.text());
  }

  it('SHOW POOLS: each tenant under the pool of its target, with the target last; SHOW DATABASES: a row per target and tenant database', async () => {
    const acme = await proxy.connect('acme');
    const globex = await proxy.connect('globex');
    const hooli = await proxy.connect('hooli');
    const admin = await consoleClient();
    try {
      await acme.query('SELECT 1');
      await globex.query('SELECT 1');
      await hooli.query('SELECT count(*) FROM items');
      const pools = await admin.query('SHOW POOLS');
      const names = pools.fields.map((f) => f.name);
      // PgBouncer's columns first, in its order; pgfence's own last.
      expect(names.slice(0, 3)).toEqual(['database', 'user', 'cl_active']);
      expect(names.slice(-3)).toEqual(['load_balance_hosts', 'tenant', 'target']);
      expect(pools.rows.find((r) => r.tenant === 'acme')).toMatchObject({ target: 'default', database: defaultDb, cl_active: 1 });
      expect(pools.rows.find((r) => r.tenant === 'globex')).toMatchObject({ target: 'eu', database: eu.name, cl_active: 1 });
      // hooli's own database on eu is a pool of its own.
      expect(pools.rows.find((r) => r.tenant === 'hooli')).toMatchObject({ target: 'eu', database: own.name, cl_active: 1 });
      // One shared row (tenant NULL) per pool.
      expect(pools.rows.filter((r) => r.tenant === null).map((r) => [r.target, r.database])).toEqual([
        ['default', defaultDb],
        ['eu', eu.name],
        ['eu', own.name],
      ]);
      // No tenant is counted under another pool.
      expect(pools.rows.filter((r) => r.target === 'eu' && r.database === eu.name).map((r) => r.tenant)).toEqual(['globex', null]);

      const databases = await admin.query('SHOW DATABASES');
      expect(databases.fields.map((f) => f.name).slice(-2)).toEqual(['max_per_tenant', 'target']);
      const euUrl = new URL(eu.url);
      expect(databases.rows).toEqual([
        expect.objectContaining({ name: 'default', database: defaultDb, pool_size: 3, current_client_connections: 1, target: 'default', disabled: 0 }),
        expect.objectContaining({ name: 'eu', host: euUrl.hostname, port: Number(euUrl.port), database: eu.name, pool_size: 2, current_client_connections: 1, target: 'eu' }),
        // A tenant database's pool: pool.databaseSize backends (default 5).
        expect.objectContaining({ name: `eu/${own.name}`, database: own.name, pool_size: 5, current_client_connections: 1, target: 'eu' }),
        expect.objectContaining({ name: 'pgfence', database: 'pgfence', target: null }),
      ]);
      const lists = await admin.query('SHOW LISTS');
      expect(lists.rows.find((r) => r.list === 'databases')?.items).toBe(4);
      expect(lists.rows.find((r) => r.list === 'pools')?.items).toBe(pools.rows.length);
    } finally {
      await admin.end();
      await acme.end();
      await globex.end();
      await hooli.end();
    }
  });

  it("SHOW CONFIG masks a target's URL (it carries the password) as it masks backend.url", async () => {
    const admin = await consoleClient();
    try {
      const rows = (await admin.query<{ key: string; value: string; changeable: string }>('SHOW CONFIG')).rows;
      expect(rows.find((r) => r.key === 'backends.eu.url')).toMatchObject({ value: '********', changeable: 'yes' });
      expect(rows.find((r) => r.key === 'backend.url')).toMatchObject({ value: '********', changeable: 'no' });
      expect(rows.find((r) => r.key === 'backends.eu.pool.size')).toMatchObject({ value: '2', changeable: 'yes' });
      expect(JSON.stringify(rows)).not.toContain(eu.url);
    } finally {
      await admin.end();
    }
  });

  it('labels the pool metrics with the target of each pool', async () => {
    const acme = await proxy.connect('acme');
    const globex = await proxy.connect('globex');
    try {
      await acme.query('SELECT 1');
      await globex.query('SELECT 1');
      const text = await scrape();
      expect(valueOf(text, 'pgfence_pools_client_active_connections', { tenant: 'acme', target: 'default' })).toBe(1);
      expect(valueOf(text, 'pgfence_pools_client_active_connections', { tenant: 'globex', target: 'eu' })).toBe(1);
      expect(valueOf(text, 'pgfence_pools_client_active_connections', { tenant: 'globex', target: 'default' })).toBeUndefined();
      expect(valueOf(text, 'pgfence_pools_server_pinned_connections', { tenant: 'globex', target: 'eu' })).toBeGreaterThanOrEqual(1);
      expect(valueOf(text, 'pgfence_backend_connection_attempts_total', { result: 'opened', target: 'eu' })).toBeGreaterThanOrEqual(1);
      expect(valueOf(text, 'pgfence_backend_connection_attempts_total', { result: 'opened', target: 'default' })).toBeGreaterThanOrEqual(1);
      expect(valueOf(text, 'pgfence_acquire_wait_seconds_count', { target: 'eu' })).toBeGreaterThanOrEqual(1);
      for (const target of ['default', 'eu']) {
        const idle = valueOf(text, 'pgfence_pools_server_idle_connections', { target }) ?? -1;
        const active = valueOf(text, 'pgfence_pools_server_active_connections', { target }) ?? -1;
        expect(idle + active, target).toBeGreaterThanOrEqual(1);
      }
    } finally {
      await acme.end();
      await globex.end();
    }
  });

  it.runIf(mode === 'transaction')('PAUSE holds the new transactions of every target; RESUME lets them run', async () => {
    const acme = await proxy.connect('acme');
    const globex = await proxy.connect('globex');
    const admin = await consoleClient();
    try {
      await admin.query('PAUSE');
      const ran: string[] = [];
      const heldAcme = acme.query('SELECT 1 AS n').then((r) => (ran.push('acme'), r));
      const heldGlobex = globex.query('SELECT current_database() AS db').then((r) => (ran.push('globex'), r));
      // Both wait for a backend, each in its own target's pool, and neither has run.
      await pollUntil('both tenants waiting in SHOW POOLS', async () => {
        const rows = (await admin.query('SHOW POOLS')).rows;
        const waiting = (tenant: string, target: string): boolean => rows.some((r) => r.tenant === tenant && r.target === target && r.cl_waiting === 1);
        return waiting('acme', 'default') && waiting('globex', 'eu') ? true : undefined;
      });
      expect(ran).toEqual([]);
      const databases = (await admin.query('SHOW DATABASES')).rows;
      // Every pool is paused: each target's own, and the tenant database's.
      expect(databases.filter((r) => r.target !== null).map((r) => [r.name, r.paused])).toEqual([
        ['default', 1],
        ['eu', 1],
        [`eu/${own.name}`, 1],
      ]);
      await admin.query('RESUME');
      expect((await heldAcme).rows).toEqual([{ n: 1 }]);
      expect((await heldGlobex).rows).toEqual([{ db: eu.name }]);
    } finally {
      await admin.query('RESUME').catch(() => undefined);
      await admin.end();
      await acme.end();
      await globex.end();
    }
  });

  it("RECONNECT marks the backends of every target; they close when released and new ones serve", async () => {
    const acme = await proxy.connect('acme');
    const globex = await proxy.connect('globex');
    const admin = await consoleClient();
    const pid = async (client: pg.Client): Promise<number> => (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number;
    try {
      const before = { acme: await pid(acme), globex: await pid(globex) };
      const servers = (await admin.query('SHOW SERVERS')).rows;
      expect(servers.find((r) => r.remote_pid === before.globex)).toMatchObject({ target: 'eu', close_needed: 0 });
      const answer = await admin.query('RECONNECT');
      expect(answer.command).toBe('RECONNECT');
      const marked = (await admin.query('SHOW SERVERS')).rows;
      // Session pooling: the clients still hold theirs, marked on both targets.
      if (mode === 'session') {
        expect(marked.find((r) => r.remote_pid === before.acme)).toMatchObject({ target: 'default', close_needed: 1 });
        expect(marked.find((r) => r.remote_pid === before.globex)).toMatchObject({ target: 'eu', close_needed: 1 });
        await acme.end();
        await globex.end();
        const again = { acme: await proxy.connect('acme'), globex: await proxy.connect('globex') };
        try {
          expect(await pid(again.acme)).not.toBe(before.acme);
          expect(await pid(again.globex)).not.toBe(before.globex);
        } finally {
          await again.acme.end();
          await again.globex.end();
        }
      } else {
        expect(await pid(acme)).not.toBe(before.acme);
        expect(await pid(globex)).not.toBe(before.globex);
        const now = (await admin.query('SHOW SERVERS')).rows.map((r) => r.remote_pid);
        expect(now).not.toContain(before.acme);
        expect(now).not.toContain(before.globex);
      }
    } finally {
      await admin.end();
      await acme.end().catch(() => undefined);
      await globex.end().catch(() => undefined);
    }
  });
});
