/** The static knowledge the guard applies: which names are special and why. */

import type { PolicySwitch } from '../config/schema.js';

/** Schemas every tenant may name besides its own and the configured shared ones. */
export const SYSTEM_SCHEMAS: ReadonlySet<string> = new Set(['pg_catalog', 'information_schema', 'pg_temp']);

/** Settings that make up the pin (the tenant GUC is added per fence). */
export const PIN_SETTINGS: ReadonlySet<string> = new Set(['search_path', 'role', 'session_authorization']);

/**
 * Settings that change how the server reads SQL text; the guard parses UTF-8 with standard
 * conforming strings, so other values would let the server see a statement the guard never saw.
 */
export const PARSER_SETTINGS: ReadonlyMap<string, (value: string) => boolean> = new Map([
  ['client_encoding', (v: string) => ['utf8', 'unicode', 'default'].includes(v.toLowerCase().replace(/[-_]/g, ''))],
  ['standard_conforming_strings', (v: string) => ['on', 'true', 'yes', '1', 'default'].includes(v.toLowerCase())],
]);

/**
 * How Postgres reads a string as an object name:
 * - qualified: `[schema.]name` (regclass, regproc, regoper, regconfig, ... and text arguments that name a relation);
 * - signature: `[schema.]name(argtype, ...)` (regprocedure, regoperator);
 * - type: the SQL type grammar (regtype);
 * - schema: a single identifier naming a schema (regnamespace);
 * - schema_verbatim: the text as is, no quoting or folding (has_schema_privilege, schema_to_xml);
 * - none: not a schema-scoped name (regrole).
 */
export type NameSyntax = 'qualified' | 'signature' | 'type' | 'schema' | 'schema_verbatim' | 'none';

/** Types whose input function turns a string into an object name. */
export const REG_TYPES: ReadonlyMap<string, NameSyntax> = new Map<string, NameSyntax>([
  ['regclass', 'qualified'], ['regproc', 'qualified'], ['regprocedure', 'signature'], ['regoper', 'qualified'],
  ['regoperator', 'signature'], ['regtype', 'type'], ['regnamespace', 'schema'], ['regconfig', 'qualified'],
  ['regdictionary', 'qualified'], ['regcollation', 'qualified'], ['regrole', 'none'],
]);

export interface NameArgument {
  syntax: NameSyntax;
  /** Which argument names the object, given the number of arguments. */
  index(argc: number): number;
  /** The function acts on the object (reads its data, advances it): the name must be a literal. */
  acts: boolean;
  /**
   * With this many arguments the position may hold something else (ts_headline(document, query,
   * options) against ts_headline(config, document, query)): a literal that is no name is not one.
   */
  ambiguous?: (argc: number) => boolean;
}

const first = (): number => 0;
const second = (): number => 1;
const secondToLast = (argc: number): number => argc - 2;
const thirdToLast = (argc: number): number => argc - 3;
/** The first argument when there are at least `n` (to_tsvector([config,] document)); none otherwise. */
const firstOfAtLeast = (n: number) => (argc: number): number => (argc >= n ? 0 : -1);

function table(syntax: NameSyntax, index: (argc: number) => number, acts: boolean, names: string[]): Array<[string, NameArgument]> {
  return names.map((name) => [name, { syntax, index, acts }]);
}

/** Functions that take an object name as text (or as an implicitly cast reg* literal). */
export const NAME_ARGUMENTS: ReadonlyMap<string, NameArgument> = new Map([
  ...table('qualified', first, true, [
    'nextval', 'currval', 'setval', 'pg_sequence_last_value', 'pg_get_sequence_data', 'pg_nextoid',
    'table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema',
    // contrib modules an operator may have installed: raw pages, row locks, buffers, row surgery
    'get_raw_page', 'verify_heapam', 'bt_metap', 'bt_page_stats', 'bt_multi_page_stats', 'bt_page_items',
    'hash_bitmap_info', 'pgrowlocks', 'pg_buffercache_evict_relation', 'heap_force_kill', 'heap_force_freeze',
  ]),
  ...table('schema_verbatim', first, true, ['schema_to_xml', 'schema_to_xmlschema', 'schema_to_xml_and_xmlschema']),
  // Postgres 18 statistics import: (schemaname, relname, ...), the schema name taken verbatim.
  ...table('schema_verbatim', first, true, ['pg_clear_relation_stats', 'pg_clear_attribute_stats']),
  // pg_input_is_valid(value, type): parses the type name and runs its input function and domain checks.
  ...table('type', second, true, ['pg_input_is_valid', 'pg_input_error_info']),
  ...table('qualified', first, false, [
    'regclass', 'to_regclass', 'to_regproc', 'to_regoper', 'to_regcollation',
    'pg_relation_size', 'pg_total_relation_size', 'pg_table_size', 'pg_indexes_size', 'pg_relation_filenode',
    'pg_relation_filepath', 'pg_partition_tree', 'pg_partition_ancestors', 'pg_partition_root',
    'pg_get_serial_sequence', 'pg_get_viewdef', 'pg_get_replica_identity_index', 'pg_relation_is_updatable',
    'pg_column_is_updatable', 'pg_relation_is_publishable', 'pg_index_column_has_property', 'pg_index_has_property',
    'brin_summarize_new_values', 'brin_summarize_range', 'brin_desummarize_range', 'gin_clean_pending_list',
    'row_security_active',
    // contrib modules an operator may have installed
    'pgstattuple', 'pgstattuple_approx', 'pgstatindex', 'pgstatginindex', 'pgstathashindex', 'pg_relpages',
    'bt_index_check', 'bt_index_parent_check', 'pg_prewarm', 'pg_visibility', 'pg_visibility_map',
    'pg_visibility_map_summary', 'pg_check_visible', 'pg_check_frozen', 'pg_truncate_visibility_map', 'pg_freespace',
    'gin_index_check',
  ]),
  ...table('qualified', second, false, ['brin_page_items', 'gist_page_items']),
  // Text search: a configuration (regconfig), dictionary (regdictionary) or parser, named first.
  // A computed one (a per-row language column) is allowed: it says how to parse the caller's own
  // text and reads no table, like the other names of this group.
  ...table('qualified', firstOfAtLeast(2), false, ['to_tsvector', 'to_tsquery', 'plainto_tsquery', 'phraseto_tsquery', 'websearch_to_tsquery', 'ts_debug']),
  ...table('qualified', firstOfAtLeast(3), false, ['json_to_tsvector', 'jsonb_to_tsvector']),
  ...table('qualified', first, false, ['ts_lexize', 'ts_parse', 'ts_token_type']),
  ['ts_headline', { syntax: 'qualified', index: firstOfAtLeast(3), acts: false, ambiguous: (argc: number) => argc === 3 }],
  ...table('signature', first, false, ['to_regprocedure', 'to_regoperator']),
  ...table('type', first, false, ['to_regtype', 'to_regtypemod', 'pg_basetype']),
  ...table('schema', first, false, ['to_regnamespace']),
  ...table('qualified', secondToLast, false, ['has_table_privilege', 'has_sequence_privilege', 'has_any_column_privilege']),
  ...table('qualified', thirdToLast, false, ['has_column_privilege']),
  ...table('signature', secondToLast, false, ['has_function_privilege']),
  ...table('type', secondToLast, false, ['has_type_privilege']),
  ...table('schema_verbatim', secondToLast, false, ['has_schema_privilege']),
]);

/** Why a function is refused, and the policy switch that may lift it (none: no policy can). */
export interface FunctionRule {
  reason: 'dynamic_sql' | 'forbidden_statement';
  lift?: PolicySwitch;
}

const RUNS_SQL_TEXT: FunctionRule = { reason: 'dynamic_sql', lift: 'dynamic_sql' };
const READS_EVERY_SCHEMA: FunctionRule = { reason: 'dynamic_sql' };
const SERVER_FILES: FunctionRule = { reason: 'forbidden_statement', lift: 'server_files' };
const LARGE_OBJECTS: FunctionRule = { reason: 'forbidden_statement', lift: 'large_objects' };
const CLUSTER: FunctionRule = { reason: 'forbidden_statement' };

function rules(rule: FunctionRule, names: string[]): Array<[string, FunctionRule]> {
  return names.map((name) => [name, rule]);
}

/**
 * Functions that run SQL text pgfence never sees, read every schema, reach files, large objects
 * (shared by all tenants), other sessions or the server.
 */
export const FORBIDDEN_FUNCTIONS: ReadonlyMap<string, FunctionRule> = new Map([
  ...rules(RUNS_SQL_TEXT, ['query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema', 'ts_stat']),
  ...rules(READS_EVERY_SCHEMA, ['database_to_xml', 'database_to_xmlschema', 'database_to_xml_and_xmlschema']),
  ...rules(SERVER_FILES, ['pg_read_file', 'pg_read_binary_file', 'pg_stat_file', 'pg_current_logfile']),
  ...rules(LARGE_OBJECTS, ['loread', 'lowrite']),
  ...rules(CLUSTER, [
    'pg_import_system_collations',
    'pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf', 'pg_rotate_logfile', 'pg_promote',
    'pg_switch_wal', 'pg_log_backend_memory_contexts', 'pg_stat_get_activity', 'pg_stat_get_backend_activity',
    'pg_stat_statements', 'pg_stat_statements_reset', 'pg_drop_replication_slot', 'pg_sync_replication_slots',
    // pg_buffercache: evicting shared buffers slows every tenant
    'pg_buffercache_evict', 'pg_buffercache_evict_all',
  ]),
]);

export const FORBIDDEN_FUNCTION_PREFIXES: ReadonlyArray<[string, FunctionRule]> = [
  ['dblink', { reason: 'dynamic_sql', lift: 'dblink' }],
  ['lo_', LARGE_OBJECTS],
  ['pg_ls_', SERVER_FILES],
  ['pg_file_', SERVER_FILES],
  ['pg_stat_reset', CLUSTER],
  ['pg_logical_', CLUSTER],
  ['pg_replication_', CLUSTER],
  ['pg_create_', CLUSTER],
  ['pg_copy_', CLUSTER],
  ['pg_backup_', CLUSTER],
  ['pg_wal_', CLUSTER],
  // pg_walinspect: WAL records carry every tenant's row data
  ['pg_get_wal_', CLUSTER],
];

/** Why a function is refused, by its own name (lower case); undefined when it is not. */
export function forbiddenFunction(name: string): FunctionRule | undefined {
  return FORBIDDEN_FUNCTIONS.get(name) ?? FORBIDDEN_FUNCTION_PREFIXES.find(([prefix]) => name.startsWith(prefix))?.[1];
}

/** Statements refused unless a policy switch lifts them. */
export const LIFTABLE_STATEMENTS: ReadonlyMap<string, PolicySwitch> = new Map<string, PolicySwitch>([
  ['CreateExtensionStmt', 'extensions'], ['AlterExtensionStmt', 'extensions'], ['AlterExtensionContentsStmt', 'extensions'],
]);

/** Relations that show other sessions' SQL text: every tenant shares the pool's role, so they would leak. */
export const CROSS_SESSION_RELATIONS: ReadonlySet<string> = new Set(['pg_stat_activity', 'pg_stat_statements']);

/** Catalogs that hold other tenants' data or the cluster's secrets, not just names. */
export const DATA_EXPOSING_CATALOGS: ReadonlySet<string> = new Set([
  'pg_statistic', 'pg_stats', 'pg_statistic_ext_data', 'pg_stats_ext', 'pg_stats_ext_exprs',
  'pg_sequences', 'pg_largeobject', 'pg_largeobject_metadata',
  'pg_authid', 'pg_shadow', 'pg_user_mapping', 'pg_user_mappings', 'pg_hba_file_rules', 'pg_ident_file_mappings',
  'pg_file_settings', 'pg_replication_slots', 'pg_subscription',
]);

/** Schemas every tenant reads through: creating, changing or moving objects there reaches everyone. */
export const SYSTEM_WRITE_PROTECTED: ReadonlySet<string> = new Set(['pg_catalog', 'information_schema', 'pg_toast']);

/** Settings that switch off the server's own protections (superuser-settable). */
export const PROTECTED_SETTINGS: ReadonlySet<string> = new Set([
  'allow_system_table_mods', 'session_replication_role', 'lo_compat_privileges', 'zero_damaged_pages',
  'ignore_system_indexes', 'ignore_checksum_failure', 'ignore_invalid_pages', 'allow_in_place_tablespaces',
]);

/** Statements that act on the whole cluster or database, or outside the tenant model. */
export const FORBIDDEN_STATEMENTS: ReadonlyMap<string, string> = new Map([
  ['CreateSchemaStmt', 'CREATE SCHEMA'],
  ['CreateRoleStmt', 'CREATE ROLE'],
  ['AlterRoleStmt', 'ALTER ROLE'],
  ['AlterRoleSetStmt', 'ALTER ROLE ... SET'],
  ['DropRoleStmt', 'DROP ROLE'],
  ['GrantRoleStmt', 'GRANT role'],
  ['ReassignOwnedStmt', 'REASSIGN OWNED'],
  ['DropOwnedStmt', 'DROP OWNED'],
  ['AlterOwnerStmt', 'ALTER ... OWNER TO'],
  ['CreatedbStmt', 'CREATE DATABASE'],
  ['AlterDatabaseStmt', 'ALTER DATABASE'],
  ['AlterDatabaseSetStmt', 'ALTER DATABASE ... SET'],
  ['AlterDatabaseRefreshCollStmt', 'ALTER DATABASE'],
  ['DropdbStmt', 'DROP DATABASE'],
  ['AlterSystemStmt', 'ALTER SYSTEM'],
  ['LoadStmt', 'LOAD'],
  ['CreateExtensionStmt', 'CREATE EXTENSION'],
  ['AlterExtensionStmt', 'ALTER EXTENSION'],
  ['AlterExtensionContentsStmt', 'ALTER EXTENSION'],
  ['CreateTableSpaceStmt', 'CREATE TABLESPACE'],
  ['DropTableSpaceStmt', 'DROP TABLESPACE'],
  ['AlterTableSpaceOptionsStmt', 'ALTER TABLESPACE'],
  ['AlterTableMoveAllStmt', 'ALTER TABLE ALL IN TABLESPACE'],
  ['CreateFdwStmt', 'CREATE FOREIGN DATA WRAPPER'],
  ['AlterFdwStmt', 'ALTER FOREIGN DATA WRAPPER'],
  ['CreateForeignServerStmt', 'CREATE SERVER'],
  ['AlterForeignServerStmt', 'ALTER SERVER'],
  ['CreateForeignTableStmt', 'CREATE FOREIGN TABLE'],
  ['CreateUserMappingStmt', 'CREATE USER MAPPING'],
  ['AlterUserMappingStmt', 'ALTER USER MAPPING'],
  ['DropUserMappingStmt', 'DROP USER MAPPING'],
  ['ImportForeignSchemaStmt', 'IMPORT FOREIGN SCHEMA'],
  ['CreateSubscriptionStmt', 'CREATE SUBSCRIPTION'],
  ['AlterSubscriptionStmt', 'ALTER SUBSCRIPTION'],
  ['DropSubscriptionStmt', 'DROP SUBSCRIPTION'],
  ['CreatePublicationStmt', 'CREATE PUBLICATION'],
  ['AlterPublicationStmt', 'ALTER PUBLICATION'],
  ['CreateEventTrigStmt', 'CREATE EVENT TRIGGER'],
  ['AlterEventTrigStmt', 'ALTER EVENT TRIGGER'],
  ['CreatePLangStmt', 'CREATE LANGUAGE'],
  ['CreateConversionStmt', 'CREATE CONVERSION'],
  ['CreateCastStmt', 'CREATE CAST'],
  ['CreateTransformStmt', 'CREATE TRANSFORM'],
  ['CreateAmStmt', 'CREATE ACCESS METHOD'],
  ['CreateOpClassStmt', 'CREATE OPERATOR CLASS'],
  ['CreateOpFamilyStmt', 'CREATE OPERATOR FAMILY'],
  ['AlterOpFamilyStmt', 'ALTER OPERATOR FAMILY'],
  ['AlterDefaultPrivilegesStmt', 'ALTER DEFAULT PRIVILEGES'],
  ['CheckPointStmt', 'CHECKPOINT'],
  ['SecLabelStmt', 'SECURITY LABEL'],
]);

/**
 * Object kinds that live outside any schema and are shared by every tenant of the database or
 * cluster: COMMENT ON, DROP, GRANT or ALTER of them reaches beyond the tenant.
 */
export const SHARED_OBJECT_TYPES: ReadonlyMap<string, string> = new Map([
  ['OBJECT_DATABASE', 'DATABASE'], ['OBJECT_ROLE', 'ROLE'], ['OBJECT_TABLESPACE', 'TABLESPACE'],
  ['OBJECT_EXTENSION', 'EXTENSION'], ['OBJECT_FDW', 'FOREIGN DATA WRAPPER'], ['OBJECT_FOREIGN_SERVER', 'SERVER'],
  ['OBJECT_LANGUAGE', 'LANGUAGE'], ['OBJECT_EVENT_TRIGGER', 'EVENT TRIGGER'], ['OBJECT_PUBLICATION', 'PUBLICATION'],
  ['OBJECT_PUBLICATION_NAMESPACE', 'PUBLICATION'], ['OBJECT_PUBLICATION_REL', 'PUBLICATION'],
  ['OBJECT_SUBSCRIPTION', 'SUBSCRIPTION'], ['OBJECT_ACCESS_METHOD', 'ACCESS METHOD'],
  ['OBJECT_PARAMETER_ACL', 'PARAMETER'], ['OBJECT_LARGEOBJECT', 'LARGE OBJECT'], ['OBJECT_USER_MAPPING', 'USER MAPPING'],
  ['OBJECT_CAST', 'CAST'], ['OBJECT_TRANSFORM', 'TRANSFORM'], ['OBJECT_DEFACL', 'DEFAULT PRIVILEGES'],
  ['OBJECT_AMOP', 'OPERATOR FAMILY member'], ['OBJECT_AMPROC', 'OPERATOR FAMILY member'],
]);

/** Object kinds whose name is a relation's name plus one more part (column, trigger, policy, ...). */
export const RELATION_MEMBER_TYPES: ReadonlySet<string> = new Set([
  'OBJECT_COLUMN', 'OBJECT_TRIGGER', 'OBJECT_RULE', 'OBJECT_POLICY', 'OBJECT_TABCONSTRAINT',
]);

/** Object kinds whose name starts with an access method (`opclass USING btree` is [btree, opclass]). */
export const ACCESS_METHOD_PREFIXED_TYPES: ReadonlySet<string> = new Set(['OBJECT_OPCLASS', 'OBJECT_OPFAMILY']);

/**
 * Keys whose lists of String nodes are column names, labels or text, never qualified object
 * names. Every other list of String nodes is read as a possibly qualified name: a position the
 * guard does not know fails closed.
 */
export const NON_NAME_LISTS: ReadonlySet<string> = new Set([
  'colnames', 'colNames', 'aliascolnames', 'ctecolnames', 'usingClause', 'indirection', 'search_col_list',
  'cycle_col_list', 'cols', 'attlist', 'keys', 'including', 'fk_attrs', 'pk_attrs', 'fk_del_set_cols', 'columns',
  'vals', 'aliases', 'va_cols', 'tokentype', 'stat_types', 'args', 'arg_names', 'passing_names', 'funccolnames',
]);

/** DefElem options whose list argument is column names (COPY) or a function's body and link symbol. */
export const NON_NAME_OPTIONS: ReadonlySet<string> = new Set(['force_quote', 'force_not_null', 'force_null', 'as']);
