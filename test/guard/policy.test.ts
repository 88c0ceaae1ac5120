import { beforeAll, describe, expect, it } from 'vitest';
import { configSchema, type ConfigInput, type PolicyConfig } from '../../src/config/schema.js';
import { fencePolicy, Guard, type TenantFence } from '../../src/guard/index.js';
import { ACME, sharedGuard } from './fixtures.js';

let guard: Guard;
beforeAll(async () => {
  guard = await sharedGuard();
});

const BASE: ConfigInput = {
  jwt: { secret: 'x'.repeat(32) },
  tenancy: { tenants: [{ id: 'acme' }, { id: 'globex' }], sharedSchemas: ['public', 'reference'] },
};

function policyOf(policy: ConfigInput['policy']): PolicyConfig {
  return configSchema.parse({ ...BASE, policy }).policy;
}

function fenceFor(policy: ConfigInput['policy'], tenant = 'acme'): TenantFence {
  return { ...ACME, sharedSchemas: ['public', 'reference'], policy: fencePolicy(policyOf(policy), tenant) };
}

describe('policy: what the operator lifts', () => {
  const lifted: Array<[string, string, string]> = [
    ['dynamic_sql', "DO $$ BEGIN EXECUTE 'SELECT 1'; END $$", 'dynamic_sql'],
    ['dynamic_sql', "SELECT query_to_xml('SELECT 1', true, false, '')", 'dynamic_sql'],
    ['dblink', "SELECT * FROM dblink('dbname=app', 'SELECT 1') AS t(a int)", 'dynamic_sql'],
    ['large_objects', "SELECT lo_from_bytea(0, 'x')", 'forbidden_statement'],
    ['server_files', "SELECT pg_read_file('/etc/hostname')", 'forbidden_statement'],
    ['server_files', "COPY items FROM '/tmp/items.csv'", 'forbidden_statement'],
    ['extensions', 'CREATE EXTENSION IF NOT EXISTS pg_trgm', 'forbidden_statement'],
    ['extensions', 'DROP EXTENSION pg_trgm', 'forbidden_statement'],
  ];

  it.each(lifted)('%s lifts: %s', (allow, sql, reason) => {
    expect(guard.check(sql, ACME)).toMatchObject({ allowed: false, reason });
    expect(guard.check(sql, fenceFor({ allow: [allow as 'dynamic_sql'] }))).toEqual({ allowed: true });
  });

  it('functions and statement kinds may be lifted one by one', () => {
    const fence = fenceFor({ allowedFunctions: ['LO_GET', 'pg_read_file'], allowedStatements: ['CreateExtensionStmt'] });
    expect(guard.check('SELECT lo_get(1234)', fence)).toEqual({ allowed: true });
    expect(guard.check("SELECT pg_read_file('/etc/hostname')", fence)).toEqual({ allowed: true });
    expect(guard.check('CREATE EXTENSION IF NOT EXISTS pg_trgm', fence)).toEqual({ allowed: true });
    expect(guard.check("SELECT lo_import('/etc/passwd')", fence)).toMatchObject({ allowed: false, reason: 'forbidden_statement' });
    expect(guard.check("SELECT pg_ls_dir('.')", fence)).toMatchObject({ allowed: false, reason: 'forbidden_statement' });
    expect(guard.check('ALTER EXTENSION pg_trgm UPDATE', fence)).toMatchObject({ allowed: false, reason: 'forbidden_statement' });
    expect(guard.check('SELECT * FROM tenant_globex.secrets WHERE lo_get(1) IS NULL', fence)).toMatchObject({ allowed: false, reason: 'foreign_schema' });
  });

  it('a switch lifts only its own refusals', () => {
    const fence = fenceFor({ allow: ['dynamic_sql'] });
    expect(guard.check("SELECT lo_from_bytea(0, 'x')", fence)).toMatchObject({ allowed: false, reason: 'forbidden_statement' });
    expect(guard.check("SELECT pg_read_file('/etc/passwd')", fence)).toMatchObject({ allowed: false });
  });

  it('no switch lifts the fence itself: other schemas, the pin, cluster-wide statements', () => {
    const fence = fenceFor({ allow: ['dynamic_sql', 'dblink', 'large_objects', 'server_files', 'extensions'] });
    const attempts: Array<[string, string]> = [
      ['SELECT * FROM tenant_globex.secrets', 'foreign_schema'],
      ["DO $$ BEGIN EXECUTE 'SELECT 1'; PERFORM * FROM tenant_globex.secrets; END $$", 'foreign_schema'],
      ["SELECT set_config('search_path', 'tenant_globex', false)", 'pin_change'],
      ["DO $$ BEGIN SET search_path = tenant_globex; END $$", 'pin_change'],
      ["SELECT set_config('app.current_' || 'tenant_id', 'globex', false)", 'dynamic_sql'],
      ['CREATE ROLE intruder SUPERUSER', 'forbidden_statement'],
      ['ALTER SYSTEM SET log_statement = none', 'forbidden_statement'],
      ['SELECT * FROM database_to_xml(true, false, \'\')', 'dynamic_sql'],
      ['SELECT pg_terminate_backend(1)', 'forbidden_statement'],
      ['CREATE EXTENSION hstore SCHEMA tenant_globex', 'foreign_schema'],
      ['CREATE EXTENSION hstore WITH SCHEMA pg_catalog CASCADE', 'forbidden_statement'],
      ['ALTER EXTENSION plpgsql ADD FUNCTION now()', 'forbidden_statement'],
      ['ALTER EXTENSION plpgsql ADD FUNCTION pg_catalog.now()', 'forbidden_statement'],
      ['DROP EXTENSION plpgsql CASCADE', 'forbidden_statement'],
    ];
    for (const [sql, reason] of attempts) expect(guard.check(sql, fence), sql).toMatchObject({ allowed: false, reason });
  });
});

describe('policy: what the operator adds', () => {
  it('denies functions by name, in any schema, case and position', () => {
    const fence = fenceFor({ deniedFunctions: ['pg_sleep', 'Expensive_Report'] });
    for (const sql of [
      'SELECT pg_sleep(1)',
      'SELECT pg_catalog.PG_SLEEP(1)',
      'SELECT * FROM items WHERE id IN (SELECT 1 FROM pg_sleep(0.1))',
      'SELECT public.expensive_report()',
      'CREATE TABLE t (a int DEFAULT expensive_report())',
      'DO $$ BEGIN PERFORM pg_sleep(1); END $$',
      'CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ SELECT pg_sleep(1) $$',
      'CALL expensive_report()',
      'CALL public.Expensive_Report(1)',
      'SELECT (0.1::float8).pg_sleep',
      'SELECT g.pg_sleep FROM abs(0.1) AS g',
      'CREATE AGGREGATE a(float8) (SFUNC1 = pg_sleep, STYPE1 = float8)',
      'CREATE TYPE r AS RANGE (subtype = float8, subtype_diff = pg_sleep)',
      'CREATE TRIGGER t AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION expensive_report()',
    ]) {
      const verdict = guard.check(sql, fence);
      expect(verdict, sql).toMatchObject({ allowed: false, reason: 'denied_function', sqlstate: '42501' });
    }
    expect(guard.check('SELECT pg_sleep_for(interval \'1 s\')', fence)).toEqual({ allowed: true });
    expect(guard.check('SELECT count(*) FROM items', fence)).toEqual({ allowed: true });
  });

  it('denies statement kinds, nested ones too', () => {
    const fence = fenceFor({ deniedStatements: ['TruncateStmt', 'DropStmt'] });
    for (const sql of [
      'TRUNCATE items',
      'DROP TABLE items',
      'SELECT 1; TRUNCATE items',
      'PREPARE p AS SELECT 1; TRUNCATE items',
      'DO $$ BEGIN TRUNCATE items; END $$',
      'CREATE FUNCTION wipe() RETURNS void LANGUAGE sql AS $$ TRUNCATE items $$',
    ]) {
      expect(guard.check(sql, fence), sql).toMatchObject({ allowed: false, reason: 'denied_statement' });
    }
    expect(guard.check('DELETE FROM items', fence)).toEqual({ allowed: true });
  });

  it('protects settings besides the pin', () => {
    const fence = fenceFor({ protectedSettings: ['statement_timeout', 'Work_Mem'] });
    for (const sql of [
      'SET statement_timeout = 0',
      'SET LOCAL work_mem = \'1GB\'',
      'RESET statement_timeout',
      "SELECT set_config('statement_timeout', '0', false)",
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql SET work_mem = \'2GB\' AS $$ SELECT 1 $$',
    ]) {
      expect(guard.check(sql, fence), sql).toMatchObject({ allowed: false, reason: 'protected_setting' });
    }
    expect(guard.check("SET lock_timeout = '1s'", fence)).toEqual({ allowed: true });
  });
});

describe('policy: read-only shared schemas', () => {
  const fence = (): TenantFence => fenceFor({ readOnlySchemas: ['reference'] });

  it('refuses every statement that names one as its target', () => {
    for (const sql of [
      'INSERT INTO reference.plans VALUES (1)',
      'UPDATE reference.plans SET name = 1',
      'DELETE FROM reference.plans',
      'MERGE INTO reference.plans p USING items i ON p.id = i.id WHEN MATCHED THEN DELETE',
      'WITH gone AS (DELETE FROM reference.plans RETURNING *) SELECT * FROM gone',
      'COPY reference.plans FROM STDIN',
      'TRUNCATE items, reference.plans',
      'LOCK TABLE reference.plans IN ACCESS EXCLUSIVE MODE',
      'CREATE TABLE reference.mine (a int)',
      'CREATE TABLE mine () INHERITS (reference.plans)',
      'CREATE TABLE mine PARTITION OF reference.plans FOR VALUES IN (1)',
      'CREATE INDEX ON reference.plans (name)',
      'ALTER TABLE reference.plans ADD COLUMN x int',
      'ALTER TABLE items SET SCHEMA reference',
      'DROP TABLE reference.plans',
      'COMMENT ON TABLE reference.plans IS NULL',
      'GRANT SELECT ON reference.plans TO PUBLIC',
      'GRANT SELECT ON ALL TABLES IN SCHEMA reference TO PUBLIC',
      'CREATE FUNCTION reference.f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$',
      'CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM reference.plans $$',
      'DO $$ BEGIN UPDATE reference.plans SET name = name; END $$',
      'CREATE TRIGGER t BEFORE INSERT ON reference.plans FOR EACH ROW EXECUTE FUNCTION f()',
      'ALTER SEQUENCE reference.s RESTART',
      'VACUUM FULL reference.plans',
      'SELECT * FROM reference.plans FOR SHARE',
      'SELECT * INTO reference.copy FROM items',
      // an updatable view writes into its table; LOCK and FOR UPDATE through any view lock it
      'CREATE VIEW v AS SELECT * FROM reference.plans',
      'CREATE OR REPLACE VIEW v AS SELECT p.* FROM items i JOIN reference.plans p ON p.id = i.id',
      "SELECT setval('reference.s', 1)",
      "SELECT nextval('reference.s')",
      "SELECT ('reference.s').nextval",
      "SELECT nextval(pg_get_serial_sequence('reference.plans', 'id'))",
      "CREATE TABLE mine (a int DEFAULT nextval('reference.s'))",
      "SELECT pg_clear_relation_stats('reference', 'plans')",
      "SELECT pg_restore_relation_stats('schemaname', 'reference', 'relname', 'plans', 'relpages', 1::integer)",
    ]) {
      expect(guard.check(sql, fence()), sql).toMatchObject({ allowed: false, reason: 'read_only_schema', sqlstate: '42501' });
    }
  });

  it('still reads from it, and writes elsewhere using it', () => {
    for (const sql of [
      'SELECT * FROM reference.plans',
      'INSERT INTO items SELECT * FROM reference.plans',
      'UPDATE items SET note = p.name FROM reference.plans p WHERE p.id = items.id',
      'DELETE FROM items USING reference.plans p WHERE p.id = items.id',
      'CREATE TABLE mine (plan int REFERENCES reference.plans (id), kind reference.kind)',
      'CREATE MATERIALIZED VIEW mv AS SELECT * FROM reference.plans',
      'CREATE TABLE copy AS SELECT * FROM reference.plans',
      'COPY reference.plans TO STDOUT',
      'COPY (SELECT * FROM reference.plans) TO STDOUT',
      'INSERT INTO public.notes VALUES (1)',
      'SELECT reference.price(1)',
      "SELECT currval('reference.s')",
      "SELECT nextval('public.s'), nextval('s')",
    ]) {
      expect(guard.check(sql, fence()), sql).toEqual({ allowed: true });
    }
  });

  it('refuses an extension installed into it', () => {
    const lifted = fenceFor({ readOnlySchemas: ['reference'], allow: ['extensions'] });
    expect(guard.check('CREATE EXTENSION hstore SCHEMA reference', lifted)).toMatchObject({ allowed: false, reason: 'read_only_schema' });
    expect(guard.check('CREATE EXTENSION hstore SCHEMA tenant_acme', lifted)).toEqual({ allowed: true });
  });
});

describe('policy: per-tenant overrides', () => {
  const policy: ConfigInput['policy'] = {
    deniedStatements: ['TruncateStmt'],
    tenants: { acme: { allow: ['dynamic_sql'] }, globex: { deniedStatements: [] } },
  };

  it('an override replaces only the keys it gives', () => {
    const acme = fenceFor(policy, 'acme');
    expect(guard.check("DO $$ BEGIN EXECUTE 'SELECT 1'; END $$", acme)).toEqual({ allowed: true });
    expect(guard.check('TRUNCATE items', acme)).toMatchObject({ allowed: false, reason: 'denied_statement' });
    const globex = { ...fenceFor(policy, 'globex'), ownSchema: 'tenant_globex' };
    expect(guard.check('TRUNCATE items', globex)).toEqual({ allowed: true });
    expect(guard.check("DO $$ BEGIN EXECUTE 'SELECT 1'; END $$", globex)).toMatchObject({ allowed: false, reason: 'dynamic_sql' });
  });

  it('a policy that adds nothing costs nothing', () => {
    expect(fencePolicy(policyOf({}), 'acme')).toBeUndefined();
    expect(fencePolicy(policyOf(policy), 'umbrella')).toBeDefined();
  });
});

describe('policy configuration', () => {
  const problem = (policy: unknown): string => {
    const result = configSchema.safeParse({ ...BASE, policy });
    expect(result.success).toBe(false);
    return result.success ? '' : JSON.stringify(result.error.issues);
  };

  it('names the bad key and why', () => {
    expect(problem({ allow: ['everything'] })).toContain('allow');
    expect(problem({ deniedStatements: ['TRUNCATE'] })).toContain('parse node name');
    expect(problem({ allowedFunctions: ['pg_terminate_backend'] })).toContain('is not a function the guard refuses and a policy may allow');
    expect(problem({ allowedFunctions: ['now'] })).toContain('is not a function the guard refuses and a policy may allow');
    expect(problem({ allowedStatements: ['CreateRoleStmt'] })).toContain('must be one of CreateExtensionStmt');
    expect(problem({ deniedFunctions: ['pg_catalog.pg_sleep'] })).toContain('without schema');
    expect(problem({ readOnlySchemas: ['tenant_globex'] })).toContain('not one of tenancy.sharedSchemas');
    expect(problem({ tenants: { acme: { readOnlySchemas: ['audit'] } } })).toContain('not one of tenancy.sharedSchemas');
    expect(problem({ tenants: { acme: { bogus: true } } })).toContain('bogus');
  });
});
