import { parsePlPgSQLSync, parseSync } from 'libpg-query';
import type { Analysis } from './analysis.js';
import {
  DATA_TOUCHING_FUNCTIONS,
  FORBIDDEN_FUNCTION_PREFIXES,
  FORBIDDEN_FUNCTIONS,
  FORBIDDEN_STATEMENTS,
  NAME_LIST_KEYS,
  NAME_TAKING_FUNCTIONS,
  PARSER_SETTINGS,
  REG_TYPES,
} from './rules.js';
import { splitQualifiedName } from './qualified-name.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

const isObj = (v: Json | undefined): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The sval of a String node, or undefined. */
function stringNode(v: Json | undefined): string | undefined {
  if (!isObj(v)) return undefined;
  const s = v['String'];
  return isObj(s) && typeof s['sval'] === 'string' ? s['sval'] : undefined;
}

/** The names of a list of String nodes, or undefined when any element is something else. */
function nameList(v: Json | undefined): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const names: string[] = [];
  for (const item of v) {
    const s = stringNode(item);
    if (s === undefined) return undefined;
    names.push(s);
  }
  return names;
}

/** The string value of an A_Const node (wrapped or not), or undefined. */
function stringConst(v: Json | undefined): string | undefined {
  if (!isObj(v)) return undefined;
  const c = isObj(v['A_Const']) ? v['A_Const'] : undefined;
  if (c === undefined) return undefined;
  const sval = c['sval'];
  return isObj(sval) && typeof sval['sval'] === 'string' ? sval['sval'] : undefined;
}

/** A string literal, possibly cast (e.g. 's.t'::text or 's.t'::regclass). */
function literalThroughCasts(v: Json | undefined): string | undefined {
  const direct = stringConst(v);
  if (direct !== undefined) return direct;
  if (isObj(v) && isObj(v['TypeCast'])) return literalThroughCasts(v['TypeCast']['arg']);
  return undefined;
}

/** Adds the schema (and catalog) of a qualified name given as parts. */
function addQualified(a: Analysis, parts: readonly string[]): void {
  if (parts.length >= 2) a.schemas.add(parts[parts.length - 2] as string);
  if (parts.length >= 3) a.catalogs.add(parts[parts.length - 3] as string);
}

/** Walks every node of a parse tree and records what the guard must know. */
export function walkTree(root: Json, a: Analysis, statementText = '', topLevel = true): void {
  const stack: Array<{ key: string; value: Json }> = [{ key: '', value: root }];
  while (stack.length > 0) {
    const { key, value } = stack.pop() as { key: string; value: Json };
    if (Array.isArray(value)) {
      if (NAME_LIST_KEYS.has(key)) {
        const names = nameList(value);
        if (names !== undefined) addQualified(a, names);
      }
      for (const item of value) stack.push({ key, value: item });
      continue;
    }
    if (!isObj(value)) continue;
    visitObject(key, value, a, statementText, topLevel);
    for (const [k, v] of Object.entries(value)) {
      if (v !== null && typeof v === 'object') stack.push({ key: k, value: v });
    }
  }
}

function visitObject(key: string, o: Obj, a: Analysis, statementText: string, topLevel: boolean): void {
  // RangeVar and friends, wrapped or not: any schemaname/catalogname property is a reference.
  if (typeof o['schemaname'] === 'string') a.schemas.add(o['schemaname']);
  if (typeof o['catalogname'] === 'string') a.catalogs.add(o['catalogname']);
  if (typeof o['newschema'] === 'string') a.schemas.add(o['newschema']);
  if (key === 'objects' || key === 'object') {
    const list = isObj(o['List']) ? nameList(o['List']['items']) : undefined;
    if (list !== undefined) addQualified(a, list);
  }
  for (const [type, body] of Object.entries(o)) {
    if (!isObj(body)) continue;
    const forbidden = FORBIDDEN_STATEMENTS.get(type);
    if (forbidden !== undefined) a.forbidden.push({ reason: 'forbidden_statement', what: forbidden });
    switch (type) {
      case 'ColumnRef': {
        const fields = Array.isArray(body['fields']) ? body['fields'] : [];
        const parts = fields.map((f) => stringNode(f) ?? '*');
        // a.b.c is schema.table.column (or schema.table.*); a.b.c.d adds a database in front.
        if (parts.length >= 3) a.schemas.add(parts[parts.length - 3] as string);
        if (parts.length >= 4) a.catalogs.add(parts[parts.length - 4] as string);
        break;
      }
      case 'A_Expr': {
        const names = nameList(body['name']);
        if (names !== undefined) addQualified(a, names);
        break;
      }
      case 'FuncCall':
        visitFuncCall(body, a, topLevel);
        break;
      case 'TypeCast':
        visitCast(body, a);
        break;
      case 'VariableSetStmt':
        // A SET clause of CREATE/ALTER FUNCTION is found under a DefElem's `arg`, not as a statement.
        visitSet(body, a, topLevel && key !== 'arg');
        break;
      case 'DiscardStmt':
        if (body['target'] === 'DISCARD_ALL') a.settings.add('*');
        break;
      case 'GrantStmt':
        if (body['targtype'] === 'ACL_TARGET_ALL_IN_SCHEMA') for (const s of nameList(body['objects']) ?? []) a.schemas.add(s);
        break;
      case 'DropStmt':
        if (body['removeType'] === 'OBJECT_SCHEMA') a.forbidden.push({ reason: 'forbidden_statement', what: 'DROP SCHEMA' });
        break;
      case 'RenameStmt':
        if (body['renameType'] === 'OBJECT_SCHEMA') a.forbidden.push({ reason: 'forbidden_statement', what: 'ALTER SCHEMA' });
        break;
      case 'CopyStmt':
        if (typeof body['filename'] === 'string' || body['is_program'] === true) {
          a.forbidden.push({ reason: 'forbidden_statement', what: 'COPY to or from a file or program' });
        }
        break;
      case 'PrepareStmt':
        if (topLevel) a.sessionEffects.push({ kind: 'unsupported', what: 'PREPARE' });
        break;
      case 'ListenStmt':
        if (topLevel) a.sessionEffects.push({ kind: 'unsupported', what: 'LISTEN' });
        break;
      case 'DeclareCursorStmt':
        if (topLevel && (Number(body['options'] ?? 0) & CURSOR_OPT_HOLD) !== 0) {
          a.sessionEffects.push({ kind: 'unsupported', what: 'DECLARE ... WITH HOLD' });
        }
        break;
      case 'CreateStmt':
      case 'CreateSeqStmt':
      case 'ViewStmt':
      case 'CreateTableAsStmt':
        if (topLevel) visitTemporary(type, body, a);
        break;
      case 'DoStmt':
        visitBody(body, 'DO', a, '');
        break;
      case 'CreateFunctionStmt':
        visitBody(body, 'CREATE FUNCTION', a, statementText);
        break;
      default:
        break;
    }
  }
}

const CURSOR_OPT_HOLD = 0x0020;

/** Temporary objects outlive the transaction unless ON COMMIT DROP: pinned session state. */
function visitTemporary(type: string, body: Obj, a: Analysis): void {
  const into = isObj(body['into']) ? body['into'] : undefined;
  const rel = into !== undefined ? into['rel'] : (body['relation'] ?? body['sequence'] ?? body['view']);
  if (!isObj(rel) || rel['relpersistence'] !== 't') return;
  const onCommit = into !== undefined ? into['onCommit'] : body['oncommit'];
  if (onCommit === 'ONCOMMIT_DROP') return;
  const what = type === 'ViewStmt' ? 'a temporary view' : type === 'CreateSeqStmt' ? 'a temporary sequence' : 'a temporary table without ON COMMIT DROP';
  a.sessionEffects.push({ kind: 'unsupported', what });
}

const SESSION_ADVISORY_LOCKS = new Set(['pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared']);

function functionName(body: Obj): { names: string[]; name: string } {
  const names = nameList(body['funcname']) ?? [];
  return { names, name: (names[names.length - 1] ?? '').toLowerCase() };
}

function visitFuncCall(body: Obj, a: Analysis, topLevel: boolean): void {
  const { names, name } = functionName(body);
  const schema = names.length >= 2 ? names[names.length - 2] : 'pg_catalog';
  if (schema !== 'pg_catalog') return; // a tenant's own function of that name: its schema is checked
  const args = Array.isArray(body['args']) ? body['args'] : [];
  if (topLevel && SESSION_ADVISORY_LOCKS.has(name)) a.sessionEffects.push({ kind: 'unsupported', what: 'a session-level advisory lock' });
  if (FORBIDDEN_FUNCTIONS.has(name) || FORBIDDEN_FUNCTION_PREFIXES.some((p) => name.startsWith(p))) {
    a.forbidden.push({ reason: 'dynamic_sql', what: `${name}()` });
    return;
  }
  if (name === 'set_config') {
    const setting = literalThroughCasts(args[0]);
    if (setting === undefined) {
      a.forbidden.push({ reason: 'dynamic_sql', what: 'set_config() with a computed setting name' });
      return;
    }
    const value = literalThroughCasts(args[1]);
    recordSetting(a, setting.toLowerCase(), value);
    const isLocal = constText(args[2]) ?? literalThroughCasts(args[2]);
    if (topLevel && isLocal !== 'on' && isLocal !== 'true' && isLocal !== 't') {
      if (value === undefined || isLocal === undefined) a.sessionEffects.push({ kind: 'unsupported', what: 'set_config() with a computed value or scope' });
      else a.sessionEffects.push({ kind: 'set', name: setting.toLowerCase(), value });
    }
    return;
  }
  if (NAME_TAKING_FUNCTIONS.has(name)) {
    for (const arg of args) {
      const literal = literalThroughCasts(arg);
      if (literal !== undefined) addLiteralName(a, literal, name === 'has_schema_privilege' || name === 'to_regnamespace');
    }
    const first = args[0];
    if (DATA_TOUCHING_FUNCTIONS.has(name) && first !== undefined && literalThroughCasts(first) === undefined) {
      a.forbidden.push({ reason: 'dynamic_sql', what: `${name}() on a computed object name` });
    }
  }
}

function visitCast(body: Obj, a: Analysis): void {
  const typeName = body['typeName'];
  const names = isObj(typeName) ? nameList(typeName['names']) : undefined;
  const type = names?.[names.length - 1]?.toLowerCase();
  if (type === undefined || !REG_TYPES.has(type)) return;
  const literal = stringConst(body['arg']);
  if (literal !== undefined) {
    addLiteralName(a, literal, type === 'regnamespace');
    return;
  }
  const arg = body['arg'];
  // Casting a column (an OID) to a name is how catalog queries print names; anything computed is not.
  const harmless = isObj(arg) && (isObj(arg['ColumnRef']) || isObj(arg['A_Const']));
  if (!harmless) a.forbidden.push({ reason: 'dynamic_sql', what: `a computed ${type} name` });
}

/** A string Postgres will read as an object name: its schema counts as named. */
function addLiteralName(a: Analysis, literal: string, wholeIsSchema: boolean): void {
  const parts = splitQualifiedName(literal);
  if (parts === null) return; // not a name (e.g. a privilege list); Postgres would reject it as one
  if (wholeIsSchema && parts.length === 1) a.schemas.add(parts[0] as string);
  else addQualified(a, parts);
}

function visitSet(body: Obj, a: Analysis, sessionStatement: boolean): void {
  const kind = body['kind'];
  if (kind === 'VAR_RESET_ALL') {
    a.settings.add('*');
    return;
  }
  const name = typeof body['name'] === 'string' ? body['name'].toLowerCase() : '';
  if (name === 'session characteristics') {
    if (sessionStatement) a.sessionEffects.push({ kind: 'unsupported', what: 'SET SESSION CHARACTERISTICS' });
    return;
  }
  if (name === '' || kind === 'VAR_SET_MULTI') return; // SET TRANSACTION and friends: this transaction only
  const args = Array.isArray(body['args']) ? body['args'] : [];
  const parts = args.map((arg) => stringConst(arg) ?? constText(arg));
  const value = kind === 'VAR_SET_VALUE' ? (parts.every((p) => p !== undefined) ? parts.join(', ') : undefined) : 'default';
  recordSetting(a, name, value);
  if (!sessionStatement || body['is_local'] === true) return;
  if (kind === 'VAR_SET_VALUE' && value !== undefined) a.sessionEffects.push({ kind: 'set', name, value });
  else if (kind === 'VAR_SET_DEFAULT' || kind === 'VAR_RESET') a.sessionEffects.push({ kind: 'set', name, value: null });
  else a.sessionEffects.push({ kind: 'unsupported', what: `SET ${name} FROM CURRENT` });
}

function constText(v: Json | undefined): string | undefined {
  if (!isObj(v) || !isObj(v['A_Const'])) return undefined;
  const c = v['A_Const'];
  if (isObj(c['ival'])) return String(c['ival']['ival'] ?? 0);
  if (isObj(c['boolval'])) return c['boolval']['boolval'] === true ? 'on' : 'off';
  return undefined;
}

function recordSetting(a: Analysis, name: string, value: string | undefined): void {
  a.settings.add(name);
  const safe = PARSER_SETTINGS.get(name);
  if (safe !== undefined && (value === undefined || !safe(value))) {
    a.forbidden.push({ reason: 'parser_divergence', what: `${name} = ${value ?? '(computed)'}` });
  }
}

/**
 * Function and DO bodies: SQL bodies are parsed and walked like any statement; PL/pgSQL is parsed
 * with the PL/pgSQL parser, every embedded statement walked, and dynamic EXECUTE refused.
 */
function visitBody(body: Obj, what: string, a: Analysis, statementText: string): void {
  const list = body['options'] ?? body['args'];
  const options = Array.isArray(list) ? list : [];
  let language = 'plpgsql';
  let source: string | undefined;
  for (const opt of options) {
    const def = isObj(opt) && isObj(opt['DefElem']) ? opt['DefElem'] : undefined;
    if (def === undefined) continue;
    if (def['defname'] === 'language') language = (stringNode(def['arg']) ?? language).toLowerCase();
    if (def['defname'] === 'as') {
      const arg = def['arg'];
      const items = isObj(arg) && isObj(arg['List']) ? arg['List']['items'] : undefined;
      source = stringNode(arg) ?? (Array.isArray(items) ? stringNode(items[0]) : undefined);
    }
  }
  if (body['sql_body'] !== undefined) return; // BEGIN ATOMIC: already part of this tree
  if (source === undefined) return; // DROP/ALTER forms carry no body
  if (language === 'sql') {
    walkSqlText(source, a, false);
    return;
  }
  if (language !== 'plpgsql') {
    a.forbidden.push({ reason: 'forbidden_statement', what: `${what} in language ${language}` });
    return;
  }
  // The PL/pgSQL parser needs the whole CREATE FUNCTION (its return type decides what RETURN may say).
  const text = what === 'DO' || !/^\s*create/i.test(statementText) ? asVoidFunction(source) : statementText;
  try {
    const tree = parsePlPgSQLSync(text) as unknown as Json;
    walkPlpgsql(tree, a);
  } catch (error) {
    a.forbidden.push({ reason: 'dynamic_sql', what: `${what} body that does not parse (${(error as Error).message})` });
  }
}

function asVoidFunction(source: string): string {
  return `CREATE FUNCTION pgfence_body() RETURNS void LANGUAGE plpgsql AS $pgfence$${source}$pgfence$`;
}

function walkPlpgsql(root: Json, a: Analysis): void {
  const stack: Json[] = [root];
  while (stack.length > 0) {
    const value = stack.pop() as Json;
    if (Array.isArray(value)) {
      stack.push(...value);
      continue;
    }
    if (!isObj(value)) continue;
    for (const [k, v] of Object.entries(value)) {
      if (k === 'PLpgSQL_stmt_dynexecute' || k === 'PLpgSQL_stmt_dynfors' || k === 'PLpgSQL_stmt_open' && isObj(v) && v['dynquery'] !== undefined) {
        a.forbidden.push({ reason: 'dynamic_sql', what: 'dynamic EXECUTE in PL/pgSQL' });
      }
      if (k === 'PLpgSQL_expr' && isObj(v) && typeof v['query'] === 'string') walkPlpgsqlExpr(v['query'], Number(v['parseMode'] ?? 0), a);
      if (v !== null && typeof v === 'object') stack.push(v);
    }
  }
}

/** parseMode: 0 a whole statement, 2 an expression, 3-5 an assignment `target := expression`. */
function walkPlpgsqlExpr(query: string, parseMode: number, a: Analysis): void {
  if (parseMode === 0) {
    walkSqlText(query, a, false);
    return;
  }
  let expression = query;
  if (parseMode >= 3) {
    const assign = query.indexOf(':=');
    const eq = query.indexOf('=');
    const at = assign >= 0 ? assign + 2 : eq >= 0 ? eq + 1 : -1;
    expression = at >= 0 ? query.slice(at) : query;
  }
  walkSqlText(`SELECT ${expression}`, a, false);
}

/** Parses SQL text and walks it into `a`; a text that does not parse fails closed. */
export function walkSqlText(sql: string, a: Analysis, topLevel = true): void {
  let tree: { stmts?: Array<{ stmt: Json; stmt_location?: number; stmt_len?: number }> };
  try {
    tree = parseSync(sql) as unknown as typeof tree;
  } catch (error) {
    a.parseError = (error as Error).message;
    return;
  }
  const bytes = Buffer.from(sql, 'utf8');
  for (const entry of tree.stmts ?? []) {
    // Locations are byte offsets into the UTF-8 text; a length of 0 means "to the end".
    const start = entry.stmt_location ?? 0;
    const end = entry.stmt_len ? start + entry.stmt_len : bytes.length;
    walkTree(entry.stmt, a, bytes.toString('utf8', start, end), topLevel);
  }
}
