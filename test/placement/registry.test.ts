import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { placementFromRow } from '../../src/placement/placement.js';
import { TenantRefused } from '../../src/tenancy/index.js';
import { createTestDatabase, type TestDatabase, withClient } from '../support/db.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { SEED_SQL } from '../support/seed.js';

describe('placement columns of a registry row', () => {
  it('reads target, database and schema, or the control schema\'s placement TARGET/DATABASE', () => {
    expect(placementFromRow({ status: 'active' }, 'a')).toEqual({ placement: undefined, schema: undefined });
    expect(placementFromRow({ target: 'eu-2', database: null }, 'a')).toEqual({ placement: { target: 'eu-2', database: null }, schema: undefined });
    expect(placementFromRow({ database: 'acme_db', schema: 'app' }, 'a')).toEqual({ placement: { target: 'default', database: 'acme_db' }, schema: 'app' });
    expect(placementFromRow({ placement: 'eu-2/acme/db' }, 'a')).toEqual({ placement: { target: 'eu-2', database: 'acme/db' }, schema: undefined });
    expect(placementFromRow({ placement: 'eu-2' }, 'a')).toEqual({ placement: { target: 'eu-2', database: null }, schema: undefined });
  });

  it('refuses values that cannot be names, as a registry failure', () => {
    for (const row of [{ target: 7 }, { database: '' }, { database: 'x'.repeat(64) }, { schema: 'a;b' }, { placement: 'eu/' }]) {
      expect(() => placementFromRow(row, 'a'), JSON.stringify(row)).toThrow(TenantRefused);
    }
  });
});

describe('backends in the configuration', () => {
  const base = { jwt: { algorithms: ['HS256'], secret: 'x'.repeat(32) } };

  it('refuses a static placement on a target that is not configured, and a target named default', () => {
    const unknown = configSchema.safeParse({ ...base, tenancy: { tenants: [{ id: 'acme', placement: { target: 'eu-9' } }] } });
    expect(unknown.success).toBe(false);
    expect(unknown.error?.issues.map((i) => i.message)).toContain('"eu-9" is not a backend target (default, or a key of backends)');
    const reserved = configSchema.safeParse({ ...base, backends: { default: { port: 5433 } }, tenancy: { tenants: [{ id: 'acme' }] } });
    expect(reserved.success).toBe(false);
    expect(reserved.error?.issues.map((i) => i.message)).toContain('the target `default` is the `backend` key; give this target another name');
  });

  it('takes targets with pool limits of their own', () => {
    const ok = configSchema.parse({
      ...base,
      backends: { 'eu-2': { url: 'postgres://u:p@db.eu:5432/app', sslmode: 'require', pool: { size: 3, maxPerTenant: 1 } } },
      tenancy: { tenants: [{ id: 'acme', placement: { target: 'eu-2', database: 'acme_db' } }] },
    });
    expect(ok.backends?.['eu-2']?.pool).toEqual({ size: 3, maxPerTenant: 1 });
  });
});

/** The operator's registry query names the target and database of each tenant. */
describe('placement from the registry', () => {
  let second: TestDatabase;
  let proxy: TestProxy;

  beforeAll(async () => {
    second = await createTestDatabase('place_reg');
    await withClient(second.url, async (c) => {
      await c.query(SEED_SQL);
      await c.query(`UPDATE tenant_globex.items SET note = 'globex on second' WHERE id = 1`);
    });
    proxy = await startTestProxy({
      backends: { second: { url: second.url } },
      tenancy: { registry: { query: 'SELECT status, target, database FROM public.registry WHERE id = $1', cacheTtlMs: 0 } },
    });
    await proxy.direct(`CREATE TABLE public.registry (id text PRIMARY KEY, status text NOT NULL, target text, database text)`);
    await proxy.direct(`INSERT INTO public.registry VALUES ('acme', 'active', NULL, NULL), ('globex', 'active', 'second', NULL), ('umbrella', 'active', 'eu-9', NULL)`);
  });

  afterAll(async () => {
    await proxy?.close();
    await second?.drop();
  });

  it('serves each tenant from the target its row names', async () => {
    const globex = await proxy.connect('globex');
    const acme = await proxy.connect('acme');
    try {
      expect((await globex.query('SELECT current_database() AS db, note FROM items WHERE id = 1')).rows).toEqual([{ db: second.name, note: 'globex on second' }]);
      expect((await acme.query('SELECT note FROM items WHERE id = 1')).rows).toEqual([{ note: 'acme item 1' }]);
    } finally {
      await globex.end();
      await acme.end();
    }
  });

  it('refuses a tenant whose row names an unknown target, never serving it from the default', async () => {
    const client = new pg.Client(await proxy.clientConfig('umbrella'));
    client.on('error', () => undefined);
    const error = (await client.connect().then(() => null, (e: unknown) => e)) as { code?: string; message?: string; detail?: string } | null;
    await client.end().catch(() => undefined);
    expect(error).not.toBeNull();
    expect(error?.code).toBe('08004');
    expect(error?.message).toBe('pgfence: tenant "umbrella" is placed on the unknown backend target "eu-9"');
    expect(error?.detail).toContain('key of `backends`');
  });
});
