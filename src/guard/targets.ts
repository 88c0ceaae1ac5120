import { emptyFacts } from './analysis.js';
import type { Obj } from './json.js';
import type { Scope } from './scope.js';
import { walkField } from './walk.js';

/** Fields that hold the object a statement creates, changes or writes into. */
const TARGET_FIELDS: ReadonlyMap<string, readonly string[]> = new Map([
  ['InsertStmt', ['relation']], ['UpdateStmt', ['relation']], ['DeleteStmt', ['relation']], ['MergeStmt', ['relation']],
  ['TruncateStmt', ['relations']], ['LockStmt', ['relations']],
  // A child or partition of a shared table shows its rows to everyone who reads the parent.
  ['CreateStmt', ['relation', 'inhRelations']],
  ['ViewStmt', ['view']], ['CreateTableAsStmt', ['into']], ['CreateSeqStmt', ['sequence']], ['AlterSeqStmt', ['sequence']],
  ['IndexStmt', ['relation']], ['CreateTrigStmt', ['relation']], ['RuleStmt', ['relation']],
  ['CreatePolicyStmt', ['table']], ['AlterPolicyStmt', ['table']], ['CreateStatsStmt', ['defnames', 'relations']],
  ['AlterStatsStmt', ['defnames']], ['AlterTableStmt', ['relation']], ['RenameStmt', ['relation', 'object']],
  ['AlterObjectSchemaStmt', ['relation', 'object']], ['AlterObjectDependsStmt', ['relation', 'object']],
  ['DropStmt', ['objects']], ['CommentStmt', ['object']], ['SecLabelStmt', ['object']], ['GrantStmt', ['objects']],
  ['CompositeTypeStmt', ['typevar']], ['CreateEnumStmt', ['typeName']], ['AlterEnumStmt', ['typeName']],
  ['CreateRangeStmt', ['typeName']], ['CreateDomainStmt', ['domainname']], ['AlterDomainStmt', ['typeName']],
  ['AlterTypeStmt', ['typeName']], ['DefineStmt', ['defnames']], ['CreateFunctionStmt', ['funcname']],
  ['AlterFunctionStmt', ['func']], ['AlterOperatorStmt', ['opername']], ['AlterCollationStmt', ['collname']],
  ['AlterTSDictionaryStmt', ['dictname']], ['AlterTSConfigurationStmt', ['cfgname']],
  ['CreateConversionStmt', ['conversion_name']], ['RefreshMatViewStmt', ['relation']], ['ClusterStmt', ['relation']],
  ['ReindexStmt', ['relation']], ['VacuumStmt', ['rels']],
]);

/** Statements that change no object by name (what they run inside is visited on its own). */
const NO_TARGETS: ReadonlySet<string> = new Set([
  'SelectStmt', 'ExplainStmt', 'PrepareStmt', 'ExecuteStmt', 'DeallocateStmt', 'DeclareCursorStmt', 'FetchStmt',
  'ClosePortalStmt', 'CallStmt', 'DoStmt', 'VariableSetStmt', 'VariableShowStmt', 'TransactionStmt', 'ListenStmt',
  'UnlistenStmt', 'NotifyStmt', 'DiscardStmt', 'ConstraintsSetStmt', 'CheckPointStmt', 'ReturnStmt', 'PLAssignStmt',
]);

/**
 * Records the schemas a statement writes into or changes objects in, as named in its text (an
 * unqualified target resolves on the server, out of the guard's sight). The target fields are
 * walked with the same name rules as the whole statement, into facts of their own.
 */
export function visitTargets(type: string, body: Obj, scope: Scope): void {
  const f = scope.facts;
  if (type === 'CopyStmt') {
    if (body['is_from'] !== true) return;
  } else if (NO_TARGETS.has(type)) {
    return;
  }
  const fields = type === 'CopyStmt' ? ['relation'] : TARGET_FIELDS.get(type);
  if (fields === undefined) {
    f.writesAnywhere = true;
    return;
  }
  const targets = { ...scope, facts: emptyFacts() };
  for (const field of fields) walkField(body, field, targets);
  for (const schema of targets.facts.schemas) f.writtenSchemas.add(schema);
  if (typeof body['newschema'] === 'string') f.writtenSchemas.add(body['newschema']);
}
