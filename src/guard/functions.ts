import { addQualified, type Facts, noteHidden, noteNotifyCall, type NotifyCall, refuse } from './analysis.js';
import { scanSync } from 'libpg-query';
import { arrayOf, isObj, type Json, literalOf, node, type Obj, stringConst, stringList, stringNode } from './json.js';
import { arrayElements, splitQualifiedName, splitSignature } from './literal-names.js';
import { PG_CATALOG_NAMES } from './pg-catalog-names.js';
import { forbiddenFunction, NAME_ARGUMENTS, type NameSyntax, REG_TYPES } from './rules.js';
import type { Scope } from './scope.js';
import { visitSetConfig } from './settings.js';

const SESSION_ADVISORY_LOCKS = new Set(['pg_advisory_lock', 'pg_advisory_lock_shared', 'pg_try_advisory_lock', 'pg_try_advisory_lock_shared']);

/** How a function is reached: written as a call, as field notation (`x.name`), or by CALL. */
export type CallForm = 'call' | 'field' | 'procedure';

/**
 * A function call. Rules go by the function's own name whatever schema qualifies it: the
 * built-ins live in pg_catalog, but an extension (dblink) may sit in a shared schema, and a
 * tenant's function that merely shares a dangerous name is refused too (fail closed).
 */
export function visitFuncCall(body: Obj, scope: Scope, form: CallForm = 'call'): void {
  const f = scope.facts;
  const names = stringList(body['funcname']) ?? [];
  if (scope.runsNow) visitHiddenCall(names, form, f);
  const name = (names[names.length - 1] ?? '').toLowerCase();
  const args = arrayOf(body['args']);
  if (judgeCalled(name, `${name}()`, f)) return;
  if (name === 'ts_rewrite' && args.length === 2) {
    refuse(f, 'dynamic_sql', 'ts_rewrite() with a query text', 'dynamic_sql');
    return;
  }
  if (name === 'pg_notify') {
    visitNotifyCall(body, scope);
    return;
  }
  if (name === 'set_config') {
    visitSetConfig(args, f, scope.runsNow, scope.clientStatement !== null);
    return;
  }
  if (scope.runsNow && SESSION_ADVISORY_LOCKS.has(name)) f.sessionEffects.push({ kind: 'unsupported', what: 'a session-level advisory lock' });
  if (STATISTICS_IMPORT.has(name)) {
    visitStatisticsImport(name, body['func_variadic'] === true ? null : args, scope);
    return;
  }
  const spec = NAME_ARGUMENTS.get(name);
  if (spec === undefined) return;
  const arg = args[spec.index(args.length)];
  if (arg === undefined) return;
  // Named arguments come after the positional ones in any order: which one names the object is unknown.
  if (args.length > 1 && node(arg, 'NamedArgExpr') !== undefined) {
    refuse(f, 'dynamic_sql', `${name}() with named arguments`);
    return;
  }
  const literal = literalOf(arg);
  if (literal !== undefined) {
    if (spec.ambiguous?.(args.length) === true && splitQualifiedName(literal) === null) return; // not a name: the other argument
    readName(literal, spec.syntax, `${name}()`, scope, spec.acts);
    if (WRITES_NAMED_OBJECT.has(name)) addWrittenSchema(literal, spec.syntax, scope);
  } else if (spec.acts && !isCheckedSequenceLookup(arg)) {
    refuse(f, 'dynamic_sql', `${name}() on a computed object name`);
  } else if (WRITES_NAMED_OBJECT.has(name)) {
    const table = literalOf(arrayOf(node(arg, 'FuncCall')?.['args'])[0]);
    if (table !== undefined) addWrittenSchema(table, 'qualified', scope); // nextval(pg_get_serial_sequence('s.t', 'c')): the sequence is in s
  }
}

/**
 * pg_notify(channel, payload): channels are database-wide, so pgfence maps the channel to the
 * tenant's private one, which it can only do for a call in the client's own text that runs now,
 * with a string literal or a parameter ($N, possibly cast to text; not in PREPARE, where $N is an
 * argument of a later EXECUTE) as the channel. Any other call (a computed channel, one in a body,
 * view, rule or default that runs later) is refused.
 */
function visitNotifyCall(body: Obj, scope: Scope): void {
  const f = scope.facts;
  const at = scope.clientStatement;
  if (at === null || !scope.runsNow) {
    refuse(f, 'forbidden_statement', 'pg_notify() inside a function body, DO block, view, rule or stored expression');
    return;
  }
  const args = arrayOf(body['args']);
  const channel = args.length === 2 && body['func_variadic'] !== true ? notifyChannel(args[0] as Json, scope) : undefined;
  if (channel === undefined) {
    refuse(f, 'dynamic_sql', 'pg_notify() with a channel that is not a string literal or a parameter');
    return;
  }
  noteNotifyCall(f, { channel }, typeof body['location'] === 'number' ? body['location'] : at.start);
}

/** The channel argument as a literal (with its token's byte range) or a parameter; undefined for anything else. */
function notifyChannel(arg: Json, scope: Scope): NotifyCall['channel'] | undefined {
  const cast = node(arg, 'TypeCast');
  const inner = cast !== undefined && isTextType(cast['typeName']) ? cast['arg'] : arg;
  const param = node(inner, 'ParamRef');
  if (param !== undefined) {
    const n = param['number'];
    return typeof n === 'number' && n > 0 && !scope.inPrepare ? { param: n } : undefined;
  }
  const literal = stringConst(inner);
  const location = node(inner, 'A_Const')?.['location'];
  if (literal === undefined || typeof location !== 'number') return undefined;
  const token = stringToken(scope, location);
  return token === undefined ? undefined : { literal, start: token.start, end: token.end };
}

function isTextType(typeName: Json | undefined): boolean {
  if (!isObj(typeName) || typeName['arrayBounds'] !== undefined || typeName['typmods'] !== undefined) return false;
  const names = stringList(typeName['names']);
  return names !== undefined && names[names.length - 1] === 'text' && (names.length === 1 || (names.length === 2 && names[0] === 'pg_catalog'));
}

/**
 * The byte range of the string literal token that starts at `location` (a byte offset in the
 * client's text), read with the server's own scanner: continuation lines and dollar quotes
 * included. Only a plain string token (SCONST: '', E'', $$) qualifies; U&'' may be followed by
 * UESCAPE, which a replacement of the token alone would leave dangling.
 */
function stringToken(scope: Scope, location: number): { start: number; end: number } | undefined {
  const at = scope.clientStatement;
  if (at === null) return undefined;
  const tokens = tokensOf(scope.statementText, scope.facts);
  if (tokens === null) return undefined;
  const token = tokenAt(tokens, location - at.start);
  return token?.tokenName === 'SCONST' ? { start: at.start + token.start, end: at.start + token.end } : undefined;
}

type Token = { start: number; end: number; tokenName: string };

/** Per analysis, the last statement scanned: a statement with many pg_notify() calls is scanned once. */
const scanned = new WeakMap<Facts, { text: string; tokens: readonly Token[] | null }>();

function tokensOf(text: string, f: Facts): readonly Token[] | null {
  const last = scanned.get(f);
  if (last?.text === text) return last.tokens;
  let tokens: readonly Token[] | null;
  try {
    tokens = scanSync(text).tokens;
  } catch {
    tokens = null;
  }
  scanned.set(f, { text, tokens });
  return tokens;
}

/** The token starting at byte `offset` (tokens come in text order). */
function tokenAt(tokens: readonly Token[], offset: number): Token | undefined {
  let lo = 0;
  let hi = tokens.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const t = tokens[mid] as Token;
    if (t.start === offset) return t;
    if (t.start < offset) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** Built-ins that change the session's sequence state: currval() and lastval() answer from it. */
const SEQUENCE_STATE = new Set(['nextval', 'setval']);

/**
 * A call that runs now and may leave session state the guard cannot see: any procedure, any
 * function outside pg_catalog, and nextval/setval. A function is pg_catalog's when qualified with
 * it, or unqualified with a name pg_catalog has (pg_catalog is searched before the pin's schemas).
 * A tenant's overload of a pg_catalog name (lower(my_type)) is not told apart. Field notation is
 * judged for the sequence functions only: `t.name` is far more often a column than a call, and
 * the text cannot tell which.
 */
function visitHiddenCall(names: readonly string[], form: CallForm, f: Facts): void {
  if (form === 'procedure') {
    noteHidden(f, `CALL ${names.join('.')}()`);
    return;
  }
  const own = names[names.length - 1] ?? '';
  const builtIn = names.length === 1 ? PG_CATALOG_NAMES.functions.has(own) : names[names.length - 2] === 'pg_catalog';
  if (builtIn ? SEQUENCE_STATE.has(own) : form === 'call') noteHidden(f, `${names.join('.')}()`);
}

/**
 * A function the server will call by this name, written as a call or not (a trigger's, an
 * operator's): recorded for the policy's denied functions, and refused when it is forbidden.
 * True when it was refused.
 */
function judgeCalled(name: string, what: string, f: Facts): boolean {
  f.functions.add(name);
  const forbidden = forbiddenFunction(name);
  if (forbidden === undefined) return false;
  refuse(f, forbidden.reason, what, forbidden.lift, name);
  return true;
}

/**
 * Functions that write the object they name (advance or set a sequence, summarize or clean an
 * index, replace statistics): its schema is a write target, which a read-only schema refuses.
 */
const WRITES_NAMED_OBJECT = new Set([
  'nextval', 'setval', 'pg_nextoid', 'brin_summarize_new_values', 'brin_summarize_range', 'brin_desummarize_range',
  'gin_clean_pending_list', 'pg_truncate_visibility_map', 'heap_force_kill', 'heap_force_freeze',
  'pg_clear_relation_stats', 'pg_clear_attribute_stats',
]);

function addWrittenSchema(text: string, syntax: NameSyntax, scope: Scope): void {
  if (syntax === 'schema_verbatim') {
    scope.facts.writtenSchemas.add(text);
    return;
  }
  const parts = OID.test(text) ? null : splitQualifiedName(text);
  if (parts !== null && parts.length >= 2) scope.facts.writtenSchemas.add(parts[parts.length - 2] as string);
}

/**
 * Field notation is a call: `(expr).name` and `alias.name` (the alias's whole row, or the value of a
 * function in FROM that returns a scalar) call name(expr) when no field or column has that name,
 * as in `(c.oid::regclass).nextval` or `g.ts_stat FROM concat(...) g`. Every field name is
 * therefore judged as a call with one argument: the expression for the first field after it, a
 * computed value otherwise (fail closed: a column that shares a refused function's name is refused).
 */
export function visitFieldCalls(arg: Json | undefined, fields: readonly Json[], scope: Scope): void {
  let current = arg;
  for (const field of fields) {
    const name = stringNode(field);
    if (name !== undefined) visitFuncCall({ funcname: [field], args: [current ?? COMPUTED] }, scope, 'field');
    current = undefined;
  }
}

/** Stands for an argument whose value the guard cannot know. */
const COMPUTED: Json = { ColumnRef: { fields: [] } };

/** Postgres 18's statistics import, called with key/value pairs: ('schemaname', 's', 'relname', 't', ...). */
const STATISTICS_IMPORT = new Set(['pg_restore_relation_stats', 'pg_restore_attribute_stats']);

/**
 * Every schemaname value must be a literal (taken verbatim); a computed key could be that one, and
 * so could any element of a VARIADIC array (args null).
 */
function visitStatisticsImport(name: string, args: readonly Json[] | null, scope: Scope): void {
  if (args === null) {
    refuse(scope.facts, 'dynamic_sql', `${name}() with a VARIADIC array`);
    return;
  }
  for (let i = 0; i < args.length; i += 2) {
    const key = literalOf(args[i]);
    const value = literalOf(args[i + 1]);
    if (key === undefined || (key.toLowerCase() === 'schemaname' && value === undefined)) {
      refuse(scope.facts, 'dynamic_sql', `${name}() with a computed argument name or schema`);
      return;
    }
    if (key.toLowerCase() === 'schemaname') {
      scope.facts.schemas.add(value as string);
      scope.facts.writtenSchemas.add(value as string);
    }
  }
}

/**
 * CREATE TRIGGER ... EXECUTE FUNCTION tsvector_update_trigger(tsv, 'schema.config', column...):
 * the second trigger argument names a text search configuration.
 */
export function visitTriggerFunction(body: Obj, scope: Scope): void {
  const names = stringList(body['funcname']);
  const name = names?.[names.length - 1]?.toLowerCase();
  // The trigger calls it on every row: judged like a call (lo_manage unlinks large objects).
  if (name !== undefined) judgeCalled(name, `${name}() as a trigger function`, scope.facts);
  if (name !== 'tsvector_update_trigger') return;
  const config = stringNode(arrayOf(body['args'])[1]);
  if (config !== undefined) readName(config, 'qualified', 'tsvector_update_trigger()', scope);
}

/** Options of CREATE OPERATOR / CREATE AGGREGATE that name a function the server will call later. */
const FUNCTION_OPTIONS = new Set([
  'function', 'procedure', 'sfunc', 'finalfunc', 'combinefunc', 'serialfunc', 'deserialfunc', 'msfunc', 'minvfunc', 'mfinalfunc',
  // CREATE AGGREGATE still takes the obsolete spelling sfunc1; CREATE TYPE ... AS RANGE calls these two
  'sfunc1', 'subtype_diff', 'canonical',
]);

/**
 * An operator or aggregate built on a function calls it with operands that never appear as a
 * call in any statement text: `CREATE OPERATOR @@ (RIGHTARG = regclass, FUNCTION = nextval)`
 * would let `@@ 'other.seq'` act on a name the guard never reads. Such functions are refused here.
 */
export function visitDefinition(body: Obj, scope: Scope): void {
  for (const option of arrayOf(body['definition'] ?? body['params'])) {
    const def = node(option, 'DefElem');
    if (def === undefined || !FUNCTION_OPTIONS.has(String(def['defname']))) continue;
    const names = stringList(node(def['arg'], 'TypeName')?.['names']) ?? stringList(def['arg']);
    const name = names?.[names.length - 1]?.toLowerCase();
    if (name === undefined) continue;
    const what = `${name}() behind an operator or aggregate`;
    if (judgeCalled(name, what, scope.facts)) continue;
    // pg_notify behind an operator would notify a channel given as an operand, which pgfence never maps.
    if (name === 'set_config' || name === 'pg_notify' || STATISTICS_IMPORT.has(name) || NAME_ARGUMENTS.get(name)?.acts === true) {
      refuse(scope.facts, 'dynamic_sql', what);
    }
  }
}

/** nextval(pg_get_serial_sequence('t', 'c')): the sequence is the named table's own, in its schema. */
function isCheckedSequenceLookup(arg: Json): boolean {
  const call = node(arg, 'FuncCall');
  const names = stringList(call?.['funcname']);
  return names?.[names.length - 1] === 'pg_get_serial_sequence' && literalOf(arrayOf(call?.['args'])[0]) !== undefined;
}

/** `'a.b'::regclass` and friends: the string is an object name. */
export function visitCast(body: Obj, scope: Scope): void {
  const typeName = body['typeName'];
  const names = isObj(typeName) ? stringList(typeName['names']) : undefined;
  const type = names?.[names.length - 1]?.toLowerCase();
  const syntax = type === undefined ? undefined : REG_TYPES.get(type);
  if (syntax === undefined || syntax === 'none') return;
  const literal = literalOf(body['arg']);
  // A computed value (a column, a parameter, text built from them) is resolved by the server to an
  // OID, and OIDs and names of every tenant's objects are visible in the catalogs by design. What
  // could act on the object is a function that takes it (nextval, table_to_xml, ...): those refuse
  // any object name that is not a literal themselves, whatever cast produced it.
  if (literal === undefined) return;
  if (!isObj(typeName) || !Array.isArray(typeName['arrayBounds'])) {
    readName(literal, syntax, type as string, scope);
    return;
  }
  const elements = arrayElements(literal);
  if (elements === null) refuse(scope.facts, 'dynamic_sql', `a ${type}[] literal pgfence cannot read`);
  else for (const element of elements) readName(element, syntax, type as string, scope);
}

/** reg* input takes a string of digits as an OID, not a name. */
const OID = /^\d+$/;

/** Records the schema a string names, read with the syntax Postgres will use. */
function readName(text: string, syntax: NameSyntax, where: string, scope: Scope, acts = false): void {
  const f = scope.facts;
  // A digits-only string is read as an OID, and OIDs of every tenant's objects are visible in
  // pg_class: harmless where it only yields a name, refused where the function reads or changes it.
  const byOid = (): void => {
    if (acts) refuse(f, 'dynamic_sql', `${where} on an object given by OID`);
  };
  const unreadable = (): void => refuse(f, 'dynamic_sql', `an object name in ${where} that pgfence cannot read`);
  switch (syntax) {
    case 'none':
      return;
    case 'schema_verbatim':
      f.schemas.add(text);
      return;
    case 'schema': {
      const parts = splitQualifiedName(text);
      if (parts === null) unreadable();
      else for (const part of parts) f.schemas.add(part);
      return;
    }
    case 'qualified': {
      if (OID.test(text)) return byOid();
      const parts = splitQualifiedName(text);
      if (parts === null) unreadable();
      else addQualified(f, parts);
      return;
    }
    case 'signature': {
      if (OID.test(text)) return byOid();
      const signature = splitSignature(text);
      if (signature === null) {
        unreadable();
        return;
      }
      addQualified(f, signature.name);
      for (const argType of signature.argTypes) if (argType.toLowerCase() !== 'none') readTypeText(argType, where, scope);
      return;
    }
    case 'type':
      if (!OID.test(text)) readTypeText(text, where, scope);
      return;
  }
}

/** A type written as text: Postgres parses it with the SQL grammar, so the guard does the same. */
export function readTypeText(text: string, where: string, scope: Scope): void {
  if (!text.includes('.')) return; // without a dot no schema can be named
  scope.walkText(`SELECT NULL::${text}`, false, `the type name in ${where}`);
}
