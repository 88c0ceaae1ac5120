import { addQualified, addRelationMember, type Facts, refuse } from './analysis.js';
import { type Obj, stringList } from './json.js';
import { ACCESS_METHOD_PREFIXED_TYPES, CROSS_SESSION_RELATIONS, DATA_EXPOSING_CATALOGS, NON_NAME_LISTS, NON_NAME_OPTIONS, RELATION_MEMBER_TYPES } from './rules.js';
import type { Scope } from './scope.js';

/**
 * Names found by the shape of a struct, wherever it sits: RangeVar (`schemaname`, `catalogname`),
 * SET SCHEMA's destination (`newschema`), TypeName (`names`, read as table.column for %TYPE).
 */
export function visitShape(o: Obj, scope: Scope): void {
  const f = scope.facts;
  if (typeof o['schemaname'] === 'string') f.schemas.add(o['schemaname']);
  if (typeof o['catalogname'] === 'string') f.catalogs.add(o['catalogname']);
  if (typeof o['newschema'] === 'string') f.schemas.add(o['newschema']);
  if (typeof o['relname'] === 'string') visitRelation(o['relname'], o['schemaname'], scope);
  const typeName = stringList(o['names']);
  if (typeName !== undefined) {
    if (o['pct_type'] === true) addRelationMember(f, typeName);
    else addQualified(f, typeName);
  }
}

/**
 * Relations that matter by name. An unqualified catalog name always means pg_catalog's (pg_catalog
 * is searched before the pin); pg_stat_statements lives where its extension was installed, usually public.
 */
function visitRelation(relname: string, schema: unknown, scope: Scope): void {
  const catalog = schema === undefined || schema === 'pg_catalog';
  if (CROSS_SESSION_RELATIONS.has(relname) && (catalog || schema === 'public')) {
    refuse(scope.facts, 'forbidden_statement', `reading other sessions' statements (${relname})`);
  }
  if (DATA_EXPOSING_CATALOGS.has(relname) && catalog) {
    refuse(scope.facts, 'forbidden_statement', `reading ${relname} (it holds other tenants' data or the cluster's secrets)`);
  }
  // pg_settings is updatable (its rules call set_config), and so is a simple view over it.
  if (relname === 'pg_settings' && catalog && scope.inView) refuse(scope.facts, 'pin_change', 'a view over pg_settings');
}

/** A list of String nodes under `key` of `parent`: a qualified name unless the position says otherwise. */
export function onNameList(names: readonly string[], key: string, parent: Obj | null, f: Facts): void {
  switch (key) {
    case 'names': // TypeName, read by visitShape together with pct_type
    case 'fields': // ColumnRef, read by visitColumnRef together with its `*`
      return;
    case 'object':
    case 'objects':
      if (isSchemaPosition(parent)) for (const name of names) f.schemas.add(name);
      else addObjectName(names, objectTypeOf(parent), f);
      return;
    case 'arg':
      if (parent !== null && typeof parent['defname'] === 'string') {
        addOptionName(names, parent['defname'], f);
        return;
      }
      break;
    default:
      break;
  }
  if (NON_NAME_LISTS.has(key)) return;
  addQualified(f, names);
}

/** A String node on its own: only an object position of a schema-level statement makes it a schema. */
export function onLoneString(name: string, key: string, parent: Obj | null, f: Facts): void {
  if ((key === 'object' || key === 'objects') && isSchemaPosition(parent)) f.schemas.add(name);
}

/** GRANT ... ON SCHEMA s, GRANT ... ON ALL TABLES IN SCHEMA s, COMMENT ON SCHEMA s: the names are schemas. */
function isSchemaPosition(parent: Obj | null): boolean {
  return parent !== null && (objectTypeOf(parent) === 'OBJECT_SCHEMA' || parent['targtype'] === 'ACL_TARGET_ALL_IN_SCHEMA');
}

/** `a.b.c` is schema.table.column (or schema.table.*), `a.b.c.d` adds a database in front. */
export function visitColumnRef(body: Obj, f: Facts): void {
  const fields = Array.isArray(body['fields']) ? body['fields'] : [];
  const parts = fields.map((field) => stringList([field])?.[0] ?? '*');
  addRelationMember(f, parts);
}

/** The kind of object a DROP, COMMENT ON, GRANT, ALTER ... RENAME / SET SCHEMA acts on. */
export function objectTypeOf(o: Obj | null): string | undefined {
  if (o === null) return undefined;
  for (const key of ['objtype', 'removeType', 'renameType', 'objectType']) {
    const v = o[key];
    if (typeof v === 'string') return v;
  }
  return undefined;
}

function addObjectName(names: readonly string[], objtype: string | undefined, f: Facts): void {
  if (objtype !== undefined && RELATION_MEMBER_TYPES.has(objtype)) addRelationMember(f, names);
  else if (objtype !== undefined && ACCESS_METHOD_PREFIXED_TYPES.has(objtype)) addQualified(f, names.slice(1));
  else addQualified(f, names);
}

function addOptionName(names: readonly string[], option: string, f: Facts): void {
  if (NON_NAME_OPTIONS.has(option)) return;
  if (option === 'owned_by') addRelationMember(f, names); // OWNED BY [schema.]table.column
  else addQualified(f, names);
}
