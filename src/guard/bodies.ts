import { parsePlPgSQLSync, scanSync } from 'libpg-query';
import { refuse } from './analysis.js';
import { readTypeText } from './functions.js';
import { arrayOf, isObj, type Json, node, type Obj, stringList, stringNode } from './json.js';
import type { Scope } from './scope.js';

/**
 * DO blocks and CREATE FUNCTION/PROCEDURE bodies. SQL bodies are parsed and walked like any
 * statement. PL/pgSQL is parsed with the PL/pgSQL parser: every embedded statement and expression
 * is walked, declared types are read, and EXECUTE of a query string is refused. Any other
 * language is refused: pgfence cannot see what it would run.
 */
export function visitBody(body: Obj, what: string, scope: Scope): void {
  let language: string | undefined;
  let source: string | undefined;
  for (const option of arrayOf(body['options'] ?? body['args'])) {
    const def = node(option, 'DefElem');
    if (def === undefined) continue;
    if (def['defname'] === 'language') language = stringNode(def['arg'])?.toLowerCase();
    if (def['defname'] === 'as') source = stringNode(def['arg']) ?? stringList(def['arg'])?.[0];
  }
  if (body['sql_body'] !== undefined) return; // BEGIN ATOMIC / RETURN: already part of this tree
  if (source === undefined) return;
  const isDo = what === 'DO';
  language ??= isDo ? 'plpgsql' : undefined;
  if (language === 'sql' && !isDo) {
    scope.walkText(source, false, `the body of ${what}`);
    return;
  }
  if (language !== 'plpgsql') {
    refuse(scope.facts, 'forbidden_statement', language === undefined ? `${what} without a LANGUAGE clause` : `${what} in language ${language}`);
    return;
  }
  // The PL/pgSQL parser compiles whole CREATE FUNCTION statements (the return type decides what RETURN may say).
  const text = isDo ? asVoidFunction(source) : scope.statementText;
  let functions: Json[];
  try {
    const tree = parsePlPgSQLSync(text) as unknown as Obj;
    functions = arrayOf(tree['plpgsql_funcs']);
  } catch (error) {
    scope.facts.parseError ??= `the PL/pgSQL body of ${what}: ${(error as Error).message}`;
    return;
  }
  if (functions.length !== 1) {
    refuse(scope.facts, 'dynamic_sql', `a ${what} that pgfence cannot match to its PL/pgSQL body`);
    return;
  }
  walkPlpgsql(functions[0] as Json, scope, isDo && scope.runsNow);
}

/** Wraps a DO body as a function, with a dollar-quote tag the body cannot close early. */
function asVoidFunction(source: string): string {
  let tag = 'pgfence';
  while ((source + `$${tag}$`).indexOf(`$${tag}$`) !== source.length) tag += '_';
  return `CREATE FUNCTION pgfence_do() RETURNS void LANGUAGE plpgsql AS $${tag}$${source}$${tag}$`;
}

function walkPlpgsql(root: Json, scope: Scope, runsNow: boolean): void {
  const stack: Json[] = [root];
  let dynamic = false;
  while (stack.length > 0) {
    const value = stack.pop() as Json;
    if (Array.isArray(value)) {
      stack.push(...value);
      continue;
    }
    if (!isObj(value)) continue;
    for (const key in value) {
      const child = value[key] as Json;
      if (key === 'PLpgSQL_stmt_dynexecute' || key === 'PLpgSQL_stmt_dynfors' || key === 'dynquery') dynamic = true;
      else if (key === 'PLpgSQL_expr' && isObj(child)) walkExpression(child, scope, runsNow);
      else if (key === 'PLpgSQL_type' && isObj(child) && typeof child['typname'] === 'string') walkDeclaredType(child['typname'], scope);
      if (child !== null && typeof child === 'object') stack.push(child);
    }
  }
  if (dynamic) refuse(scope.facts, 'dynamic_sql', 'EXECUTE of a query string in PL/pgSQL', 'dynamic_sql');
}

// RawParseMode of the expression: a statement, a type name, an expression, an assignment `target := expr`.
const RAW_PARSE_DEFAULT = 0;
const RAW_PARSE_TYPE_NAME = 1;
const RAW_PARSE_PLPGSQL_EXPR = 2;
const RAW_PARSE_PLPGSQL_ASSIGN3 = 5;

function walkExpression(expr: Obj, scope: Scope, runsNow: boolean): void {
  const query = expr['query'];
  if (typeof query !== 'string') return;
  const mode = typeof expr['parseMode'] === 'number' ? expr['parseMode'] : RAW_PARSE_DEFAULT;
  const where = 'a PL/pgSQL body';
  if (mode === RAW_PARSE_DEFAULT) scope.walkText(query, runsNow, `a statement in ${where}`);
  else if (mode === RAW_PARSE_TYPE_NAME) readTypeText(query, where, scope);
  else if (mode === RAW_PARSE_PLPGSQL_EXPR) scope.walkText(`SELECT ${query}`, runsNow, `an expression in ${where}`);
  else if (mode <= RAW_PARSE_PLPGSQL_ASSIGN3) walkAssignment(query, scope, runsNow);
  else refuse(scope.facts, 'dynamic_sql', 'a PL/pgSQL construct pgfence does not know');
}

/** `target := expression`: the expression, and the target's subscripts, are SQL. */
function walkAssignment(query: string, scope: Scope, runsNow: boolean): void {
  const bytes = Buffer.from(query, 'utf8');
  let at = -1;
  try {
    let depth = 0;
    for (const token of scanSync(query).tokens) {
      if (token.text === '[' || token.text === '(') depth++;
      else if (token.text === ']' || token.text === ')') depth--;
      else if (depth === 0 && (token.text === ':=' || token.text === '=')) {
        at = token.end;
        const target = bytes.toString('utf8', 0, token.start);
        if (target.includes('[')) scope.walkText(`SELECT ${target}`, runsNow, 'an assignment target in a PL/pgSQL body');
        break;
      }
    }
  } catch {
    at = -1;
  }
  if (at < 0) {
    scope.facts.parseError ??= 'an assignment in a PL/pgSQL body that pgfence cannot read';
    return;
  }
  scope.walkText(`SELECT ${bytes.toString('utf8', at)}`, runsNow, 'an expression in a PL/pgSQL body');
}

/**
 * A declared type. Plain types come as written and are parsed as SQL. For %ROWTYPE and %TYPE the
 * PL/pgSQL parser hands back the resolved parts joined with dots, quotes dropped (`"Q".t` reads
 * `Q.t`): the parts are taken verbatim, and a name with more parts than the form allows (a
 * database qualifier, or a dot inside a quoted name) is refused rather than guessed at.
 */
function walkDeclaredType(typname: string, scope: Scope): void {
  const match = /^(.*)%(rowtype|type)$/is.exec(typname);
  if (match === null) {
    readTypeText(typname, 'a PL/pgSQL declaration', scope);
    return;
  }
  const parts = (match[1] as string).split('.');
  const withColumn = (match[2] as string).toLowerCase() === 'type';
  const maxParts = withColumn ? 3 : 2;
  if (parts.length > maxParts) refuse(scope.facts, 'dynamic_sql', `a %${withColumn ? 'TYPE' : 'ROWTYPE'} declaration pgfence cannot read`);
  else if (parts.length === maxParts) scope.facts.schemas.add(parts[0] as string);
}
