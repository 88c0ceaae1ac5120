import { beforeAll, describe, expect, it } from 'vitest';
import { Guard } from '../../src/guard/index.js';
import { ACME, GLOBEX, ROW_MODE, sharedGuard } from './fixtures.js';

let guard: Guard;
beforeAll(async () => {
  guard = await sharedGuard();
});

describe('RESET ALL and DISCARD ALL at the end of the client text', () => {
  it('are allowed and reported when nothing but other resets follows them (pgfence re-pins right after the text)', () => {
    const cases: Array<[string, 'reset_all' | 'discard_all']> = [
      ['RESET ALL', 'reset_all'],
      ['DISCARD ALL', 'discard_all'],
      ['reset all;', 'reset_all'],
      // asyncpg's pool, on release
      ['SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;', 'reset_all'],
      ['SELECT 1; DISCARD ALL', 'discard_all'],
      ['RESET ALL; DISCARD ALL', 'discard_all'], // discard_all wins whatever the order
      ['DISCARD ALL; RESET ALL', 'discard_all'],
      ['RESET ALL; RESET ALL', 'reset_all'],
      ['BEGIN; SELECT 1; COMMIT; DISCARD ALL -- done', 'discard_all'],
    ];
    for (const [sql, reset] of cases) {
      for (const fence of [ACME, GLOBEX, ROW_MODE]) {
        const { analysis, verdict } = guard.inspect(sql, fence);
        expect(verdict, sql).toEqual({ allowed: true });
        expect(analysis.sessionReset, sql).toBe(reset);
        expect(analysis.settings.has('*'), sql).toBe(false);
      }
    }
  });

  it('are not reported for texts without them, nor for the DISCARD forms that leave the pin alone', () => {
    for (const sql of ['SELECT 1', 'DISCARD PLANS', 'DISCARD SEQUENCES', 'DISCARD TEMP', 'DISCARD TEMPORARY', 'RESET statement_timeout']) {
      const { analysis, verdict } = guard.inspect(sql, ACME);
      expect(verdict, sql).toEqual({ allowed: true });
      expect(analysis.sessionReset, sql).toBeNull();
    }
  });
});

describe('RESET ALL and DISCARD ALL anywhere else', () => {
  it('are refused when another statement follows them, saying why', () => {
    const cases: Array<[string, string]> = [
      ['RESET ALL; SELECT * FROM secrets', 'RESET ALL'],
      ['DISCARD ALL; SELECT 1', 'DISCARD ALL'],
      ['RESET ALL; SELECT 1; DISCARD ALL', 'RESET ALL'],
      ['DISCARD ALL; SET statement_timeout = 0', 'DISCARD ALL'],
      ['RESET ALL; BEGIN', 'RESET ALL'],
      ['DISCARD ALL; NOTIFY jobs', 'DISCARD ALL'],
    ];
    for (const [sql, what] of cases) {
      const { analysis, verdict } = guard.inspect(sql, ACME);
      expect(verdict, sql).toEqual({
        allowed: false,
        sqlstate: '42501',
        reason: 'pin_change',
        message: `pgfence: ${what} must be the last statement of its query string (pgfence re-pins the tenant right after it)`,
      });
      expect(analysis.settings.has('*'), sql).toBe(true);
    }
  });

  it('are refused inside DO blocks and function bodies, which pgfence cannot re-pin after', () => {
    const cases = [
      'DO $$ BEGIN RESET ALL; END $$',
      'DO $$ BEGIN DISCARD ALL; END $$',
      "CREATE FUNCTION unpin() RETURNS void LANGUAGE sql AS 'RESET ALL'",
      'CREATE FUNCTION unpin() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DISCARD ALL; END $$',
      'CREATE PROCEDURE unpin() LANGUAGE sql AS $$ RESET ALL $$',
      // at the end of the client's text, and still inside a body
      'SELECT 1; DO $$ BEGIN RESET ALL; END $$',
    ];
    for (const sql of cases) {
      const verdict = guard.check(sql, ACME);
      expect(verdict, sql).toMatchObject({ allowed: false, reason: 'pin_change' });
      if (!verdict.allowed) expect(verdict.message, sql).toMatch(/^pgfence: (RESET|DISCARD) ALL inside a function body or DO block is not allowed/);
      expect(guard.analyze(sql).sessionReset, sql).toBeNull();
    }
  });

  it("ALTER FUNCTION ... RESET ALL stays refused (a function's settings, not the session's)", () => {
    expect(guard.check('ALTER FUNCTION f() RESET ALL', ACME)).toMatchObject({ allowed: false, reason: 'pin_change' });
  });

  it('resets of the pin other than RESET ALL and DISCARD ALL stay refused: they go back to the pool role\'s defaults, not to the pin', () => {
    for (const sql of [
      'RESET search_path',
      'SET search_path TO DEFAULT',
      'SET search_path = DEFAULT',
      'RESET ROLE',
      'SET ROLE NONE',
      'SET SESSION AUTHORIZATION DEFAULT',
      'RESET SESSION AUTHORIZATION',
      'RESET app.current_tenant_id',
      // even as the last statement of the text
      'SELECT 1; RESET search_path',
      'SELECT 1; SET SESSION AUTHORIZATION DEFAULT',
    ]) {
      expect(guard.check(sql, ACME), sql).toMatchObject({ allowed: false, reason: 'pin_change' });
    }
  });
});

describe('RESET ALL and DISCARD ALL with the numeric-shape cache', () => {
  it('a refused text stays refused when a numbers-only variant of it was seen first, and the reset is reported on the text itself', async () => {
    const fresh = await Guard.create({ cacheSize: 100 });
    // Warm the shape cache: the variants below share these shapes.
    expect(fresh.check('SELECT 0; DISCARD ALL', ACME)).toEqual({ allowed: true });
    expect(fresh.check('DISCARD ALL; SELECT * FROM secrets WHERE id = 0', ACME)).toMatchObject({ allowed: false });
    expect(fresh.check('DO $$ BEGIN PERFORM 0; RESET ALL; END $$', ACME)).toMatchObject({ allowed: false });

    const tail = fresh.inspect('SELECT 42; DISCARD ALL', ACME);
    expect(tail.verdict).toEqual({ allowed: true });
    expect(tail.analysis.sessionReset).toBe('discard_all');
    expect(fresh.check('DISCARD ALL; SELECT * FROM secrets WHERE id = 7', ACME)).toMatchObject({ allowed: false, reason: 'pin_change' });
    expect(fresh.check('DO $$ BEGIN PERFORM 17; RESET ALL; END $$', ACME)).toMatchObject({ allowed: false, reason: 'pin_change' });
  });
});
