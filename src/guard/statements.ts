import { type Facts, noteHidden, refuse } from './analysis.js';
import { visitBody } from './bodies.js';
import { visitCast, visitDefinition, visitFieldCalls, visitFuncCall, visitTriggerFunction } from './functions.js';
import { arrayOf, isObj, type Json, node, type Obj, stringList, stringNode } from './json.js';
import { objectTypeOf, visitColumnRef } from './names.js';
import { PG_CATALOG_NAMES } from './pg-catalog-names.js';
import { FORBIDDEN_STATEMENTS, LIFTABLE_STATEMENTS, SHARED_OBJECT_TYPES, SYSTEM_WRITE_PROTECTED } from './rules.js';
import type { Scope } from './scope.js';
import { visitTargets } from './targets.js';
import { visitSessionReset, visitSet } from './settings.js';
import { statementTargets, visitSystemObjects } from './system-objects.js';

const CURSOR_OPT_HOLD = 0x0020;

/**
 * The rules attached to a node type. Returns the scope for the node's children (a view body,
 * a function body and stored expressions do not run now). Names are found by the generic walk.
 */
export function visitNode(type: string, body: Obj, key: string, scope: Scope): Scope {
  const f = scope.facts;
  const statement = type.endsWith('Stmt');
  const targets = statement ? statementTargets(type, body) : undefined;
  if (statement) {
    f.statementKinds.add(type);
    visitTargets(type, body, targets, f);
  }
  const forbidden = FORBIDDEN_STATEMENTS.get(type);
  if (forbidden !== undefined) refuse(f, 'forbidden_statement', forbidden, LIFTABLE_STATEMENTS.get(type), type);
  if (targets !== undefined) visitSystemObjects(type, body, targets, f);
  switch (type) {
    case 'ColumnRef':
      visitColumnRef(body, f);
      visitFieldCalls(undefined, arrayOf(body['fields']).slice(1), scope);
      break;
    case 'A_Indirection':
      visitFieldCalls(body['arg'], arrayOf(body['indirection']), scope);
      break;
    case 'CallStmt':
      // CALL's FuncCall is a bare struct, which the walk does not take for a call.
      if (isObj(body['funccall'])) visitFuncCall(body['funccall'], scope, 'procedure');
      break;
    case 'A_Expr':
      if (scope.runsNow) visitOperator(body, f);
      break;
    case 'CreateRangeStmt':
      visitDefinition(body, scope);
      break;
    case 'CreateExtensionStmt':
      visitExtensionSchema(body, f);
      break;
    case 'ListenStmt':
    case 'UnlistenStmt':
    case 'NotifyStmt':
      visitChannel(type, body, key, scope);
      if (scope.runsNow) visitSessionState(type, body, f);
      break;
    case 'FuncCall':
      visitFuncCall(body, scope);
      break;
    case 'TypeCast':
      visitCast(body, scope);
      break;
    case 'VariableSetStmt':
      // A SET clause of CREATE/ALTER FUNCTION sits under a DefElem's `arg`; it runs inside the function only.
      if (body['kind'] === 'VAR_RESET_ALL') visitSessionReset('reset_all', key, scope);
      else visitSet(body, f, scope.runsNow && key !== 'arg', scope.clientStatement !== null && key === '');
      break;
    case 'DiscardStmt':
      if (body['target'] === 'DISCARD_ALL') visitSessionReset('discard_all', key, scope);
      break;
    case 'DeallocateStmt':
      visitDeallocate(body, key, scope);
      break;
    case 'PrepareStmt':
      if (scope.runsNow) visitSessionState(type, body, f);
      return { ...scope, inPrepare: true };
    case 'CopyStmt':
      if (typeof body['filename'] === 'string' || body['is_program'] === true) {
        refuse(f, 'forbidden_statement', 'COPY to or from a server file or program', 'server_files');
      }
      break;
    case 'GrantStmt':
    case 'DropStmt':
    case 'CommentStmt':
    case 'RenameStmt':
    case 'AlterObjectSchemaStmt':
    case 'AlterObjectDependsStmt':
      visitObjectStatement(type, body, f);
      break;
    case 'ReindexStmt':
      if (body['kind'] === 'REINDEX_OBJECT_SCHEMA' && typeof body['name'] === 'string') f.schemas.add(body['name']);
      if (body['kind'] === 'REINDEX_OBJECT_SYSTEM' || body['kind'] === 'REINDEX_OBJECT_DATABASE') {
        refuse(f, 'forbidden_statement', 'REINDEX SYSTEM or DATABASE');
      }
      break;
    case 'VacuumStmt':
      if (!Array.isArray(body['rels']) || body['rels'].length === 0) {
        refuse(f, 'forbidden_statement', 'VACUUM or ANALYZE without a table list (it would process every tenant)');
      }
      break;
    case 'ClusterStmt':
      if (!isObj(body['relation'])) refuse(f, 'forbidden_statement', 'CLUSTER without a table (it would process every tenant)');
      break;
    case 'TransactionStmt':
      if (TWO_PHASE.has(String(body['kind']))) refuse(f, 'forbidden_statement', 'two-phase commit (a prepared transaction outlives the session)');
      break;
    case 'UpdateStmt':
    case 'InsertStmt':
    case 'DeleteStmt':
    case 'MergeStmt':
      if (isSettingsView(body['relation'])) refuse(f, 'pin_change', 'writing to pg_settings');
      break;
    case 'ViewStmt':
      if (scope.runsNow) visitTemporary(type, body, f);
      return { ...scope, inView: true, runsNow: false };
    case 'DefineStmt':
      visitDefinition(body, scope);
      break;
    case 'DoStmt':
      // What it runs is walked too, but a block is code: its effects may be more than the guard sees.
      if (scope.runsNow) noteHidden(f, 'a DO block');
      visitBody(body, 'DO', scope);
      break;
    case 'CreateFunctionStmt':
      visitBody(body, body['is_procedure'] === true ? 'CREATE PROCEDURE' : 'CREATE FUNCTION', scope);
      return { ...scope, runsNow: false };
    case 'CreateTrigStmt':
      visitTriggerFunction(body, scope);
      return { ...scope, runsNow: false }; // stored for later (STORED_FOR_LATER)
    default:
      if (scope.runsNow) visitSessionState(type, body, f);
      if (STORED_FOR_LATER.has(type)) return { ...scope, runsNow: false };
  }
  return scope;
}

const OPERATOR_KINDS = new Set(['AEXPR_OP', 'AEXPR_OP_ANY', 'AEXPR_OP_ALL']);

/**
 * An operator runs its function: one outside pg_catalog (qualified with another schema, or a
 * symbol pg_catalog has no operator by) is a tenant's function the guard cannot see into. A
 * tenant's operator that reuses a pg_catalog symbol is not told apart.
 */
function visitOperator(body: Obj, f: Facts): void {
  if (!OPERATOR_KINDS.has(String(body['kind']))) return;
  const names = stringList(body['name']);
  if (names === undefined) return;
  const symbol = names[names.length - 1] as string;
  const builtIn = names.length === 1 ? PG_CATALOG_NAMES.operators.has(symbol) : names[names.length - 2] === 'pg_catalog';
  if (!builtIn) noteHidden(f, `the operator ${names.join('.')}`);
}

/** Statements whose expressions are stored and run later (defaults, checks, policies, rules, triggers). */
const STORED_FOR_LATER = new Set([
  'CreateStmt', 'AlterTableStmt', 'IndexStmt', 'RuleStmt', 'CreatePolicyStmt', 'AlterPolicyStmt', 'CreateTrigStmt',
  'CreateDomainStmt', 'AlterDomainStmt',
]);

/**
 * CREATE EXTENSION ... SCHEMA s: the extension's objects are created in s (its script runs with
 * s as @extschema@), so s is named and written like the schema of any new object.
 */
function visitExtensionSchema(body: Obj, f: Facts): void {
  for (const option of arrayOf(body['options'])) {
    const def = node(option, 'DefElem');
    if (def?.['defname'] !== 'schema') continue;
    const schema = stringNode(def['arg']);
    if (schema === undefined) continue;
    f.schemas.add(schema);
    f.writtenSchemas.add(schema);
    if (SYSTEM_WRITE_PROTECTED.has(schema)) refuse(f, 'forbidden_statement', `creating an extension in ${schema} (system schemas are shared by every tenant)`);
  }
}

const TWO_PHASE = new Set(['TRANS_STMT_PREPARE', 'TRANS_STMT_COMMIT_PREPARED', 'TRANS_STMT_ROLLBACK_PREPARED']);

function isSettingsView(relation: Json | undefined): boolean {
  if (!isObj(relation)) return false;
  return relation['relname'] === 'pg_settings' && (relation['schemaname'] === undefined || relation['schemaname'] === 'pg_catalog');
}

/** DROP, COMMENT ON, GRANT, RENAME, SET SCHEMA: refused on objects every tenant shares, and on schemas themselves. */
function visitObjectStatement(type: string, body: Obj, f: Facts): void {
  const objtype = objectTypeOf(body);
  const shared = objtype === undefined ? undefined : SHARED_OBJECT_TYPES.get(objtype);
  if (shared !== undefined) {
    // DROP EXTENSION ... CASCADE would drop every tenant's objects that use it: never lifted.
    const cascade = body['behavior'] === 'DROP_CASCADE';
    const lift = objtype === 'OBJECT_EXTENSION' && ((type === 'DropStmt' && !cascade) || type === 'CommentStmt') ? 'extensions' : undefined;
    refuse(f, 'forbidden_statement', (STATEMENT_VERBS[type] ?? ((kind: string) => `${type} on ${kind}`))(shared), lift);
    return;
  }
  if (objtype === 'OBJECT_SCHEMA' && (type === 'DropStmt' || type === 'RenameStmt')) {
    refuse(f, 'forbidden_statement', type === 'DropStmt' ? 'DROP SCHEMA' : 'ALTER SCHEMA ... RENAME');
  }
}

const STATEMENT_VERBS: Record<string, (kind: string) => string> = {
  GrantStmt: (kind) => `GRANT or REVOKE ON ${kind}`,
  DropStmt: (kind) => `DROP ${kind}`,
  CommentStmt: (kind) => `COMMENT ON ${kind}`,
  RenameStmt: (kind) => `ALTER ${kind} ... RENAME`,
  AlterObjectSchemaStmt: (kind) => `ALTER ${kind} ... SET SCHEMA`,
};

/**
 * Channels are database-wide, so pgfence gives each tenant its own by rewriting the client's
 * LISTEN/UNLISTEN/NOTIFY statements; one it cannot rewrite (inside a function body, DO block or
 * rule, where it would run later under the raw name) is refused.
 */
function visitChannel(type: string, body: Obj, key: string, scope: Scope): void {
  const range = scope.clientStatement;
  if (range === null || key !== '') {
    refuse(scope.facts, 'forbidden_statement', 'LISTEN/NOTIFY inside a function body, DO block or rule');
    return;
  }
  const channel = typeof body['conditionname'] === 'string' ? body['conditionname'] : null;
  const kind = type === 'ListenStmt' ? 'listen' : type === 'UnlistenStmt' ? 'unlisten' : 'notify';
  const payload = typeof body['payload'] === 'string' ? body['payload'] : null;
  scope.facts.channels.push({ kind, channel, payload, start: range.start, end: range.end });
}

/**
 * DEALLOCATE of the client's own text: in transaction pooling the client's statement names are
 * not the server's, so pgfence rewrites it. One inside a body (PL/pgSQL passes it to the server)
 * runs in a DO block or a tenant's function, whose hidden effects reset the backend after them.
 */
function visitDeallocate(body: Obj, key: string, scope: Scope): void {
  const at = scope.clientStatement;
  if (at === null || key !== '') return;
  const name = body['isall'] === true ? null : typeof body['name'] === 'string' ? body['name'] : null;
  scope.facts.deallocations.push({ name, start: at.start, end: at.end });
}

/** State a statement leaves in the session that transaction pooling cannot carry to another backend. */
function visitSessionState(type: string, body: Obj, f: Facts): void {
  switch (type) {
    case 'PrepareStmt':
      f.sessionEffects.push({ kind: 'unsupported', what: 'PREPARE' });
      break;
    case 'DeclareCursorStmt':
      if ((Number(body['options'] ?? 0) & CURSOR_OPT_HOLD) !== 0) f.sessionEffects.push({ kind: 'unsupported', what: 'DECLARE ... WITH HOLD' });
      break;
    case 'CreateStmt':
    case 'CreateSeqStmt':
    case 'CreateTableAsStmt':
      visitTemporary(type, body, f);
      break;
    case 'SelectStmt':
      if (isObj(body['intoClause'])) visitTemporary('CreateTableAsStmt', { into: body['intoClause'] }, f);
      break;
    default:
      break;
  }
}

/** Temporary objects outlive the transaction unless ON COMMIT DROP. */
function visitTemporary(type: string, body: Obj, f: Facts): void {
  const into = isObj(body['into']) ? body['into'] : undefined;
  const rel = into !== undefined ? into['rel'] : (body['relation'] ?? body['sequence'] ?? body['view']);
  // `CREATE TABLE pg_temp.t` is as temporary as `CREATE TEMP TABLE t`.
  if (!isObj(rel) || (rel['relpersistence'] !== 't' && rel['schemaname'] !== 'pg_temp')) return;
  const onCommit = into !== undefined ? into['onCommit'] : body['oncommit'];
  if (onCommit === 'ONCOMMIT_DROP') return;
  const what = type === 'ViewStmt' ? 'a temporary view' : type === 'CreateSeqStmt' ? 'a temporary sequence' : 'a temporary table without ON COMMIT DROP';
  f.sessionEffects.push({ kind: 'unsupported', what });
}
