import { isObj, type Json, type Obj, stringList, stringNode } from './json.js';
import { onLoneString, onNameList, visitShape } from './names.js';
import type { Scope } from './scope.js';
import { visitNode } from './statements.js';

/**
 * Walks every object and array of a parse tree. Nodes come wrapped (`{ RangeVar: {...} }`) where
 * a field may hold any node, and bare where it holds one struct type (`relation: {...}`): names
 * are therefore recognised by shape (any `schemaname`, any `names` list, any list of String nodes)
 * as well as by node type, so that a position nobody listed still has its names checked.
 */
export function walkStatement(stmt: Json, scope: Scope): void {
  walkValue(stmt, '', null, scope);
}

function walkValue(value: Json, key: string, parent: Obj | null, scope: Scope): void {
  if (Array.isArray(value)) {
    const names = stringList(value);
    if (names !== undefined) onNameList(names, key, parent, scope.facts);
    else for (const item of value) walkValue(item, key, parent, scope);
    return;
  }
  if (!isObj(value)) return;
  const type = wrappedType(value);
  if (type === undefined) {
    visitShape(value, scope);
    walkChildren(value, scope);
    return;
  }
  const body = value[type];
  if (type === 'List') {
    // A List stands for its items wherever it appears (DropStmt objects, DefElem args).
    walkValue(isObj(body) ? (body['items'] ?? []) : [], key, parent, scope);
    return;
  }
  if (type === 'String') {
    onLoneString(stringNode(value) as string, key, parent, scope.facts);
    return;
  }
  if (!isObj(body)) return;
  const inner = visitNode(type, body, key, scope);
  visitShape(body, inner);
  walkChildren(body, inner);
}

function walkChildren(o: Obj, scope: Scope): void {
  for (const key in o) {
    const v = o[key] as Json;
    if (v !== null && typeof v === 'object') walkValue(v, key, o, scope);
  }
}

/** `{ SomeNode: {...} }` → "SomeNode"; struct fields are never capitalised. */
function wrappedType(o: Obj): string | undefined {
  let type: string | undefined;
  for (const key in o) {
    if (type !== undefined) return undefined;
    type = key;
  }
  return type !== undefined && /^[A-Z]/.test(type) ? type : undefined;
}
