import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase, withClient } from '../support/db.js';
import { closedPort } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { SEED_SQL } from '../support/seed.js';

async function connectError(proxy: TestProxy, tenant: string): Promise<{ code: string | undefined; message: string }> {
  const client = new pg.Client(await proxy.clientConfig(tenant));
  client.on('error', () => undefined);
  const error = await client.connect().then(
    () => null,
    (e: unknown) => e as { code?: string; message: string },
  );
  await client.end().catch(() => undefined);
  if (error === null) throw new Error(`tenant ${tenant} was served`);
  return { code: error.code, message: error.message };
}

/**
 * Two backend targets at once (two databases of the suite's Postgres), a target whose port is
 * closed, and a tenant with a database of its own, through one pgfence in each pool mode.
 */
describe.each(['session', 'transaction'] as const)('placement over targets (%s pooling)', (mode) => {
  let second: TestDatabase;
  let own: TestDatabase;
  let proxy: TestProxy;

  beforeAll(async () => {
    second = await createTestDatabase('place_second');
    own = await createTestDatabase('place_own');
    await withClient(second.url, async (c) => {
      await c.query(SEED_SQL);
      await c.query(`UPDATE tenant_globex.items SET note = 'globex on second' WHERE id = 1`);
    });
    await withClient(own.url, async (c) => {
      await c.query(`CREATE SCHEMA app; CREATE TABLE app.items (id serial PRIMARY KEY, note text); INSERT INTO app.items (note) VALUES ('hooli in its own database')`);
    });
    const down = await closedPort();
    proxy = await startTestProxy({
      pool: { mode, size: 4, acquireTimeoutMs: 5_000 },
      admin: { enabled: true, port: 0 },
      backends: {
        second: { url: second.url, pool: { size: 2 } },
        gone: { host: '127.0.0.1', port: down, user: 'postgres', connectTimeoutMs: 1_000 },
      },
      tenancy: {
        tenants: [
          { id: 'acme' },
          { id: 'globex', placement: { target: 'second' } },
          { id: 'umbrella', placement: { target: 'gone' } },
          { id: 'hooli', placement: { target: 'default', database: own.name, schema: 'app' } },
        ],
      },
    });
  });

  afterAll(async () => {
    await proxy?.close();
    await second?.drop();
    await own?.drop();
  });

  it('serves tenants on two targets at once, each from its own target', async () => {
    const acme = await proxy.connect('acme');
    const globex = await proxy.connect('globex');
    try {
      const [a, g] = await Promise.all([
        acme.query<{ db: string; note: string }>('SELECT current_database() AS db, note FROM items WHERE id = 1'),
        globex.query<{ db: string; note: string }>('SELECT current_database() AS db, note FROM items WHERE id = 1'),
      ]);
      expect(a.rows[0]).toEqual({ db: new URL(proxy.directUrl).pathname.slice(1), note: 'acme item 1' });
      expect(g.rows[0]).toEqual({ db: second.name, note: 'globex on second' });
      // Writes land on the tenant's target, not on the default.
      await globex.query(`INSERT INTO items (note) VALUES ('written through pgfence')`);
      const there = await withClient(second.url, (c) => c.query(`SELECT count(*)::int AS n FROM tenant_globex.items WHERE note = 'written through pgfence'`));
      const here = await proxy.direct<{ n: number }>(`SELECT count(*)::int AS n FROM tenant_globex.items WHERE note = 'written through pgfence'`);
      expect(there.rows[0]).toEqual({ n: 1 });
      expect(here.rows[0]).toEqual({ n: 0 });
    } finally {
      await acme.end();
      await globex.end();
    }
    const pools = proxy.running.pools.all().map((p) => ({ target: p.target, tenantDatabase: p.tenantDatabase }));
    expect(pools).toContainEqual({ target: 'second', tenantDatabase: false });
    // SHOW SERVERS lists the backends of every target, each with its target and database.
    const admin = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'ops', database: 'pgfence', password: await proxy.token('acme', { pgfence_admin: true }) });
    admin.on('error', () => undefined);
    await admin.connect();
    try {
      const servers = (await admin.query<{ target: string; database: string }>('SHOW SERVERS')).rows.map((r) => ({ target: r.target, database: r.database }));
      expect(servers).toContainEqual({ target: 'second', database: second.name });
      expect(servers).toContainEqual({ target: 'default', database: new URL(proxy.directUrl).pathname.slice(1) });
    } finally {
      await admin.end();
    }
  });

  it('refuses the tenants of a target that is down, with their own error, and serves the others', async () => {
    const refused = await connectError(proxy, 'umbrella');
    expect(refused.code).toBe('08001');
    expect(refused.message).toContain('backend target "gone" of tenant "umbrella" cannot be reached');
    const acme = await proxy.connect('acme');
    const globex = await proxy.connect('globex');
    try {
      expect((await acme.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      expect((await globex.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await acme.end();
      await globex.end();
    }
  });

  it('names the unreachable target in /readyz, staying ready for the tenants of the others', async () => {
    const res = await fetch(`http://127.0.0.1:${proxy.running.adminPort}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^ready: backend 127\.0\.0\.1:\d+\/\S+ accepts connections\nunreachable targets: gone\n$/);
  });

  it('serves a tenant from a database of its own, where other tenants\' schemas are not in the catalog', async () => {
    const hooli = await proxy.connect('hooli');
    const acme = await proxy.connect('acme');
    try {
      const { rows } = await hooli.query<{ db: string; note: string }>('SELECT current_database() AS db, note FROM items');
      expect(rows).toEqual([{ db: own.name, note: 'hooli in its own database' }]);
      const names = (await hooli.query<{ nspname: string }>('SELECT nspname FROM pg_namespace')).rows.map((r) => r.nspname);
      expect(names).toContain('app');
      expect(names.filter((n) => n.startsWith('tenant_'))).toEqual([]);
      // Side by side in the shared database, the same query shows every tenant's schema name.
      const shared = (await acme.query<{ nspname: string }>('SELECT nspname FROM pg_namespace')).rows.map((r) => r.nspname);
      expect(shared).toEqual(expect.arrayContaining(['tenant_acme', 'tenant_globex', 'tenant_umbrella']));
    } finally {
      await hooli.end();
      await acme.end();
    }
    expect(proxy.running.pools.all()).toContainEqual(expect.objectContaining({ target: 'default', database: own.name, tenantDatabase: true }));
  });
});
