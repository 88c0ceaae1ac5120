import { beforeAll, describe, expect, it } from 'vitest';
import { Guard } from '../../src/guard/index.js';
import { numericShape } from '../../src/guard/numeric-shape.js';

describe('numericShape', () => {
  it('replaces numeric literals and leaves names, parameters and escapes alone', () => {
    expect(numericShape('SELECT abalance FROM pgbench_accounts WHERE aid = 12345;')).toBe('SELECT abalance FROM pgbench_accounts WHERE aid = 0;');
    expect(numericShape('SELECT * FROM t1 WHERE x = $12 AND y IN (1, 22, 3.5e10)')).toBe('SELECT * FROM t1 WHERE x = $12 AND y IN (0, 0, 0.0e10)');
    expect(numericShape('SELECT "tenant_a-1".x, E\'\\101\', U&\'\\0041\', tenant_t2.y')).toBe('SELECT "tenant_a-1".x, E\'\\101\', U&\'\\0041\', tenant_t2.y');
    expect(numericShape("SELECT 'café1'")).toBe("SELECT 'café1'");
    expect(numericShape('SELECT 0')).toBe('SELECT 0');
  });

  it('shapes negative numbers, but never a digit after a `-` inside a name', () => {
    expect(numericShape('UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 5;')).toBe('UPDATE pgbench_accounts SET abalance = abalance + -0 WHERE aid = 0;');
    expect(numericShape('SELECT (-5), x=-7, f(1,-2)')).toBe('SELECT (-0), x=-0, f(0,-0)');
    expect(numericShape('SELECT "tenant_a-1".x, tenant_b-2, x--3')).toBe('SELECT "tenant_a-1".x, tenant_b-2, x--3');
  });

  it('leaves a text with UESCAPE alone: any character may then start an escape', () => {
    const sql = `SELECT U&"pg_!0072ead_file" UESCAPE '!'('/etc/passwd'), U&'!0031' uescape '!', 42`;
    expect(numericShape(sql)).toBe(sql);
  });
});

describe('the guard on numbers-only variants', () => {
  let guard: Guard;
  beforeAll(async () => {
    guard = await Guard.create({ cacheSize: 100 });
  });

  const fence = (own: string) => ({ ownSchema: own, sharedSchemas: ['public'], tenantGuc: 'app.current_tenant_id' });

  it('a shared analysis never lets a neighbouring tenant through', () => {
    // Warm the shape cache with the tenant's own, allowed statements first.
    expect(guard.check('SELECT * FROM "tenant_a-0".t WHERE id = 1', fence('tenant_a-0')).allowed).toBe(true);
    expect(guard.check('SELECT * FROM "tenant_a-1".t WHERE id = 1', fence('tenant_a-0')).allowed).toBe(false);
    expect(guard.check("SELECT 'tenant_t0.s'::regclass, 7", fence('tenant_t0')).allowed).toBe(true);
    expect(guard.check("SELECT 'tenant_t1.s'::regclass, 7", fence('tenant_t0')).allowed).toBe(false);
    expect(guard.check("SELECT E'tenant_t\\061.s'::regclass, 8", fence('tenant_t0')).allowed).toBe(false);
    expect(guard.check("SELECT '1tenant.s'::regclass", fence('tenant_t0')).allowed).toBe(false);
    // Negative numbers shaped: the tenant's own statement warms the shape; a neighbour's name with a digit after '-' is never shaped into it.
    expect(guard.check('SELECT * FROM "tenant_n-0".t WHERE id = -1', fence('tenant_n-0')).allowed).toBe(true);
    expect(guard.check('SELECT * FROM "tenant_n-1".t WHERE id = -1', fence('tenant_n-0')).allowed).toBe(false);
    expect(guard.check("SELECT 'tenant_n-1.t'::regclass, -3", fence('tenant_n-0')).allowed).toBe(false);
  });

  it('a function spelled with UESCAPE escapes is judged by its own name (found by the mutation fuzzer)', () => {
    expect(guard.check(`SELECT U&"lo!0ead" UESCAPE '!'(0, 100)`, fence('tenant_x')).allowed).toBe(true); // another name, warms the shape
    expect(guard.check(`SELECT U&"lo!0072ead" UESCAPE '!'(0, 100)`, fence('tenant_x'))).toMatchObject({ allowed: false, reason: 'forbidden_statement' });
    expect(guard.check(`SELECT U&"pg_!0072ead_file" UESCAPE '!'('/etc/passwd')`, fence('tenant_x'))).toMatchObject({ allowed: false });
  });

  it('keeps real setting values for what transaction pooling replays', () => {
    const { analysis } = guard.inspect('SET statement_timeout = 1234', fence('tenant_x'));
    expect(analysis.sessionEffects).toEqual([{ kind: 'set', name: 'statement_timeout', value: '1234' }]);
    const again = guard.inspect('SET statement_timeout = 99', fence('tenant_x'));
    expect(again.analysis.sessionEffects).toEqual([{ kind: 'set', name: 'statement_timeout', value: '99' }]);
  });

  it('names what the client wrote in a refusal', () => {
    const verdict = guard.check('SELECT * FROM tenant_zz.t WHERE id = 41', fence('tenant_x'));
    expect(verdict.allowed).toBe(false);
    if (!verdict.allowed) expect(verdict.message).toContain('tenant_zz');
  });
});
