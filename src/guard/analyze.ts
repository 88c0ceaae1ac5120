import { parseSync } from 'libpg-query';
import { type Analysis, emptyFacts, type Facts, freeze } from './analysis.js';
import { type Json, node } from './json.js';
import { walkStatement } from './walk.js';

/**
 * Statements well-known tools send, by their exact text, with a plain statement that does the
 * same, whose analysis stands for theirs. pg_dump 15.8+ (and 16.4+, 17+) restricts itself with a
 * set_config whose name comes from a row of pg_settings, out of the guard's sight; the row it
 * names is fixed, so the statement equals setting that name directly.
 */
const TOOL_STATEMENTS: ReadonlyMap<string, string> = new Map([
  [
    "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'",
    "SELECT pg_catalog.set_config('restrict_nonsystem_relation_kind', 'view, foreign-table', false)",
  ],
]);

/** Parser messages can quote the rest of an unterminated literal: keep them short. */
const MAX_ERROR_LENGTH = 160;

/**
 * Everything the guard needs to know about a SQL text, tenant-independent. Never throws: a text
 * that does not parse, or that the walk cannot finish (nesting too deep for the stack), is
 * recorded as a parse error and refused.
 */
export function analyzeSql(sql: string): Analysis {
  const facts = emptyFacts();
  try {
    walkSqlText(TOOL_STATEMENTS.get(sql.trim().replace(/;$/, '')) ?? sql, facts, true, null);
  } catch (error) {
    facts.parseError ??= `statement too complex to analyse (${(error as Error).message})`;
  }
  facts.parseError = facts.parseError === null ? null : shorten(facts.parseError);
  return freeze(facts);
}

interface ParsedStatement {
  stmt: Json;
  stmt_location?: number;
  stmt_len?: number;
}

/**
 * Parses a SQL text and walks each of its statements into `facts`. `what` names text found
 * inside a statement (a function body, a type name in a literal); null for the client's text.
 */
function walkSqlText(sql: string, facts: Facts, runsNow: boolean, what: string | null): void {
  let statements: ParsedStatement[];
  try {
    // The parser rejects an empty text; Postgres answers it with EmptyQueryResponse.
    statements = sql === '' ? [] : ((parseSync(sql) as unknown as { stmts?: ParsedStatement[] }).stmts ?? []);
  } catch (error) {
    const message = (error as Error).message;
    facts.parseError ??= what === null ? message : `${what}: ${message}`;
    return;
  }
  const bytes = Buffer.from(sql, 'utf8');
  const walkText = (text: string, nestedRunsNow: boolean, nestedWhat: string): void => walkSqlText(text, facts, nestedRunsNow, nestedWhat);
  // RESET ALL and DISCARD ALL are allowed only in the text's tail, where pgfence re-pins right after them.
  let tail = statements.length;
  while (tail > 0 && isSessionReset((statements[tail - 1] as ParsedStatement).stmt)) tail--;
  statements.forEach((entry, i) => {
    // Locations are byte offsets into the UTF-8 text; a length of 0 means "to the end".
    const start = entry.stmt_location ?? 0;
    const end = entry.stmt_len ? start + entry.stmt_len : bytes.length;
    const statementText = bytes.toString('utf8', start, end);
    const clientStatement = what === null ? { start, end, onlyResetsFollow: i + 1 >= tail } : null;
    walkStatement(entry.stmt, { facts, runsNow, statementText, clientStatement, inView: false, inPrepare: false, walkText });
  });
}

function isSessionReset(stmt: Json): boolean {
  return node(stmt, 'VariableSetStmt')?.['kind'] === 'VAR_RESET_ALL' || node(stmt, 'DiscardStmt')?.['target'] === 'DISCARD_ALL';
}

function shorten(message: string): string {
  return message.length <= MAX_ERROR_LENGTH ? message : `${message.slice(0, MAX_ERROR_LENGTH)}...`;
}
