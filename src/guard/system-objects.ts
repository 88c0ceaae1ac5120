import { type Facts, refuse } from './analysis.js';
import { arrayOf, isObj, type Json, node, type Obj, stringList, stringNode } from './json.js';
import { PG_CATALOG_NAMES } from './pg-catalog-names.js';
import { ACCESS_METHOD_PREFIXED_TYPES, RELATION_MEMBER_TYPES, SYSTEM_WRITE_PROTECTED } from './rules.js';

/**
 * Objects every tenant shares because Postgres put them there: pg_catalog, information_schema and
 * pg_toast. Writing, locking, dropping, renaming, moving, commenting on, granting on or otherwise
 * changing them (or hanging indexes, triggers, rules, policies, child tables or views on them)
 * reaches every tenant, so statements that do are refused, whether or not they name the schema:
 * pg_catalog is searched before every schema of the pin, so an unqualified name that pg_catalog
 * holds (pg-catalog-names.ts) means pg_catalog's object. New objects go to the first schema of the
 * pin instead, so for the name a statement creates only an explicit schema counts.
 */
export function visitSystemObjects(type: string, body: Obj, targets: readonly Target[], f: Facts): void {
  for (const target of targets) {
    const reached = systemObject(target);
    if (reached !== undefined) {
      refuse(f, 'forbidden_statement', `${target.verb} ${reached.shown} (${reached.why})`);
      return;
    }
  }
  if (type === 'AlterObjectSchemaStmt' && typeof body['newschema'] === 'string' && SYSTEM_WRITE_PROTECTED.has(body['newschema'])) {
    refuse(f, 'forbidden_statement', `moving objects into ${body['newschema']} (system schemas are shared by every tenant)`);
    return;
  }
  for (const query of viewQueries(type, body)) visitViewQuery(query, f);
}

/**
 * The objects a statement creates, writes, locks or otherwise changes, as its text names them;
 * undefined for a statement kind this module does not know.
 */
export function statementTargets(type: string, body: Obj): readonly Target[] | undefined {
  return TARGETS.get(type)?.(body);
}

/**
 * The schemas of the relations a view's query reads (or a `_RETURN` rule's): an updatable view
 * writes into them, and LOCK or FOR UPDATE through it locks them.
 */
export function viewSourceSchemas(type: string, body: Obj): string[] {
  const schemas: string[] = [];
  for (const item of rangeVarsIn(viewQueries(type, body))) {
    const schema = (node(item, 'RangeVar') as Obj)['schemaname'];
    if (typeof schema === 'string') schemas.push(schema);
  }
  return schemas;
}

/** The query of CREATE VIEW, or the actions of a rule ON SELECT (`_RETURN`, which replaces a view's query). */
function viewQueries(type: string, body: Obj): Json[] {
  if (type === 'ViewStmt') return body['query'] === undefined ? [] : [body['query']];
  return type === 'RuleStmt' && body['event'] === 'CMD_SELECT' ? arrayOf(body['actions']) : [];
}

/** The schema a target names explicitly, if any (an unqualified one resolves on the server). */
export function targetSchema(t: Target): string | undefined {
  return t.kind === 'schemas' ? t.names[t.names.length - 1] : t.names[t.names.length - 2];
}

/** Where a name of some kind is looked up: a set of PG_CATALOG_NAMES, collations, or schemas. */
type Kind = keyof typeof PG_CATALOG_NAMES | 'collations' | 'schemas';

export interface Target {
  kind: Kind;
  /** The name as written, [[db.]schema.]name; empty when pgfence cannot read it. */
  names: readonly string[];
  /** Looked up along the search path (an existing object), rather than the name of a new one. */
  existing: boolean;
  /** What the statement does to it, for the message. */
  verb: string;
}

/** The kinds of ObjectType (DROP, COMMENT ON, GRANT, ALTER ... RENAME / SET SCHEMA) that live in a schema. */
const KINDS: ReadonlyMap<string, Kind> = new Map<string, Kind>([
  ...['TABLE', 'VIEW', 'MATVIEW', 'INDEX', 'SEQUENCE', 'FOREIGN_TABLE', 'COLUMN', 'TRIGGER', 'RULE', 'POLICY', 'TABCONSTRAINT'].map(
    (k): [string, Kind] => [`OBJECT_${k}`, 'relations'],
  ),
  ...['FUNCTION', 'PROCEDURE', 'ROUTINE', 'AGGREGATE'].map((k): [string, Kind] => [`OBJECT_${k}`, 'functions']),
  ...['TYPE', 'DOMAIN', 'DOMCONSTRAINT', 'ATTRIBUTE'].map((k): [string, Kind] => [`OBJECT_${k}`, 'types']),
  ['OBJECT_OPERATOR', 'operators'],
  ['OBJECT_COLLATION', 'collations'],
  ['OBJECT_CONVERSION', 'conversions'],
  ['OBJECT_TSCONFIGURATION', 'textSearchConfigurations'],
  ['OBJECT_TSDICTIONARY', 'textSearchDictionaries'],
  ['OBJECT_TSPARSER', 'textSearchParsers'],
  ['OBJECT_TSTEMPLATE', 'textSearchTemplates'],
  ['OBJECT_OPCLASS', 'operatorClasses'],
  ['OBJECT_OPFAMILY', 'operatorFamilies'],
  ['OBJECT_STATISTIC_EXT', 'statistics'],
  ['OBJECT_SCHEMA', 'schemas'],
]);

type Targets = (body: Obj) => readonly Target[];

const NONE: readonly Target[] = [];

const changed = (kind: Kind, names: Json | undefined, verb = 'changing'): Target[] => [{ kind, names: stringList(names) ?? [], existing: true, verb }];
const created = (kind: Kind, names: Json | undefined): Target[] => [{ kind, names: stringList(names) ?? [], existing: false, verb: 'creating' }];

/** The objects a statement creates or acts on, by statement (looked up first: every node of the tree comes by). */
const TARGETS: ReadonlyMap<string, Targets> = new Map<string, Targets>([
  // pg_settings is writable by design (its rules call set_config): the pin rules judge it.
  ...['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt'].map((type): [string, Targets] => [
    type,
    (b) => (isObj(b['relation']) && b['relation']['relname'] === 'pg_settings' ? NONE : relations([b['relation']], 'writing to')),
  ]),
  ['CopyStmt', (b) => (b['is_from'] === true ? relations([b['relation']], 'copying into') : NONE)],
  ['TruncateStmt', (b) => relations(arrayOf(b['relations']), 'truncating')],
  ['LockStmt', (b) => relations(arrayOf(b['relations']), 'locking')],
  // SELECT ... INTO creates a table. FOR UPDATE / SHARE locks rows of what the query reads (its OF
  // list names aliases): catalog rows held locked stall every tenant's DDL on what they describe.
  ['SelectStmt', (b) =>
    b['intoClause'] === undefined && b['lockingClause'] === undefined ? NONE : [
      ...relations([isObj(b['intoClause']) ? b['intoClause']['rel'] : undefined], 'creating', false),
      ...(arrayOf(b['lockingClause']).length === 0 ? [] : relations(rangeVarsIn(b['fromClause']), 'locking rows of')),
    ]],
  ['ClusterStmt', (b) => relations([b['relation']], 'clustering')],
  ['ReindexStmt', (b) => (b['kind'] === 'REINDEX_OBJECT_SCHEMA' ? schemas([b['name'] ?? null], 'reindexing') : relations([b['relation']], 'reindexing'))],
  ['RefreshMatViewStmt', (b) => relations([b['relation']], 'refreshing')],
  ['AlterSeqStmt', (b) => relations([b['sequence']], 'changing')],
  ['IndexStmt', (b) => relations([b['relation']], 'indexing')],
  ['CreateTrigStmt', (b) => relations([b['relation']], 'adding a trigger to')],
  ['RuleStmt', (b) => relations([b['relation']], 'adding a rule to')],
  ['CreatePolicyStmt', (b) => relations([b['table']], 'adding a policy to')],
  ['AlterPolicyStmt', (b) => relations([b['table']], 'changing a policy on')],
  ['CreateStatsStmt', (b) => [...relations(arrayOf(b['relations']), 'adding statistics to'), ...created('statistics', b['defnames'])]],
  // INHERITS and PARTITION OF: the new table's rows show in every tenant's reads of the parent.
  ['CreateStmt', (b) => [...relations([b['relation']], 'creating', false), ...relations(arrayOf(b['inhRelations']), 'inheriting from')]],
  ['AlterTableStmt', (b) => [...relations([b['relation']], 'changing', true, b['objtype'] === 'OBJECT_TYPE' ? 'types' : 'relations'), ...alterTableRelations(b)]],
  ['ViewStmt', (b) => relations([b['view']], 'creating', false)],
  ['CreateTableAsStmt', (b) => relations([isObj(b['into']) ? b['into']['rel'] : undefined], 'creating', false)],
  ['CreateSeqStmt', (b) => relations([b['sequence']], 'creating', false)],
  ['CompositeTypeStmt', (b) => relations([b['typevar']], 'creating', false, 'types')],
  ['CreateEnumStmt', (b) => created('types', b['typeName'])],
  ['CreateRangeStmt', (b) => created('types', b['typeName'])],
  ['CreateDomainStmt', (b) => created('types', b['domainname'])],
  ['CreateFunctionStmt', (b) => created('functions', b['funcname'])],
  ['DefineStmt', (b) => created((typeof b['kind'] === 'string' ? KINDS.get(b['kind']) : undefined) ?? 'types', b['defnames'])],
  ['AlterFunctionStmt', (b) => changed('functions', isObj(b['func']) ? b['func']['objname'] : undefined)],
  ['AlterTypeStmt', (b) => changed('types', b['typeName'])],
  ['AlterEnumStmt', (b) => changed('types', b['typeName'])],
  ['AlterDomainStmt', (b) => changed('types', b['typeName'])],
  ['AlterOperatorStmt', (b) => changed('operators', isObj(b['opername']) ? b['opername']['objname'] : undefined)],
  ['AlterTSDictionaryStmt', (b) => changed('textSearchDictionaries', b['dictname'])],
  ['AlterTSConfigurationStmt', (b) => changed('textSearchConfigurations', b['cfgname'])],
  ['AlterCollationStmt', (b) => changed('collations', b['collname'])],
  ['AlterStatsStmt', (b) => changed('statistics', b['defnames'])],
  ['DropStmt', (b) => objects(b['removeType'], arrayOf(b['objects']), 'dropping')],
  ['CommentStmt', (b) => objects(b['objtype'], [b['object'] ?? null], 'commenting on')],
  ['GrantStmt', (b) =>
    b['targtype'] === 'ACL_TARGET_ALL_IN_SCHEMA'
      ? schemas(arrayOf(b['objects']).map(stringNode), 'granting or revoking in')
      : objects(b['objtype'], arrayOf(b['objects']), 'granting or revoking on')],
  ['RenameStmt', (b) => objectOrRelation(b, 'renaming')],
  ['AlterObjectSchemaStmt', (b) => objectOrRelation(b, 'moving')],
  ['AlterObjectDependsStmt', (b) => objectOrRelation(b, 'changing')],
  // ALTER EXTENSION e ADD / DROP object: DROP EXTENSION then drops what was added.
  ['AlterExtensionContentsStmt', (b) => objects(b['objtype'], b['object'] === undefined ? [] : [b['object']], 'changing the extension membership of')],
]);

function schemas(names: Array<Json | undefined>, verb: string): Target[] {
  return names.map((name) => ({ kind: 'schemas', names: typeof name === 'string' ? [name] : [], existing: true, verb }));
}

/** ALTER ... RENAME, SET SCHEMA, DEPENDS ON: a relation (or ALTER TYPE t RENAME ATTRIBUTE's type) or another object. */
function objectOrRelation(b: Obj, verb: string): Target[] {
  const objtype = b['renameType'] ?? b['objectType'];
  if (isObj(b['relation'])) return relations([b['relation']], verb, true, objtype === 'OBJECT_ATTRIBUTE' ? 'types' : 'relations');
  return objects(objtype, b['object'] === undefined ? [] : [b['object']], verb);
}

/** RangeVars, bare or wrapped: [[catalog.]schema.]relname. */
function relations(items: Array<Json | undefined>, verb: string, existing = true, kind: Kind = 'relations'): Target[] {
  const out: Target[] = [];
  for (const item of items) {
    const rel = node(item, 'RangeVar') ?? (isObj(item) ? item : undefined);
    if (rel !== undefined) out.push({ kind, names: rangeVarNames(rel), existing, verb });
  }
  return out;
}

function rangeVarNames(rel: Obj): string[] {
  const names: string[] = [];
  for (const key of ['catalogname', 'schemaname', 'relname']) if (typeof rel[key] === 'string') names.push(rel[key]);
  return names;
}

/** Every RangeVar anywhere under a node: a FROM clause or a whole query (joins, subqueries, CTEs). */
function rangeVarsIn(value: Json | undefined, out: Json[] = []): Json[] {
  if (Array.isArray(value)) for (const item of value) rangeVarsIn(item, out);
  else if (isObj(value)) {
    if (node(value, 'RangeVar') !== undefined) out.push(value);
    else for (const key in value) rangeVarsIn(value[key], out);
  }
  return out;
}

/** INHERIT / NO INHERIT a parent, ATTACH / DETACH PARTITION a table. */
function alterTableRelations(body: Obj): Target[] {
  const out: Target[] = [];
  for (const cmd of arrayOf(body['cmds'])) {
    const c = node(cmd, 'AlterTableCmd');
    if (c === undefined) continue;
    if (c['subtype'] === 'AT_AddInherit' || c['subtype'] === 'AT_DropInherit') out.push(...relations([c['def']], 'inheriting from'));
    const partition = node(c['def'], 'PartitionCmd');
    if (partition !== undefined) out.push(...relations([partition['name']], 'attaching or detaching'));
  }
  return out;
}

/** The objects of DROP, COMMENT ON, GRANT, ALTER ... RENAME / SET SCHEMA; kinds outside any schema are judged elsewhere. */
function objects(objtype: Json | undefined, items: Json[], verb: string): Target[] {
  const kind = typeof objtype === 'string' ? KINDS.get(objtype) : undefined;
  if (kind === undefined) return [];
  return items.map((item) => ({ kind, names: objectNames(item, objtype as string) ?? [], existing: true, verb }));
}

function objectNames(item: Json, objtype: string): string[] | undefined {
  const withArgs = node(item, 'ObjectWithArgs');
  if (withArgs !== undefined) return stringList(withArgs['objname']);
  const typeName = node(item, 'TypeName');
  if (typeName !== undefined) return stringList(typeName['names']);
  const rangeVar = node(item, 'RangeVar');
  if (rangeVar !== undefined) return rangeVarNames(rangeVar);
  const single = stringNode(item);
  if (single !== undefined) return [single];
  const items = node(item, 'List')?.['items'];
  // COMMENT ON CONSTRAINT c ON DOMAIN d: [TypeName d, c]
  if (Array.isArray(items) && node(items[0], 'TypeName') !== undefined) return objectNames(items[0] as Json, objtype);
  const names = stringList(item);
  if (names === undefined) return undefined;
  if (RELATION_MEMBER_TYPES.has(objtype)) return names.slice(0, -1);
  if (ACCESS_METHOD_PREFIXED_TYPES.has(objtype)) return names.slice(1);
  return names;
}

/** The system object a target reaches, and why that matters; undefined when it reaches none. */
function systemObject(t: Target): { shown: string; why: string } | undefined {
  const name = t.names[t.names.length - 1];
  if (name === undefined) return { shown: 'an object', why: 'pgfence cannot read its name' };
  const shared = 'system schemas are shared by every tenant';
  if (t.kind === 'schemas') return SYSTEM_WRITE_PROTECTED.has(name) ? { shown: `schema ${name}`, why: shared } : undefined;
  const schema = t.names[t.names.length - 2];
  if (schema !== undefined) return SYSTEM_WRITE_PROTECTED.has(schema) ? { shown: `${schema}.${name}`, why: shared } : undefined;
  if (!t.existing) return undefined;
  const qualify = 'name your own object with its schema';
  // initdb imports collations from the machine's locales: any unqualified one may be pg_catalog's.
  if (t.kind === 'collations') return { shown: `collation ${name}`, why: `unqualified, it may be pg_catalog's, shared by every tenant; ${qualify}` };
  if (!PG_CATALOG_NAMES[t.kind].has(name)) return undefined;
  return { shown: `pg_catalog.${name}`, why: `the unqualified name means pg_catalog's, shared by every tenant; ${qualify}` };
}

/**
 * A view that reads a system relation is a path to it that statements naming only the view do not
 * show: LOCK TABLE on a view locks every relation its query reads (a view over pg_class locked in
 * ACCESS EXCLUSIVE mode stalls every tenant), FOR UPDATE through it locks their rows, and a view
 * over one relation alone is automatically updatable, a write path into it. Such views are refused
 * wherever the query reads the relation (FROM, joins, subqueries, CTEs). CREATE RULE "_RETURN" ...
 * ON SELECT replaces a view's query.
 */
function visitViewQuery(query: Json | undefined, f: Facts): void {
  for (const item of rangeVarsIn(query)) {
    const rel = node(item, 'RangeVar') as Obj;
    // A view over pg_settings is judged by the pin rules.
    if (rel['relname'] === 'pg_settings') continue;
    const reached = systemObject({ kind: 'relations', names: rangeVarNames(rel), existing: true, verb: 'reading' });
    if (reached !== undefined) {
      refuse(f, 'forbidden_statement', `a view that reads ${reached.shown} (locking or updating the view would reach it)`);
      return;
    }
  }
}
