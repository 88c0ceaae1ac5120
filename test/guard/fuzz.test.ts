import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Guard, Verdict } from '../../src/guard/index.js';
import { ATTACKS } from './attack-corpus.js';
import { ACME, sharedGuard } from './fixtures.js';

/** Each property runs until this many milliseconds have passed (or its runs are done). */
const TIME_LIMIT_MS = 4000;
const RUNS = { numRuns: 100_000, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false };

let guard: Guard;
beforeAll(async () => {
  guard = await sharedGuard();
});

function isVerdict(v: Verdict): boolean {
  if (v.allowed) return Object.keys(v).length === 1;
  return typeof v.reason === 'string' && /^[0-9A-Z]{5}$/.test(v.sqlstate) && v.message.startsWith('pgfence: ');
}

// ---- random text ---------------------------------------------------------------------------

const SQL_PIECES = [
  'SELECT', ' ', '*', 'FROM', 'tenant_globex', '.', 't', ';', "'", '"', '$$', '$x$', '--', '/*', '*/', '(', ')', '::',
  'regclass', 'U&', '\\', 'E', ',', 'DO', 'BEGIN', 'END', 'EXECUTE', 'SET', 'search_path', '=', '\n', '\0', 'é', '😀',
];
const sqlish = fc.array(fc.constantFrom(...SQL_PIECES), { maxLength: 40 }).map((parts) => parts.join(''));

// ---- mutations of the attack corpus ----------------------------------------------------------

type Mutation = (s: string) => string;
const at = (s: string, i: number): number => (s.length === 0 ? 0 : i % (s.length + 1));
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), fc.string({ unit: 'binary', maxLength: 4 })).map(([i, text]): Mutation => (s) => s.slice(0, at(s, i)) + text + s.slice(at(s, i))),
  fc.tuple(fc.nat(), fc.nat({ max: 8 })).map(([i, n]): Mutation => (s) => s.slice(0, at(s, i)) + s.slice(at(s, i) + n)),
  fc.tuple(fc.nat(), fc.constantFrom(...SQL_PIECES)).map(([i, piece]): Mutation => (s) => s.slice(0, at(s, i)) + piece + s.slice(at(s, i))),
  fc.nat().map((i): Mutation => (s) => s.slice(0, at(s, i)) + s + s.slice(at(s, i))),
  fc.constant<Mutation>((s) => s.toUpperCase()),
);
const mutatedAttack = fc
  .tuple(fc.constantFrom(...ATTACKS.map(([, sql]) => sql)), fc.array(mutation, { minLength: 1, maxLength: 4 }))
  .map(([sql, mutations]) => mutations.reduce((s, m) => m(s), sql));

// ---- generated foreign schema references -------------------------------------------------------

const ALLOWED_SCHEMAS = new Set(['tenant_acme', 'public', 'pg_catalog', 'information_schema', 'pg_temp']);

/**
 * A schema name as Postgres stores it, and how a statement spells it: as an identifier, inside a
 * string literal, and in a PL/pgSQL declaration (whose scanner knows no U& identifiers).
 */
interface Spelled {
  schema: string;
  identifier: string;
  inLiteral: string;
  inDeclaration: string;
}

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;
const quoteLiteral = (text: string): string => text.replace(/'/g, "''");

const tenantLike: fc.Arbitrary<Spelled> = fc
  .tuple(fc.stringMatching(/^[a-z0-9_]{1,20}$/), fc.array(fc.boolean(), { maxLength: 30 }))
  .map(([suffix, upper]) => {
    const schema = `tenant_${suffix}`;
    const cased = [...schema].map((c, i) => (upper[i] === true ? c.toUpperCase() : c)).join('');
    return { schema, identifier: cased, inLiteral: cased, inDeclaration: cased };
  });

const quotedAnything: fc.Arbitrary<Spelled> = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 20 })
  // Postgres truncates identifiers to 63 bytes; a longer name would be another (shorter) schema.
  .filter((name) => !name.includes('\0') && !name.includes('$') && Buffer.byteLength(name) <= 63)
  .map((schema) => ({ schema, identifier: quoteIdent(schema), inLiteral: quoteIdent(schema), inDeclaration: quoteIdent(schema) }));

const unicodeEscaped: fc.Arbitrary<Spelled> = fc.tuple(tenantLike, fc.array(fc.boolean(), { maxLength: 30 })).map(([s, escape]) => {
  const body = [...s.schema].map((c, i) => (escape[i] === true ? `\\${c.codePointAt(0)?.toString(16).padStart(4, '0')}` : c)).join('');
  return { schema: s.schema, identifier: `U&"${body}"`, inLiteral: quoteIdent(s.schema), inDeclaration: quoteIdent(s.schema) };
});

const foreignSchema = fc.oneof(tenantLike, quotedAnything, unicodeEscaped).filter((s) => !ALLOWED_SCHEMAS.has(s.schema));

const IDENTIFIER_POSITIONS: Array<(s: string) => string> = [
  (s) => `SELECT * FROM ${s}.t`,
  (s) => `SELECT * FROM items i JOIN ${s}.t g ON g.id = i.id`,
  (s) => `SELECT (SELECT 1 FROM ${s}.t LIMIT 1)`,
  (s) => `WITH c AS (SELECT * FROM ${s}.t) SELECT * FROM c`,
  (s) => `INSERT INTO ${s}.t VALUES (1)`,
  (s) => `UPDATE ${s}.t SET a = 1`,
  (s) => `DELETE FROM items USING ${s}.t`,
  (s) => `SELECT ${s}.f(1)`,
  (s) => `SELECT 1::${s}.ty`,
  (s) => `SELECT 1 OPERATOR(${s}.+) 1`,
  (s) => `SELECT ${s}.t.c FROM t`,
  (s) => `COPY ${s}.t TO STDOUT`,
  (s) => `COPY (SELECT * FROM ${s}.t) TO STDOUT`,
  (s) => `CREATE VIEW v AS SELECT * FROM ${s}.t`,
  (s) => `ALTER TABLE t SET SCHEMA ${s}`,
  (s) => `GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO PUBLIC`,
  (s) => `DROP TABLE ${s}.t`,
  (s) => `TRUNCATE ${s}.t`,
  (s) => `CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION ${s}.f()`,
  (s) => `CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $body$ BEGIN DELETE FROM ${s}.t; END $body$`,
];

const DECLARATION_POSITIONS: Array<(s: string) => string> = [
  (s) => `DO $body$ DECLARE r ${s}.t%ROWTYPE; BEGIN NULL; END $body$`,
  (s) => `DO $body$ DECLARE v ${s}.t.c%TYPE; BEGIN NULL; END $body$`,
  (s) => `DO $body$ DECLARE v ${s}.ty; BEGIN NULL; END $body$`,
];

const LITERAL_POSITIONS: Array<(s: string) => string> = [
  (s) => `SELECT '${s}.t'::regclass`,
  (s) => `SELECT nextval('${s}.seq')`,
  (s) => `SELECT to_regclass('${s}.t')`,
  (s) => `SELECT table_to_xml('${s}.t', true, false, '')`,
  (s) => `SELECT has_table_privilege('${s}.t', 'SELECT')`,
];

const WRAPPERS: Array<(sql: string) => string> = [
  (sql) => sql,
  (sql) => `SELECT 1; ${sql}`,
  (sql) => `/* ${'x'} */ ${sql} -- trailing`,
  (sql) => (sql.startsWith('SELECT') ? `EXPLAIN ANALYZE ${sql}` : sql),
  (sql) => (sql.startsWith('SELECT') ? `PREPARE p AS ${sql}` : sql),
];

/** A declared %TYPE/%ROWTYPE whose quoted name holds a dot cannot be read back: refused as such. */
const UNREADABLE_DECLARATION = ['foreign_schema', 'dynamic_sql'];

const foreignStatement = fc
  .tuple(
    foreignSchema,
    fc.oneof(
      fc.constantFrom(...IDENTIFIER_POSITIONS).map((p) => (s: Spelled) => ({ sql: p(s.identifier), reasons: ['foreign_schema'] })),
      fc.constantFrom(...LITERAL_POSITIONS).map((p) => (s: Spelled) => ({ sql: p(quoteLiteral(s.inLiteral)), reasons: ['foreign_schema'] })),
      fc.constantFrom(...DECLARATION_POSITIONS).map((p) => (s: Spelled) => ({
        sql: p(s.inDeclaration),
        reasons: s.schema.includes('.') ? UNREADABLE_DECLARATION : ['foreign_schema'],
      })),
    ),
    fc.constantFrom(...WRAPPERS),
  )
  .map(([spelled, position, wrap]) => {
    const { sql, reasons } = position(spelled);
    return { schema: spelled.schema, sql: wrap(sql), reasons };
  });

describe('fuzzing (time-bounded)', () => {
  it('random text never throws and always gets a well-formed verdict', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), sqlish), (sql) => {
        expect(isVerdict(guard.check(sql, ACME))).toBe(true);
      }),
      RUNS,
    );
  }, TIME_LIMIT_MS * 3);

  it('mutated attacks never throw and always get a well-formed verdict', () => {
    fc.assert(
      fc.property(mutatedAttack, (sql) => {
        expect(isVerdict(guard.check(sql, ACME))).toBe(true);
      }),
      RUNS,
    );
  }, TIME_LIMIT_MS * 3);

  it('a generated foreign schema reference is refused, naming the schema', () => {
    fc.assert(
      fc.property(foreignStatement, ({ schema, sql, reasons }) => {
        const verdict = guard.check(sql, ACME);
        expect(verdict.allowed, sql).toBe(false);
        if (verdict.allowed) return;
        expect(reasons, `${sql} → ${verdict.message}`).toContain(verdict.reason);
        if (verdict.reason === 'foreign_schema') expect(verdict.message).toContain(`schema "${schema.replace(/"/g, '""')}"`);
      }),
      RUNS,
    );
  }, TIME_LIMIT_MS * 3);
});
