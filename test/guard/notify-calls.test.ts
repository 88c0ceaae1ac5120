import { beforeAll, describe, expect, it } from 'vitest';
import { type Analysis, Guard } from '../../src/guard/index.js';
import { ACME, GLOBEX, sharedGuard } from './fixtures.js';

let guard: Guard;
beforeAll(async () => {
  guard = await sharedGuard();
});

/** Each call's channel: the literal's token as cut from the UTF-8 bytes by its offsets, or `$N`. */
function channels(sql: string, analysis: Analysis): string[] {
  const bytes = Buffer.from(sql, 'utf8');
  return analysis.notifyCalls.map(({ channel }) => ('param' in channel ? `$${channel.param}` : bytes.toString('utf8', channel.start, channel.end)));
}

describe('pg_notify() in the client text', () => {
  it('is allowed with a literal or parameter channel, and recorded so that pgfence can map the channel', () => {
    const cases: Array<[string, string[]]> = [
      ['select pg_notify($1,$2)', ['$1']], // postgres.js sql.notify()
      ["SELECT pg_notify('jobs', 'payload')", ["'jobs'"]],
      ["SELECT pg_catalog.pg_notify('globex.jobs', 'x')", ["'globex.jobs'"]], // mapped to acme.globex.jobs
      ['SELECT pg_notify($2::text, $1)', ['$2']],
      ["SELECT pg_notify($1::pg_catalog.text, 'x')", ['$1']],
      ["SELECT pg_notify('jobs'::text, 'x')", ["'jobs'"]],
      ["SELECT pg_notify(text 'jobs', 'x')", ["'jobs'"]],
      ["SELECT pg_notify(E'jo\\x62s', 'x')", ["E'jo\\x62s'"]],
      ["SELECT pg_notify($$jobs$$, 'x')", ['$$jobs$$']],
      ["SELECT pg_notify('jo'\n  'bs', 'x')", ["'jo'\n  'bs'"]], // one literal continued on the next line
      ["SELECT 'é😀', pg_notify('kanäle', 'x'), pg_notify('b', pg_notify('c', 'y')::text)", ["'kanäle'", "'b'", "'c'"]],
      ["SELECT pg_notify('a', note) FROM items WHERE id = $1", ["'a'"]],
      ["WITH n AS (SELECT pg_notify('a', 'x')) SELECT * FROM n", ["'a'"]],
      ["SELECT 1; SELECT pg_notify('a', 'x'); NOTIFY b", ["'a'"]],
      ["PREPARE p AS SELECT pg_notify('a', $1)", ["'a'"]], // the literal is mapped in PREPARE's own text
      ["EXPLAIN ANALYZE SELECT pg_notify('a', 'x')", ["'a'"]],
      ["SELECT * FROM pg_notify('a', 'x')", ["'a'"]],
    ];
    for (const [sql, expected] of cases) {
      for (const fence of [ACME, GLOBEX]) {
        const { analysis, verdict } = guard.inspect(sql, fence);
        expect(verdict, sql).toEqual({ allowed: true });
        expect(channels(sql, analysis), sql).toEqual(expected);
      }
    }
  });

  it('records the literal channel by its value, the parameter by its 1-based number, in text order', () => {
    const sql = "SELECT pg_notify('b', pg_notify(E'it''s', 'y')::text), pg_notify($3, 'z'), pg_notify('a', 'x')";
    expect(guard.analyze(sql).notifyCalls).toEqual([
      { channel: { literal: 'b', start: 17, end: 20 } },
      { channel: { literal: "it's", start: 32, end: 40 } },
      { channel: { param: 3 } },
      { channel: { literal: 'a', start: 85, end: 88 } },
    ]);
    expect(guard.analyze('SELECT 1').notifyCalls).toEqual([]);
  });

  it('is refused with a channel pgfence cannot map: computed, cast to anything but text, or spelled with UESCAPE', () => {
    const cases = [
      "SELECT pg_notify(chan_col, 'x') FROM t",
      "SELECT pg_notify('a' || 'b', 'x')",
      "SELECT pg_notify(concat('globex', '.jobs'), 'x')",
      "SELECT pg_notify(current_setting('app.channel'), 'x')",
      "SELECT pg_notify($1 || '', 'x')",
      "SELECT pg_notify((SELECT note FROM items LIMIT 1), 'x')",
      "SELECT pg_notify('globex.jobs'::varchar(4), 'x')",
      "SELECT pg_notify($1::name, 'x')",
      "SELECT pg_notify($1::text::text, 'x')",
      "SELECT pg_notify(NULL, 'x')",
      "SELECT pg_notify(U&'jobs', 'x')",
      "SELECT pg_notify(U&'j!006fbs' UESCAPE '!', 'x')",
      "SELECT pg_notify(VARIADIC ARRAY['a', 'b'])",
      "SELECT pg_notify('a')",
      "SELECT pg_notify('a', 'b', 'c')",
      "SELECT ('globex.jobs'::text).pg_notify", // field notation: a call with a computed argument
      "PREPARE p(text) AS SELECT pg_notify($1, 'x')", // $1 is EXECUTE's argument, not a Bind value
    ];
    for (const sql of cases) {
      const verdict = guard.check(sql, ACME);
      expect(verdict, sql).toMatchObject({ allowed: false, sqlstate: '42501' });
      if (!verdict.allowed) expect(verdict.message, sql).toMatch(/^pgfence: pg_notify\(\)/);
      expect(guard.analyze(sql).notifyCalls, sql).toEqual([]);
    }
  });

  it('is refused where it would run later or outside the client text: bodies, views, rules, defaults, operators', () => {
    const cases = [
      "DO $$ BEGIN PERFORM pg_notify('jobs', 'x'); END $$",
      "CREATE FUNCTION n() RETURNS void LANGUAGE sql AS $$ SELECT pg_notify('jobs', 'x') $$",
      "CREATE FUNCTION n() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('jobs', 'x'); END $$",
      "CREATE VIEW v AS SELECT pg_notify('jobs', 'x')",
      "CREATE RULE r AS ON INSERT TO items DO ALSO SELECT pg_notify('jobs', 'x')",
      "CREATE TABLE t (x text DEFAULT pg_notify('jobs', 'x')::text)",
      "ALTER TABLE items ALTER COLUMN note SET DEFAULT pg_notify('jobs', 'x')::text",
      "CREATE POLICY p ON items USING (pg_notify('jobs', 'x') IS NULL)",
      'CREATE OPERATOR ### (LEFTARG = text, RIGHTARG = text, FUNCTION = pg_notify)',
    ];
    for (const sql of cases) {
      expect(guard.check(sql, ACME), sql).toMatchObject({ allowed: false });
      expect(guard.analyze(sql).notifyCalls, sql).toEqual([]);
    }
  });

  it('keeps literal offsets of the text itself when a numbers-only variant was seen first, and refusals hold for the variants', async () => {
    const fresh = await Guard.create({ cacheSize: 100 });
    expect(fresh.check("SELECT 0, pg_notify('jobs', '0')", ACME)).toEqual({ allowed: true });
    expect(fresh.check("SELECT pg_notify(chan || '0', 'x') FROM t LIMIT 0", ACME)).toMatchObject({ allowed: false });
    const sql = "SELECT 123456, pg_notify('jobs', '42')";
    const { analysis, verdict } = fresh.inspect(sql, ACME);
    expect(verdict).toEqual({ allowed: true });
    expect(channels(sql, analysis)).toEqual(["'jobs'"]);
    expect(analysis.notifyCalls).toEqual([{ channel: { literal: 'jobs', start: 25, end: 31 } }]);
    expect(fresh.check("SELECT pg_notify(chan || '7', 'x') FROM t LIMIT 10", ACME)).toMatchObject({ allowed: false, reason: 'dynamic_sql' });
  });
});
