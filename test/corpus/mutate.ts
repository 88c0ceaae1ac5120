import { parseSync, scanSync } from 'libpg-query';

/**
 * Meaning-preserving mutations of SQL text, driven by a seeded generator, for fuzzing the guard
 * with variants of refused attacks. Each mutation keeps what Postgres would run the same:
 *
 * - case of keywords and unquoted identifiers (Postgres folds ASCII letters; strings untouched);
 * - whitespace and comments in the gaps between tokens (token boundaries from libpg-query's
 *   own scanner, so a mutation never splits a token);
 * - an unquoted identifier as the quoted or U&"..." identifier it folds to;
 * - a string literal in another spelling: '...', $tag$...$tag$, E'...', U&'...';
 * - the same, inside DO and function bodies (their text is SQL or PL/pgSQL too);
 * - the statement wrapped where it keeps running: a subquery, a CTE, EXPLAIN, PREPARE, a cursor,
 *   a view, COPY, a DO block or function body; or packed with a harmless statement.
 *
 * A mutant that no longer parses is still a valid probe: the guard must refuse it (as parse_error).
 */

/** A random number in [0, 1). */
export type Rng = () => number;

/** mulberry32: a small, fast, seeded 32-bit generator; the same seed gives the same sequence. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T;

export interface Mutant {
  sql: string;
  /** The mutations applied, in order (for reproducing a failure). */
  steps: string[];
}

// ---- tokens --------------------------------------------------------------------------------------

interface Token {
  /** Byte offsets into the UTF-8 text. */
  start: number;
  end: number;
  text: string;
  name: string;
  keyword: boolean;
}

function tokensOf(sql: string): Token[] | null {
  try {
    return scanSync(sql).tokens.map((t) => ({ start: t.start, end: t.end, text: t.text, name: t.tokenName, keyword: t.keywordKind > 0 }));
  } catch {
    return null; // an unterminated literal or comment: nothing to mutate token-wise
  }
}

const isComment = (t: Token): boolean => t.name === 'SQL_COMMENT' || t.name === 'C_COMMENT';

interface Edit {
  /** Text for token i instead of its own (undefined keeps it). */
  token?: (t: Token, i: number, all: Token[]) => string | undefined;
  /** Text inserted right before token i (i = tokens.length: at the very end). */
  gap?: (i: number) => string;
}

/** Rebuilds the text token by token, keeping the original gaps and applying the edit. */
function rewrite(sql: string, edit: Edit): string | null {
  const tokens = tokensOf(sql);
  if (tokens === null || tokens.length === 0) return null;
  const bytes = Buffer.from(sql, 'utf8');
  let out = '';
  let at = 0;
  tokens.forEach((t, i) => {
    out += bytes.toString('utf8', at, t.start);
    out += edit.gap?.(i) ?? '';
    out += edit.token?.(t, i, tokens) ?? bytes.toString('utf8', t.start, t.end);
    at = t.end;
  });
  out += bytes.toString('utf8', at);
  out += edit.gap?.(tokens.length) ?? '';
  return out;
}

// ---- case ------------------------------------------------------------------------------------------

const isUnquotedIdentifier = (t: Token): boolean => t.name === 'IDENT' && !t.text.startsWith('"');

function recase(rng: Rng, text: string): string {
  const mode = rng();
  if (mode < 0.3) return text.replace(/[a-z]/g, (c) => c.toUpperCase());
  if (mode < 0.5) return text.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return text.replace(/[a-zA-Z]/g, (c) => (rng() < 0.5 ? c.toUpperCase() : c.toLowerCase()));
}

function changeCase(sql: string, rng: Rng): string | null {
  return rewrite(sql, { token: (t) => ((t.keyword || isUnquotedIdentifier(t)) && rng() < 0.6 ? recase(rng, t.text) : undefined) });
}

// ---- whitespace and comments between tokens -------------------------------------------------------------

/** Whitespace to the Postgres scanner: space, tab, newline, carriage return, form feed, vertical tab. */
const FILLERS = [' ', '  ', '\t', '\n', '\r\n', '\f', '\v', '/**/', ' /* x */ ', '/* a /* nested */ b */', ' -- line comment\n', '\n--\n'];

function fillGaps(sql: string, rng: Rng): string | null {
  const rate = 0.15 + rng() * 0.6;
  return rewrite(sql, { gap: () => (rng() < rate ? pick(rng, FILLERS) : '') });
}

// ---- identifiers as quoted or unicode-escaped identifiers ------------------------------------------

/** Postgres folds unquoted identifiers by lower-casing ASCII letters only (in UTF-8). */
const foldIdentifier = (text: string): string => text.replace(/[A-Z]/g, (c) => c.toLowerCase());

function unicodeEscape(rng: Rng, text: string, escape: string): string {
  return [...text]
    .map((c) => {
      const code = c.codePointAt(0) as number;
      if (c === escape) return escape + escape;
      if (rng() >= 0.5) return c;
      return code > 0xffff ? `${escape}+${code.toString(16).padStart(6, '0')}` : `${escape}${code.toString(16).padStart(4, '0')}`;
    })
    .join('');
}

function quoteIdentifiers(sql: string, rng: Rng): string | null {
  return rewrite(sql, {
    token: (t) => {
      if (!isUnquotedIdentifier(t) || rng() >= 0.4) return undefined;
      const name = foldIdentifier(t.text);
      const form = rng();
      if (form < 0.4) return `"${name}"`;
      if (form < 0.8) return `U&"${unicodeEscape(rng, name, '\\')}"`;
      return `U&"${unicodeEscape(rng, name, '!')}" UESCAPE '!'`;
    },
  });
}

// ---- string literals in other spellings -------------------------------------------------------------

/** The value of a plain '...' or dollar-quoted literal; undefined for E'', U&'' and the like. */
function stringValue(text: string): string | undefined {
  if (text.startsWith("'") && text.endsWith("'") && text.length >= 2) return text.slice(1, -1).replace(/''/g, "'");
  const tag = /^(\$[A-Za-z_]*\$)/.exec(text)?.[1];
  if (tag !== undefined && text.endsWith(tag) && text.length >= 2 * tag.length) return text.slice(tag.length, -tag.length);
  return undefined;
}

function dollarQuote(rng: Rng, value: string): string {
  let tag = pick(rng, ['$$', '$q$', '$_x$', '$Body$']);
  while (`${value}$`.includes(tag) || value.endsWith('$')) tag = `$t${Math.floor(rng() * 1e9)}$`;
  return `${tag}${value}${tag}`;
}

function escapeString(rng: Rng, value: string): string {
  const body = [...value]
    .map((c) => {
      if (c === '\\') return '\\\\';
      if (c === "'") return "\\'";
      const code = c.codePointAt(0) as number;
      if (rng() >= 0.3 || code === 0) return c;
      // Fixed widths, so that a digit after the escape is never read as part of it.
      if (code < 0x80) return pick(rng, [`\\x${code.toString(16).padStart(2, '0')}`, `\\${code.toString(8).padStart(3, '0')}`, `\\u${code.toString(16).padStart(4, '0')}`]);
      return code > 0xffff ? `\\U${code.toString(16).padStart(8, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
    })
    .join('');
  return `E'${body}'`;
}

/** A literal with this value, in a random spelling. */
function spellString(rng: Rng, value: string): string {
  const form = rng();
  if (form < 0.3) return `'${value.replace(/'/g, "''")}'`;
  if (form < 0.6) return dollarQuote(rng, value);
  if (form < 0.8) return escapeString(rng, value);
  return `U&'${unicodeEscape(rng, value, '\\').replace(/'/g, "''")}'`;
}

const IDENTIFIER_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;

/** A replacement that cannot glue onto the characters around it ($tag$ after a name would extend it). */
function separated(sql: string, t: Token, replacement: string): string {
  const bytes = Buffer.from(sql, 'utf8');
  const before = t.start > 0 ? bytes.toString('utf8', Math.max(0, t.start - 4), t.start).slice(-1) : '';
  const after = bytes.toString('utf8', t.end, t.end + 4).slice(0, 1);
  return `${IDENTIFIER_CHAR.test(before) ? ' ' : ''}${replacement}${IDENTIFIER_CHAR.test(after) ? ' ' : ''}`;
}

/** String literals that stand alone: not a UESCAPE character, not glued to a prefix like N'...'. */
function isFreeString(t: Token, i: number, all: Token[]): boolean {
  if (t.name !== 'SCONST' || stringValue(t.text) === undefined) return false;
  const previous = all[i - 1];
  if (previous === undefined) return true;
  if (previous.text.toUpperCase() === 'UESCAPE') return false;
  return !(previous.end === t.start && (previous.keyword || previous.name === 'IDENT'));
}

function respellStrings(sql: string, rng: Rng): string | null {
  return rewrite(sql, {
    token: (t, i, all) => {
      if (!isFreeString(t, i, all) || rng() >= 0.6) return undefined;
      return separated(sql, t, spellString(rng, stringValue(t.text) as string));
    },
  });
}

// ---- inside DO and function bodies --------------------------------------------------------------------

/** A string right after AS or DO (or DO LANGUAGE x) is a body: SQL or PL/pgSQL text. */
function isBody(i: number, all: Token[]): boolean {
  const significant = all.slice(0, i).filter((t) => !isComment(t));
  const [third, second, first] = significant.slice(-3).map((t) => t.text.toUpperCase());
  return first === 'AS' || first === 'DO' || (second === 'LANGUAGE' && third === 'DO');
}

function mutateBodies(sql: string, rng: Rng): string | null {
  let touched = false;
  const out = rewrite(sql, {
    token: (t, i, all) => {
      if (!isFreeString(t, i, all) || !isBody(i, all)) return undefined;
      let body = stringValue(t.text) as string;
      for (const op of [changeCase, fillGaps]) if (rng() < 0.7) body = op(body, rng) ?? body;
      touched = true;
      return separated(sql, t, rng() < 0.7 ? dollarQuote(rng, body) : `'${body.replace(/'/g, "''")}'`);
    },
  });
  return touched ? out : null;
}

// ---- wrapping and packing ----------------------------------------------------------------------------

/** A dollar-quote tag that does not occur in the text. */
function freeTag(sql: string): string {
  let tag = '$w$';
  for (let n = 0; sql.includes(tag); n++) tag = `$w${n}$`;
  return tag;
}

const SELECT_WRAPPERS: Array<(s: string, tag: string) => string> = [
  (s) => `SELECT * FROM (${s}) AS pgfence_w`,
  (s) => `WITH pgfence_w AS (${s}) SELECT * FROM pgfence_w`,
  (s) => `WITH pgfence_v AS (SELECT 1), pgfence_w AS MATERIALIZED (${s}) SELECT * FROM pgfence_v, pgfence_w`,
  (s) => `SELECT EXISTS (${s})`,
  (s) => `SELECT 1 WHERE 1 IN (SELECT 1 FROM (${s}) AS pgfence_w)`,
  (s) => `SELECT * FROM items, LATERAL (${s}) AS pgfence_w`,
  (s) => `EXPLAIN ${s}`,
  (s) => `EXPLAIN (ANALYZE, FORMAT JSON) ${s}`,
  (s) => `PREPARE pgfence_w AS ${s}`,
  (s) => `DECLARE pgfence_w CURSOR FOR ${s}`,
  (s) => `CREATE VIEW pgfence_w AS ${s}`,
  (s) => `CREATE TABLE pgfence_w AS ${s}`,
  (s) => `COPY (${s}) TO STDOUT`,
  (s, tag) => `CREATE FUNCTION pgfence_w() RETURNS SETOF record LANGUAGE sql AS ${tag} ${s} ${tag}`,
  (s, tag) => `DO ${tag} BEGIN PERFORM * FROM (${s}) AS pgfence_w; END ${tag}`,
];

const DML_WRAPPERS: Array<(s: string, tag: string) => string> = [
  (s) => `WITH pgfence_w AS (${s}) SELECT 1`,
  (s) => `EXPLAIN ANALYZE ${s}`,
  (s) => `PREPARE pgfence_w AS ${s}`,
  (s, tag) => `CREATE FUNCTION pgfence_w() RETURNS void LANGUAGE sql AS ${tag} ${s} ${tag}`,
  (s) => `CREATE FUNCTION pgfence_w() RETURNS void LANGUAGE sql BEGIN ATOMIC ${s}; END`,
  (s, tag) => `DO ${tag} BEGIN ${s}; END ${tag}`,
];

/** Any statement can be sent from a DO block or a procedure body. */
const ANY_WRAPPERS: Array<(s: string, tag: string) => string> = [
  (s, tag) => `DO ${tag} BEGIN ${s}; END ${tag}`,
  (s, tag) => `DO ${tag} BEGIN BEGIN ${s}; EXCEPTION WHEN others THEN NULL; END; END ${tag}`,
  (s, tag) => `CREATE PROCEDURE pgfence_w() LANGUAGE sql AS ${tag} ${s} ${tag}`,
];

const PACKERS: Array<(s: string) => string> = [
  (s) => `SELECT 1; ${s}`,
  (s) => `${s}; SELECT 1`,
  (s) => `;${s};`,
  (s) => `BEGIN; ${s}; COMMIT`,
  (s) => `SELECT 1 /* ; */; ${s} -- ;`,
];

function statementTypes(sql: string): string[] | null {
  try {
    const stmts = (parseSync(sql) as unknown as { stmts?: Array<{ stmt: Record<string, unknown> }> }).stmts ?? [];
    return stmts.map((s) => Object.keys(s.stmt)[0] as string);
  } catch {
    return null;
  }
}

function wrap(sql: string, rng: Rng): string | null {
  const types = statementTypes(sql);
  if (types === null || types.length !== 1) return null;
  const body = sql.trim().replace(/;\s*$/, '');
  const type = types[0] as string;
  const wrappers =
    type === 'SelectStmt'
      ? [...SELECT_WRAPPERS, ...ANY_WRAPPERS]
      : ['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'].includes(type)
        ? [...DML_WRAPPERS, ...ANY_WRAPPERS]
        : ANY_WRAPPERS;
  return pick(rng, wrappers)(body, freeTag(body));
}

const pack = (sql: string, rng: Rng): string => pick(rng, PACKERS)(sql.trim().replace(/;\s*$/, ''));

// ---- the generator -----------------------------------------------------------------------------------

const TOKEN_MUTATIONS: Array<[string, (sql: string, rng: Rng) => string | null]> = [
  ['case', changeCase],
  ['gaps', fillGaps],
  ['quote-identifiers', quoteIdentifiers],
  ['respell-strings', respellStrings],
  ['bodies', mutateBodies],
];

/** One mutant of `sql`: maybe wrapped, maybe packed, then one to three token-level mutations. */
export function mutate(sql: string, rng: Rng): Mutant {
  for (let attempt = 0; attempt < 8; attempt++) {
    let text = sql;
    const steps: string[] = [];
    if (rng() < 0.3) {
      const wrapped = wrap(text, rng);
      if (wrapped !== null) {
        text = wrapped;
        steps.push('wrap');
      }
    }
    if (rng() < 0.2) {
      text = pack(text, rng);
      steps.push('pack');
    }
    const count = 1 + Math.floor(rng() * 3);
    for (let k = 0; k < count; k++) {
      const [name, op] = pick(rng, TOKEN_MUTATIONS);
      const next = op(text, rng);
      if (next !== null && next !== text) {
        text = next;
        steps.push(name);
      }
    }
    if (text !== sql) return { sql: text, steps };
  }
  return { sql: `${sql} `, steps: ['trailing-space'] };
}
