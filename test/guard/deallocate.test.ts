import { beforeAll, describe, expect, it } from 'vitest';
import { type Analysis, Guard } from '../../src/guard/index.js';
import { ACME, sharedGuard } from './fixtures.js';

let guard: Guard;
beforeAll(async () => {
  guard = await sharedGuard();
});

/** The text of each recorded DEALLOCATE, cut from the UTF-8 bytes by its offsets. */
function statementTexts(sql: string, analysis: Analysis): string[] {
  const bytes = Buffer.from(sql, 'utf8');
  return analysis.deallocations.map((d) => bytes.toString('utf8', d.start, d.end).trim());
}

describe('DEALLOCATE', () => {
  it('is allowed and recorded with its name (null for ALL) and its byte range in the text', () => {
    const cases: Array<[string, Array<string | null>, string[]]> = [
      ['DEALLOCATE _pg3_0', ['_pg3_0'], ['DEALLOCATE _pg3_0']], // psycopg 3
      ['DEALLOCATE ALL', [null], ['DEALLOCATE ALL']],
      ['DEALLOCATE PREPARE ALL', [null], ['DEALLOCATE PREPARE ALL']],
      ['deallocate prepare "Mixed Case"', ['Mixed Case'], ['deallocate prepare "Mixed Case"']],
      ['DEALLOCATE Upper', ['upper'], ['DEALLOCATE Upper']],
      ["SELECT 'é€😀'; DEALLOCATE a; SELECT 2; DEALLOCATE ALL;", ['a', null], ['DEALLOCATE a', 'DEALLOCATE ALL']],
      ['/* café */ DEALLOCATE _pg3_1 -- done', ['_pg3_1'], ['DEALLOCATE _pg3_1 -- done']],
    ];
    for (const [sql, names, texts] of cases) {
      const { analysis, verdict } = guard.inspect(sql, ACME);
      expect(verdict, sql).toEqual({ allowed: true });
      expect(analysis.deallocations.map((d) => d.name), sql).toEqual(names);
      expect(statementTexts(sql, analysis), sql).toEqual(texts);
    }
  });

  it('is not recorded where the text has none (EXECUTE, PREPARE, a DEALLOCATE inside a string)', () => {
    for (const sql of ['SELECT 1', 'EXECUTE q(1)', 'PREPARE q AS SELECT 1', "SELECT 'DEALLOCATE ALL'"]) {
      expect(guard.analyze(sql).deallocations, sql).toEqual([]);
    }
  });

  it('inside a DO block or function body is not the client\'s: not recorded, and the code it runs in resets the backend after', () => {
    const inDo = guard.inspect('DO $$ BEGIN DEALLOCATE ALL; END $$', ACME);
    expect(inDo.verdict).toEqual({ allowed: true });
    expect(inDo.analysis.deallocations).toEqual([]);
    expect(inDo.analysis.sessionEffects).toContainEqual({ kind: 'hidden', what: 'a DO block' });

    // Created now, run later through a call, which is a tenant's function: hidden, the backend is reset.
    const created = guard.inspect("CREATE FUNCTION d() RETURNS void LANGUAGE sql AS 'DEALLOCATE ALL'", ACME);
    expect(created.analysis.deallocations).toEqual([]);
    expect(guard.inspect('SELECT d()', ACME).analysis.sessionEffects).toEqual([{ kind: 'hidden', what: 'd()' }]);
  });

  it('keeps offsets of the text itself when a numbers-only variant was seen first', async () => {
    const fresh = await Guard.create({ cacheSize: 100 });
    const warm = fresh.inspect('SELECT 0; DEALLOCATE _pg3_0', ACME);
    expect(warm.analysis.deallocations).toEqual([{ name: '_pg3_0', start: 10, end: 27 }]);
    const sql = 'SELECT 123456; DEALLOCATE _pg3_0';
    const { analysis } = fresh.inspect(sql, ACME);
    expect(statementTexts(sql, analysis)).toEqual(['DEALLOCATE _pg3_0']);
    expect(analysis.deallocations).toEqual([{ name: '_pg3_0', start: 15, end: 32 }]);
  });
});
