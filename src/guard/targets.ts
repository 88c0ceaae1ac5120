import type { Facts } from './analysis.js';
import type { Obj } from './json.js';
import { type Target, targetSchema, viewSourceSchemas } from './system-objects.js';

/** Statements that create, write or lock nothing by name (what they run inside is visited on its own). */
const NO_TARGETS: ReadonlySet<string> = new Set([
  'ExplainStmt', 'PrepareStmt', 'ExecuteStmt', 'DeallocateStmt', 'DeclareCursorStmt', 'FetchStmt', 'ClosePortalStmt',
  'CallStmt', 'DoStmt', 'VariableSetStmt', 'VariableShowStmt', 'TransactionStmt', 'ListenStmt', 'UnlistenStmt',
  'NotifyStmt', 'DiscardStmt', 'ConstraintsSetStmt', 'CheckPointStmt', 'ReturnStmt', 'PLAssignStmt',
]);

/**
 * Records the schemas a statement writes into, locks, or creates or changes objects in, as its
 * text names them (an unqualified target resolves on the server, out of the guard's sight), and
 * those a view reads from. A statement kind whose targets are not known may write into any
 * schema it names.
 */
export function visitTargets(type: string, body: Obj, targets: readonly Target[] | undefined, f: Facts): void {
  if (NO_TARGETS.has(type)) return;
  if (targets === undefined) {
    f.writesAnywhere = true;
    return;
  }
  for (const target of targets) {
    const schema = targetSchema(target);
    if (schema !== undefined) f.writtenSchemas.add(schema);
  }
  if (typeof body['newschema'] === 'string') f.writtenSchemas.add(body['newschema']);
  for (const schema of viewSourceSchemas(type, body)) f.writtenSchemas.add(schema);
}
