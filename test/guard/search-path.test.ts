import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Guard, searchPathSchemas, type TenantFence } from '../../src/guard/index.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { ACME, GLOBEX, ROW_MODE, sharedGuard } from './fixtures.js';

let guard: Guard;
beforeAll(async () => {
  guard = await sharedGuard();
});

describe('searchPathSchemas', () => {
  it('reads a search_path as Postgres does: commas, whitespace, quoted names kept, unquoted folded', () => {
    expect(searchPathSchemas('')).toEqual([]);
    expect(searchPathSchemas('  \t\n')).toEqual([]);
    expect(searchPathSchemas('tenant_acme')).toEqual(['tenant_acme']);
    expect(searchPathSchemas('"tenant_acme", "public"')).toEqual(['tenant_acme', 'public']);
    expect(searchPathSchemas(' Tenant_ACME ,pg_catalog,  PG_TEMP ')).toEqual(['tenant_acme', 'pg_catalog', 'pg_temp']);
    expect(searchPathSchemas('"Tenant_ACME"')).toEqual(['Tenant_ACME']);
    expect(searchPathSchemas('"a, b"')).toEqual(['a, b']);
    expect(searchPathSchemas('"say ""hi"""')).toEqual(['say "hi"']);
    expect(searchPathSchemas('"$user", public')).toEqual(['$user', 'public']);
    expect(searchPathSchemas('$user')).toEqual(['$user']);
    expect(searchPathSchemas('""')).toEqual(['']);
    expect(searchPathSchemas('a"b"')).toEqual(['a"b"']); // an unquoted name runs to a comma or whitespace
    expect(searchPathSchemas('"tenant_a-1"')).toEqual(['tenant_a-1']);
    expect(searchPathSchemas('x'.repeat(70))).toEqual(['x'.repeat(63)]);
    expect(searchPathSchemas(`"${'é'.repeat(40)}"`)).toEqual(['é'.repeat(31)]); // 63 bytes, cut at a character
  });

  it('is null where Postgres answers "List syntax is invalid"', () => {
    for (const value of ['a,', ',a', 'a,,b', 'a b', '"a', '"a"b', 'a, "b', ' , ']) {
      expect(searchPathSchemas(value), value).toBeNull();
    }
  });

  describe('against the server', () => {
    let db: TestDatabase;
    let client: pg.Client;
    beforeAll(async () => {
      db = await createTestDatabase('search_path_read');
      client = new pg.Client({ connectionString: db.url });
      await client.connect();
    });
    afterAll(async () => {
      await client?.end();
      await db?.drop();
    });

    const VALUES = [
      '',
      'alpha',
      ' Alpha ,  "Beta" ,gamma_1',
      '"a, b", pg_catalog',
      '"with ""quotes"""',
      'MiXeD, "MiXeD"',
      `"${'z'.repeat(70)}"`,
      'a,',
      'a b',
      '"open',
      'a,,b',
      'a"B"',
      '"a"b',
    ];

    it('gives the names the server puts on its search path (schemas created for each name), and refuses what the server refuses', async () => {
      for (const value of VALUES) {
        const expected = searchPathSchemas(value);
        await client.query('BEGIN');
        try {
          for (const name of expected ?? []) {
            if (name !== 'pg_catalog') await client.query(`CREATE SCHEMA ${client.escapeIdentifier(name)}`);
          }
          const set = await client.query("SELECT pg_catalog.set_config('search_path', $1, true)", [value]).then(
            () => null,
            (error: pg.DatabaseError) => error,
          );
          if (expected === null) {
            expect(set?.code, value).toBe('22023'); // invalid_parameter_value: List syntax is invalid
            continue;
          }
          expect(set, value).toBeNull();
          const r = await client.query<{ schemas: string[] }>('SELECT pg_catalog.current_schemas(false)::text[] AS schemas');
          expect(r.rows[0]?.schemas, value).toEqual(expected);
        } finally {
          await client.query('ROLLBACK');
        }
      }
    });
  });
});

describe('a search_path narrower than the pin', () => {
  const ALLOWED_FOR_ACME = [
    // pg_dump and pg_restore
    "SELECT pg_catalog.set_config('search_path', '', false)",
    'SET search_path = tenant_acme, pg_catalog',
    'SET search_path = "tenant_acme", public',
    'SET search_path TO public',
    'SET search_path = pg_catalog',
    'SET search_path = pg_catalog, pg_temp',
    "SET search_path = ''", // the one name "" (no schema)
    "SET SCHEMA 'tenant_acme'",
    'SET SESSION search_path = tenant_acme',
    'BEGIN; SET LOCAL search_path = tenant_acme; SELECT * FROM items; COMMIT',
    "SELECT set_config('search_path', 'tenant_acme, pg_temp', true)",
    "SELECT set_config('search_path', ' \"tenant_acme\" ,PUBLIC', false)",
    "SELECT set_config('SEARCH_PATH', 'public'::text, false)",
  ];

  it('is allowed for the tenant when it names only its own schema, shared schemas, pg_catalog and pg_temp', () => {
    for (const sql of ALLOWED_FOR_ACME) {
      const { analysis, verdict } = guard.inspect(sql, ACME);
      expect(verdict, sql).toEqual({ allowed: true });
      expect(analysis.searchPaths.length, sql).toBe(1);
      expect(analysis.settings.has('search_path'), sql).toBe(false);
    }
  });

  it('is judged per tenant: acme\'s schema is foreign to globex', () => {
    for (const sql of ['SET search_path = tenant_acme, pg_catalog', "SELECT set_config('search_path', 'tenant_acme', false)"]) {
      expect(guard.check(sql, GLOBEX), sql).toMatchObject({ allowed: false, reason: 'pin_change', sqlstate: '42501' });
      expect(guard.check(sql, ROW_MODE), sql).toMatchObject({ allowed: false, reason: 'pin_change' });
    }
    expect(guard.check('SET search_path = tenant_globex', GLOBEX)).toEqual({ allowed: true });
    expect(guard.check('SET search_path = public, pg_catalog', ROW_MODE)).toEqual({ allowed: true });
    expect(guard.check("SELECT pg_catalog.set_config('search_path', '', false)", ROW_MODE)).toEqual({ allowed: true });
    const hyphen: TenantFence = { ownSchema: 'tenant_a-1', sharedSchemas: ['public', 'Shared'], tenantGuc: 'app.current_tenant_id' };
    expect(guard.check('SET search_path = "tenant_a-1", "Shared"', hyphen)).toEqual({ allowed: true });
    expect(guard.check('SET search_path = "tenant_a-1", Shared', hyphen)).toMatchObject({ allowed: false }); // folded: shared
  });

  it('records the values as Postgres stores them, and the session effect transaction pooling replays', () => {
    const cases: Array<[string, string, boolean]> = [
      ["SELECT pg_catalog.set_config('search_path', '', false)", '', true],
      ['SET search_path = tenant_acme, pg_catalog', 'tenant_acme, pg_catalog', true],
      ['SET search_path = "Tenant_Acme", public', '"Tenant_Acme", public', true],
      ["SET search_path = 'tenant_acme, public'", '"tenant_acme, public"', true], // one quoted name, as Postgres reads it
      ["SET search_path = '$user'", '"$user"', true],
      ["SET search_path = ''", '""', true],
      ['SET LOCAL search_path = tenant_acme', 'tenant_acme', false],
      ["SELECT set_config('search_path', 'tenant_acme', true)", 'tenant_acme', false],
    ];
    for (const [sql, value, session] of cases) {
      const { analysis } = guard.inspect(sql, ACME);
      expect(analysis.searchPaths, sql).toEqual([value]);
      const effects = analysis.sessionEffects.filter((e) => e.kind === 'set');
      expect(effects, sql).toEqual(session ? [{ kind: 'set', name: 'search_path', value }] : []);
    }
  });

  it('is refused when it names anything else: another schema, "$user", an unreadable list', () => {
    const refused = [
      'SET search_path = tenant_globex',
      'SET search_path = pg_catalog, tenant_globex',
      'SET search_path = tenant_acme, tenant_globex',
      "SET search_path = '$user'",
      'SET search_path = "$user", public',
      "SET search_path = 'tenant_acme, public'", // the one schema "tenant_acme, public"
      'SET search_path = "TENANT_ACME"',
      'SET search_path = information_schema', // a system schema, but not one the pin names
      'SET search_path = pg_toast',
      'SET search_path = pg_temp_3',
      'BEGIN; SET LOCAL search_path = tenant_globex; SELECT * FROM secrets; COMMIT',
      "SELECT pg_catalog.set_config('search_path', 'tenant_globex', false)",
      "SELECT set_config('search_path', 'pg_catalog, \"tenant_globex\"', true)",
      "SELECT set_config('search_path', 'tenant_acme,', false)", // invalid list syntax
      "SELECT set_config('search_path', '\"tenant_acme', false)",
    ];
    for (const sql of refused) {
      const verdict = guard.check(sql, ACME);
      expect(verdict, sql).toMatchObject({ allowed: false, reason: 'pin_change', sqlstate: '42501' });
      if (!verdict.allowed) expect(verdict.message).toMatch(/^pgfence: /);
    }
    const named = guard.check('SET search_path = tenant_acme, tenant_globex', ACME);
    if (!named.allowed) expect(named.message).toContain('"tenant_globex"');
  });

  it('is refused in every form whose value is not a literal, that goes back to a default, or that runs outside the client\'s statement', () => {
    const refused = [
      "SELECT set_config('search_path', current_setting('x'), false)",
      "SELECT set_config('search_path', 'tenant_' || 'acme', false)",
      "SELECT set_config('search_path', $1, false)",
      "PREPARE p AS SELECT set_config('search_path', $1, false)",
      'SET search_path = DEFAULT',
      'SET search_path TO DEFAULT',
      'RESET search_path',
      'SET search_path FROM CURRENT',
      // inside bodies, views, stored expressions and function SET clauses
      "DO $$ BEGIN PERFORM set_config('search_path', 'tenant_acme', false); END $$",
      'DO $$ BEGIN SET search_path = tenant_acme; END $$',
      "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ SELECT set_config('search_path', '', false) $$",
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = tenant_acme AS $$ SELECT 1 $$',
      "ALTER FUNCTION f() SET search_path = ''",
      "CREATE VIEW v AS SELECT set_config('search_path', 'tenant_acme', false)",
      "CREATE TABLE t (x text DEFAULT set_config('search_path', 'tenant_acme', false))",
    ];
    for (const sql of refused) {
      expect(guard.check(sql, ACME), sql).toMatchObject({ allowed: false });
      expect(guard.analyze(sql).searchPaths, sql).toEqual([]);
    }
  });
});

describe('search_path with the numeric-shape cache', () => {
  it('a shared analysis never carries one tenant\'s verdict on a search_path to another, nor a shaped value', async () => {
    const fresh = await Guard.create({ cacheSize: 100 });
    // Warm the shapes with texts acme may send.
    expect(fresh.check('SELECT 0; SET LOCAL search_path = tenant_acme', ACME)).toEqual({ allowed: true });
    expect(fresh.check('SET search_path = "0x"', ACME)).toMatchObject({ allowed: false });
    expect(fresh.check("SELECT 0, set_config('search_path', '', false)", ACME)).toEqual({ allowed: true });

    expect(fresh.check('SELECT 5; SET LOCAL search_path = tenant_acme', GLOBEX)).toMatchObject({ allowed: false, reason: 'pin_change' });
    const own: TenantFence = { ownSchema: '1x', sharedSchemas: ['public'], tenantGuc: 'app.current_tenant_id' };
    const quoted = fresh.inspect('SET search_path = "1x"', own);
    expect(quoted.verdict).toEqual({ allowed: true });
    expect(quoted.analysis.searchPaths).toEqual(['"1x"']);
    const { analysis } = fresh.inspect("SELECT 123, set_config('search_path', '', false)", ACME);
    expect(analysis.sessionEffects).toEqual([{ kind: 'set', name: 'search_path', value: '' }]);
  });
});
