import { beforeAll, describe, expect, it } from 'vitest';
import { Guard, type TenantFence } from '../../src/guard/index.js';
import { ACME, GLOBEX, ROW_MODE, sharedGuard } from './fixtures.js';

let guard: Guard;
beforeAll(async () => {
  guard = await sharedGuard();
});

describe('row mode (no tenant schema)', () => {
  it('refuses every tenant schema, its former own included', () => {
    for (const sql of ['SELECT * FROM tenant_acme.t', "SELECT nextval('tenant_acme.s')", 'CREATE TABLE tenant_acme.x (a int)']) {
      const verdict = guard.check(sql, ROW_MODE);
      expect(verdict).toMatchObject({ allowed: false, reason: 'foreign_schema' });
      if (!verdict.allowed) expect(verdict.message).toContain('schema "tenant_acme"');
    }
  });

  it('allows shared and system schemas and unqualified names', () => {
    for (const sql of ['SELECT * FROM t', 'SELECT * FROM public.t', 'SELECT * FROM pg_catalog.pg_class', 'SELECT * FROM information_schema.tables', 'SELECT * FROM pg_temp.x']) {
      expect(guard.check(sql, ROW_MODE), sql).toEqual({ allowed: true });
    }
  });

  it('still guards the tenant GUC the RLS policies read', () => {
    expect(guard.check("SET app.current_tenant_id = 'globex'", ROW_MODE)).toMatchObject({ allowed: false, reason: 'pin_change' });
  });
});

describe('verdicts come from the fence, analyses from the cache', () => {
  it('the same text is allowed for its own tenant and refused for the other, in any order', () => {
    const sql = 'SELECT * FROM tenant_acme.items';
    expect(guard.check(sql, ACME)).toEqual({ allowed: true });
    expect(guard.check(sql, GLOBEX)).toMatchObject({ allowed: false, reason: 'foreign_schema' });
    expect(guard.check(sql, ACME)).toEqual({ allowed: true });
    const other = 'SELECT * FROM tenant_globex.items';
    expect(guard.check(other, GLOBEX)).toEqual({ allowed: true });
    expect(guard.check(other, ACME)).toMatchObject({ allowed: false, reason: 'foreign_schema' });
  });

  it('caches the analysis by text', async () => {
    const g = await Guard.create({ cacheSize: 10 });
    const sql = 'SELECT * FROM items';
    expect(g.analyze(sql)).toBe(g.analyze(sql));
    expect(Object.isFrozen(g.analyze(sql))).toBe(true);
  });

  it('works without a cache, and evicts beyond its size', async () => {
    const uncached = await Guard.create({ cacheSize: 0 });
    expect(uncached.check('SELECT * FROM tenant_globex.t', ACME)).toMatchObject({ allowed: false, reason: 'foreign_schema' });
    const small = await Guard.create({ cacheSize: 2 });
    const first = small.analyze('SELECT 1');
    small.analyze('SELECT 2');
    small.analyze('SELECT 3');
    expect(small.analyze('SELECT 1')).not.toBe(first);
  });

  it('the tenant GUC is the fence\'s own', () => {
    const fence: TenantFence = { ...ACME, tenantGuc: 'myapp.Tenant' };
    expect(guard.check("SET myapp.tenant = 'x'", fence)).toMatchObject({ allowed: false, reason: 'pin_change' });
    expect(guard.check("SELECT set_config('MYAPP.TENANT', 'x', true)", fence)).toMatchObject({ allowed: false, reason: 'pin_change' });
    expect(guard.check("SET app.current_tenant_id = 'x'", fence)).toEqual({ allowed: true });
  });

  it('several shared schemas', () => {
    const fence: TenantFence = { ...ACME, sharedSchemas: ['public', 'reference'] };
    expect(guard.check('SELECT * FROM reference.countries', fence)).toEqual({ allowed: true });
    expect(guard.check('SELECT * FROM reference.countries', ACME)).toMatchObject({ allowed: false, reason: 'foreign_schema' });
  });

  it('names another session\'s temporary schema as such', () => {
    const verdict = guard.check('SELECT * FROM pg_temp_7.t', ACME);
    expect(verdict).toMatchObject({ allowed: false, reason: 'foreign_schema' });
    if (!verdict.allowed) expect(verdict.message).toContain('temporary schema');
  });
});

describe('session effects for transaction pooling', () => {
  const effects = (sql: string) => guard.analyze(sql).sessionEffects;

  it('records settings to replay, and their reset', () => {
    expect(effects("SET work_mem = '64MB'")).toEqual([{ kind: 'set', name: 'work_mem', value: '64MB' }]);
    expect(effects('RESET work_mem')).toEqual([{ kind: 'set', name: 'work_mem', value: null }]);
    expect(effects("SELECT set_config('work_mem', '1MB', false)")).toEqual([{ kind: 'set', name: 'work_mem', value: '1MB' }]);
  });

  it('ignores what ends with the transaction or runs later', () => {
    expect(effects("SET LOCAL work_mem = '64MB'")).toEqual([]);
    expect(effects("SELECT set_config('work_mem', '1MB', true)")).toEqual([]);
    expect(effects("CREATE FUNCTION f() RETURNS void LANGUAGE sql SET work_mem = '1MB' AS 'SELECT 1'")).toEqual([]);
    expect(effects('CREATE TEMP TABLE x (a int) ON COMMIT DROP')).toEqual([]);
    expect(effects("CREATE VIEW v AS SELECT set_config('work_mem', '1MB', false)")).toEqual([]);
    expect(effects("CREATE FUNCTION f() RETURNS text LANGUAGE sql BEGIN ATOMIC SELECT set_config('work_mem', '1MB', false); END")).toEqual([]);
    expect(effects('CREATE TABLE t (a bigint DEFAULT pg_advisory_lock(1)::text::bigint)')).toEqual([]);
    expect(effects("SET transaction_isolation = 'serializable'")).toEqual([]);
    expect(effects('SET transaction_read_only = on')).toEqual([]);
    expect(effects("SELECT set_config('transaction_deferrable', 'on', false)")).toEqual([]);
  });

  it('flags state that cannot follow the client to another backend', () => {
    for (const sql of ['PREPARE p AS SELECT 1', 'DECLARE c CURSOR WITH HOLD FOR SELECT 1', 'CREATE TEMP TABLE x (a int)', 'SELECT 1 INTO TEMP x', 'SELECT pg_advisory_lock(1)', 'CREATE TABLE pg_temp.x (a int)', 'CREATE SEQUENCE pg_temp.s', 'SELECT 1 INTO pg_temp.x']) {
      expect(effects(sql).some((e) => e.kind === 'unsupported'), sql).toBe(true);
    }
    // LISTEN follows the client: the shared listener of transaction pooling serves it.
    for (const sql of ['SELECT 1 INTO x', 'CREATE TEMP TABLE x ON COMMIT DROP AS SELECT 1', 'SELECT 1', 'LISTEN jobs']) {
      expect(effects(sql), sql).toEqual([]);
    }
  });

  it('a DO block runs now: its settings count', () => {
    expect(effects("DO $$ BEGIN PERFORM set_config('work_mem', '1MB', false); END $$")).toEqual([
      { kind: 'hidden', what: 'a DO block' },
      { kind: 'set', name: 'work_mem', value: '1MB' },
    ]);
  });
});
