import { beforeAll, describe, expect, it } from 'vitest';
import type { Guard } from '../../src/guard/index.js';
import { ATTACKS as ALL } from './attack-corpus.js';
import { ACME, sharedGuard } from './fixtures.js';

let guard: Guard;
beforeAll(async () => {
  guard = await sharedGuard();
});

describe(`attack corpus (${ALL.length} attempts from tenant acme)`, () => {
  it.each(ALL)('%s', (_name, sql, reason, schema) => {
    const verdict = guard.check(sql, ACME);
    expect(verdict.allowed, sql).toBe(false);
    if (verdict.allowed) return;
    expect(verdict.reason, `${sql} → ${verdict.message}`).toBe(reason);
    expect(verdict.message).toMatch(/^pgfence: /);
    if (schema !== undefined) expect(verdict.message).toContain(`schema "${schema}"`);
    const expected = reason === 'parse_error' ? '42601' : reason === 'parser_divergence' ? '0A000' : '42501';
    expect(verdict.sqlstate).toBe(expected);
  });

  it('every attempt is distinct', () => {
    expect(new Set(ALL.map(([, sql]) => sql)).size).toBe(ALL.length);
  });

  it('messages never repeat the statement text', () => {
    const long = `SELECT * FROM tenant_globex.secrets WHERE note = '${'x'.repeat(500)}'`;
    const unterminated = `SELECT '${'y'.repeat(500)}`;
    for (const sql of [long, unterminated]) {
      const verdict = guard.check(sql, ACME);
      expect(verdict.allowed).toBe(false);
      if (!verdict.allowed) expect(verdict.message.length).toBeLessThan(250);
    }
  });
});
