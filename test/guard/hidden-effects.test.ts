import { beforeAll, describe, expect, it } from 'vitest';
import { Guard, type SessionEffect } from '../../src/guard/index.js';
import { ACME, sharedGuard } from './fixtures.js';

let guard: Guard;
beforeAll(async () => {
  guard = await sharedGuard();
});

const hidden = (sql: string): SessionEffect[] => guard.inspect(sql, ACME).analysis.sessionEffects.filter((e) => e.kind === 'hidden');

/** Statements that leave session state on a pooled backend through code the guard cannot see. */
const LEAKS = [
  "CREATE FUNCTION lk() RETURNS void LANGUAGE sql AS 'SELECT pg_advisory_lock(4246)'; SELECT lk()",
  'CREATE FUNCTION mk() RETURNS void LANGUAGE plpgsql AS $$BEGIN CREATE TEMP TABLE leak (a int); END$$; SELECT mk()',
  "CREATE FUNCTION sc() RETURNS text LANGUAGE sql AS $$SELECT set_config('app.leak', 'x', false)$$; SELECT sc()",
  "CREATE FUNCTION wm() RETURNS void LANGUAGE plpgsql AS $$BEGIN PERFORM set_config('work_mem', '17MB', false); END$$; SELECT wm()",
  "SELECT nextval('seq')",
];

describe("'hidden' session effects", () => {
  it('are reported for the statements that leak session state through a pooled backend, which stay allowed', () => {
    for (const sql of LEAKS) {
      const { analysis, verdict } = guard.inspect(sql, ACME);
      expect(verdict, sql).toEqual({ allowed: true });
      expect(analysis.sessionEffects.filter((e) => e.kind === 'hidden').length, sql).toBeGreaterThan(0);
    }
    expect(hidden("CREATE FUNCTION lk() RETURNS void LANGUAGE sql AS 'SELECT pg_advisory_lock(4246)'; SELECT lk()")).toEqual([{ kind: 'hidden', what: 'lk()' }]);
  });

  it('are reported for calls of functions outside pg_catalog, wherever the call sits', () => {
    const cases: Array<[string, string]> = [
      ['SELECT my_fn(1)', 'my_fn()'],
      ['SELECT tenant_acme.my_fn(1)', 'tenant_acme.my_fn()'],
      ["SELECT public.lower('x')", 'public.lower()'], // a pg_catalog name, but another schema's function
      ['SELECT "Lower"(\'x\')', 'Lower()'], // quoted: not pg_catalog's lower
      ['SELECT * FROM user_fn()', 'user_fn()'],
      ['SELECT * FROM t WHERE a IN (SELECT user_fn(b) FROM u)', 'user_fn()'],
      ['WITH x AS (SELECT user_fn()) SELECT * FROM x', 'user_fn()'],
      ['EXPLAIN ANALYZE SELECT user_fn()', 'user_fn()'],
      ['SELECT user_fn($1) WHERE $2::int > 0', 'user_fn()'],
      ['SELECT my_agg(a) FROM t', 'my_agg()'],
      ['INSERT INTO t VALUES (user_fn())', 'user_fn()'],
      ['SELECT 1 OPERATOR(tenant_acme.@@) 2', 'the operator tenant_acme.@@'],
      ['SELECT a === b FROM t', 'the operator ==='],
    ];
    for (const [sql, what] of cases) expect(hidden(sql), sql).toEqual([{ kind: 'hidden', what }]);
  });

  it('are reported for procedures and DO blocks, whatever they contain', () => {
    expect(hidden('CALL p()')).toEqual([{ kind: 'hidden', what: 'CALL p()' }]);
    expect(hidden('CALL tenant_acme.p(1, 2)')).toEqual([{ kind: 'hidden', what: 'CALL tenant_acme.p()' }]);
    expect(hidden('DO $$ BEGIN PERFORM 1; END $$')).toEqual([{ kind: 'hidden', what: 'a DO block' }]);
    // Refused (pgfence cannot read Perl), and still reported: the refusal does not depend on it.
    expect(guard.analyze("DO LANGUAGE plperl $$ print 'x' $$").sessionEffects).toContainEqual({ kind: 'hidden', what: 'a DO block' });
  });

  it('are reported for nextval and setval, which set currval and lastval, and not for reading them', () => {
    expect(hidden("SELECT nextval('seq')")).toEqual([{ kind: 'hidden', what: 'nextval()' }]);
    expect(hidden("SELECT pg_catalog.setval('seq', 42)")).toEqual([{ kind: 'hidden', what: 'pg_catalog.setval()' }]);
    expect(hidden("SELECT ('seq'::regclass).nextval")).toEqual([{ kind: 'hidden', what: 'nextval()' }]); // field notation
    expect(hidden("SELECT currval('seq')")).toEqual([]);
    expect(hidden('SELECT lastval()')).toEqual([]);
  });

  it('are not reported for statements that only call built-ins', () => {
    const statements = [
      // pgbench select-only and tpcb-like
      'SELECT abalance FROM pgbench_accounts WHERE aid = $1;',
      'BEGIN;',
      'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;',
      'UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;',
      'UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2;',
      'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);',
      'END;',
      'SELECT now()',
      'SELECT count(*) FROM t',
      'SELECT * FROM generate_series(1, 10)',
      "SELECT lower('X'), pg_catalog.upper('x'), EXTRACT(year FROM now()), trim(' x ')",
      'SELECT 1',
      'SELECT t.a, (t.b).c FROM t WHERE t.a = ANY($1) AND t.d ~~ $2', // columns in field notation, built-in operators
    ];
    for (const sql of statements) expect(hidden(sql), sql).toEqual([]);
  });

  it('are not reported for code that is only created or stored for later', () => {
    const statements = [
      "CREATE FUNCTION lk() RETURNS void LANGUAGE sql AS 'SELECT pg_advisory_lock(4246)'",
      'CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$BEGIN PERFORM g(); CALL p(); END$$',
      "CREATE FUNCTION f() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT nextval('s'); END",
      "CREATE PROCEDURE p() LANGUAGE sql AS $$SELECT nextval('s')$$",
      'CREATE VIEW v AS SELECT user_fn()',
      "CREATE TABLE t (id bigint DEFAULT nextval('s'), b int CHECK (user_check(b)))",
      'CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION user_trigger()',
    ];
    for (const sql of statements) expect(hidden(sql), sql).toEqual([]);
  });

  it('are listed once per function, and only the first few distinct ones', () => {
    expect(hidden('SELECT f(1), f(2), f(3)')).toEqual([{ kind: 'hidden', what: 'f()' }]);
    const many = `SELECT ${Array.from({ length: 20 }, (_, i) => `fn_${String.fromCharCode(97 + i)}()`).join(', ')}`;
    const effects = hidden(many);
    expect(effects).toHaveLength(8);
    expect(effects[0]).toEqual({ kind: 'hidden', what: 'fn_a()' });
  });

  it('do not keep a text from sharing the analysis of its numbers-only variant', async () => {
    const fresh = await Guard.create({ cacheSize: 100 });
    const first = fresh.inspect("SELECT nextval('s'), 1", ACME);
    const second = fresh.inspect("SELECT nextval('s'), 2", ACME);
    expect(first.verdict).toEqual({ allowed: true });
    expect(second.analysis).toBe(first.analysis); // the shaped text's analysis, parsed once
    expect(second.analysis.sessionEffects).toEqual([{ kind: 'hidden', what: 'nextval()' }]);
    // A setting next to it still sends the text through its own analysis, with its real value.
    const set = fresh.inspect("SELECT nextval('s'), set_config('work_mem', '17MB', false), 3", ACME);
    expect(set.analysis.sessionEffects).toContainEqual({ kind: 'set', name: 'work_mem', value: '17MB' });
  });
});
