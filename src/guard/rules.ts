/** The static knowledge the guard applies: which names are special and why. */

/** Schemas every tenant may name besides its own and the configured shared ones. */
export const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema', 'pg_temp']);

/** Settings that make up the pin (the tenant GUC is added per fence). */
export const PIN_SETTINGS = new Set(['search_path', 'role', 'session_authorization']);

/**
 * Settings that change how the server reads SQL text; the guard parses UTF-8 with standard
 * conforming strings, so other values would let the server see a statement the guard never saw.
 */
export const PARSER_SETTINGS = new Map<string, (value: string) => boolean>([
  ['client_encoding', (v) => ['utf8', 'unicode', 'default'].includes(v.toLowerCase().replace(/[-_]/g, ''))],
  ['standard_conforming_strings', (v) => ['on', 'true', 'yes', '1', 'default'].includes(v.toLowerCase())],
]);

/** Types whose input function turns a string into an object name. */
export const REG_TYPES = new Set([
  'regclass', 'regproc', 'regprocedure', 'regoper', 'regoperator', 'regtype', 'regnamespace',
  'regconfig', 'regdictionary', 'regcollation', 'regrole',
]);

/** Functions that take an object name as text (or regclass) and read or touch that object. */
export const NAME_TAKING_FUNCTIONS = new Set([
  'nextval', 'currval', 'setval', 'to_regclass', 'to_regproc', 'to_regprocedure', 'to_regtype',
  'to_regtypemod', 'to_regnamespace', 'to_regoper', 'to_regoperator', 'to_regcollation', 'to_regrole',
  'table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema',
  'has_table_privilege', 'has_column_privilege', 'has_sequence_privilege', 'has_function_privilege',
  'has_schema_privilege', 'has_type_privilege', 'has_any_column_privilege',
  'pg_relation_size', 'pg_total_relation_size', 'pg_table_size', 'pg_indexes_size', 'pg_relation_filenode',
  'pg_relation_filepath', 'pg_get_serial_sequence', 'pg_get_viewdef', 'pg_get_functiondef',
  'pg_get_function_arguments', 'pg_get_indexdef', 'pg_get_constraintdef', 'pg_get_triggerdef',
  'pg_get_ruledef', 'pg_get_expr', 'pg_stat_get_live_tuples', 'pg_sequence_last_value',
  'pg_sequence_parameters', 'pg_column_size', 'pg_partition_tree', 'pg_partition_root',
]);

/** Of those, the ones whose argument must be a literal: anything else is an unknown target. */
export const DATA_TOUCHING_FUNCTIONS = new Set([
  'nextval', 'currval', 'setval', 'table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema',
  'pg_sequence_last_value',
]);

/** Functions that run SQL text, reach other sessions, files or shared objects. */
export const FORBIDDEN_FUNCTIONS = new Set([
  'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema', 'cursor_to_xml',
  'pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'pg_stat_file', 'pg_file_write',
  'pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf', 'pg_rotate_logfile',
  'pg_signal_backend', 'pg_promote', 'pg_switch_wal', 'pg_create_restore_point',
  'lo_import', 'lo_export', 'lo_unlink', 'lo_open', 'lo_create', 'lo_creat', 'lo_get', 'lo_put',
  'lo_from_bytea', 'lo_truncate', 'lo_lseek', 'lowrite', 'loread',
  'database_to_xml', 'database_to_xmlschema', 'database_to_xml_and_xmlschema',
  'schema_to_xml', 'schema_to_xmlschema', 'schema_to_xml_and_xmlschema',
]);

export const FORBIDDEN_FUNCTION_PREFIXES = ['dblink', 'pg_ls_', 'pg_logical_', 'pg_replication_', 'pg_create_', 'pg_drop_replication'];

/** Statements that act on the whole cluster or outside the tenant model. */
export const FORBIDDEN_STATEMENTS = new Map<string, string>([
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
  ['ReplicaIdentityStmt', 'REPLICA IDENTITY'],
  ['SecLabelStmt', 'SECURITY LABEL'],
  ['CreateStatsStmt', 'CREATE STATISTICS'],
  ['AlterCollationStmt', 'ALTER COLLATION'],
  ['CreateRangeStmt', 'CREATE TYPE ... AS RANGE'],
]);

/** Keys whose value is a possibly qualified name as a list of String nodes. */
export const NAME_LIST_KEYS = new Set([
  'funcname', 'names', 'objname', 'defnames', 'collname', 'opclassname', 'opfamilyname',
  'conversion_name', 'handler_name', 'validator', 'typeName', 'opclass',
]);
