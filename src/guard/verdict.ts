import type { PolicySwitch } from '../config/schema.js';
import type { Analysis } from './analysis.js';
import { PIN_SETTINGS, SYSTEM_SCHEMAS } from './rules.js';
import { searchPathSchemas } from './search-path.js';

/** A tenant's policy (config `policy`, with its overrides applied), in the form judge() reads. */
export interface FencePolicy {
  /** Refusals lifted for this tenant, by family. */
  readonly allow: ReadonlySet<PolicySwitch>;
  /** Refusals lifted one by one: function names (lower case) and statement kinds a switch could lift. */
  readonly allowed: ReadonlySet<string>;
  /** Shared schemas this tenant may read but not name as the target of a write or DDL. */
  readonly readOnlySchemas: ReadonlySet<string>;
  /** Function names, lower case. */
  readonly deniedFunctions: ReadonlySet<string>;
  /** Parse node names (TruncateStmt...). */
  readonly deniedStatements: ReadonlySet<string>;
  /** Setting names, lower case. */
  readonly protectedSettings: ReadonlySet<string>;
}

export interface TenantFence {
  /** The tenant's own schema, e.g. "tenant_acme"; null in row mode (no tenant schema). */
  ownSchema: string | null;
  /** Schemas every tenant may use, e.g. ["public"]. */
  sharedSchemas: readonly string[];
  /** The tenant GUC, e.g. "app.current_tenant_id". */
  tenantGuc: string;
  /** What the operator's policy adds or lifts; none: the built-in rules only. */
  policy?: FencePolicy;
}

/**
 * Stable codes for why a statement was refused (audit logs and metrics count by them).
 * - parse_error: the text (or a body or name inside it) does not parse; SQLSTATE 42601 like Postgres.
 * - foreign_schema: names a schema outside the fence; foreign_database: a db.schema.name qualifier.
 * - pin_change: would change search_path, role, session_authorization or the tenant GUC.
 * - forbidden_statement: acts outside the tenant model (roles, databases, files, other sessions...).
 * - dynamic_sql: its targets cannot be known from the text (EXECUTE, query_to_xml, computed names).
 * - parser_divergence: would make the server read later text differently from the guard (0A000).
 * - denied_function, denied_statement, protected_setting: refused by the operator's policy.
 * - read_only_schema: names a shared schema the policy makes read-only as the target of a write.
 */
export type RejectReason =
  | 'parse_error'
  | 'foreign_schema'
  | 'foreign_database'
  | 'pin_change'
  | 'forbidden_statement'
  | 'dynamic_sql'
  | 'parser_divergence'
  | 'denied_function'
  | 'denied_statement'
  | 'protected_setting'
  | 'read_only_schema';

export type Verdict =
  | { allowed: true }
  | { allowed: false; sqlstate: string; reason: RejectReason; message: string };

const ALLOWED: Verdict = Object.freeze({ allowed: true });
const OTHER_SESSION_TEMP = /^pg_(toast_)?temp_\d+$/;
const SQLSTATE_SYNTAX_ERROR = '42601';
const SQLSTATE_INSUFFICIENT_PRIVILEGE = '42501';
const SQLSTATE_FEATURE_NOT_SUPPORTED = '0A000';

/** The verdict for one tenant: cheap, from the cached tenant-independent analysis. */
export function judge(a: Analysis, fence: TenantFence): Verdict {
  if (a.parseError !== null) {
    return reject(SQLSTATE_SYNTAX_ERROR, 'parse_error', `pgfence: could not parse statement: ${a.parseError}`);
  }
  const policy = fence.policy;
  for (const refusal of a.refusals) {
    if (refusal.lift !== undefined && policy !== undefined && lifted(refusal.lift, refusal.subject, policy)) continue;
    const sqlstate = refusal.reason === 'parser_divergence' ? SQLSTATE_FEATURE_NOT_SUPPORTED : SQLSTATE_INSUFFICIENT_PRIVILEGE;
    return reject(sqlstate, refusal.reason, refusal.message);
  }
  if (a.settings.size > 0) {
    const guc = fence.tenantGuc.toLowerCase();
    for (const setting of a.settings) {
      if (setting === '*') {
        return reject(SQLSTATE_INSUFFICIENT_PRIVILEGE, 'pin_change', 'pgfence: RESET ALL and DISCARD ALL are not allowed (the tenant pin is managed by pgfence)');
      }
      if (PIN_SETTINGS.has(setting) || setting === guc) {
        return reject(SQLSTATE_INSUFFICIENT_PRIVILEGE, 'pin_change', `pgfence: changing ${setting} is not allowed (the tenant pin is managed by pgfence)`);
      }
      if (policy?.protectedSettings.has(setting) === true) {
        return reject(SQLSTATE_INSUFFICIENT_PRIVILEGE, 'protected_setting', `pgfence: changing ${setting} is not allowed by policy`);
      }
    }
  }
  for (const value of a.searchPaths) {
    const refused = judgeSearchPath(value, fence);
    if (refused !== null) return refused;
  }
  for (const catalog of a.catalogs) {
    return reject(SQLSTATE_INSUFFICIENT_PRIVILEGE, 'foreign_database', `pgfence: cross-database reference ${quote(catalog)} is not allowed`);
  }
  for (const schema of a.schemas) {
    if (schema === fence.ownSchema || SYSTEM_SCHEMAS.has(schema) || fence.sharedSchemas.includes(schema)) continue;
    const note = OTHER_SESSION_TEMP.test(schema) ? ' (it is another session\'s temporary schema)' : '';
    return reject(SQLSTATE_INSUFFICIENT_PRIVILEGE, 'foreign_schema', `pgfence: access to schema ${quote(schema)} is not allowed for this tenant${note}`);
  }
  return policy === undefined ? ALLOWED : judgePolicy(a, policy);
}

/**
 * A search_path the client sets: allowed when it names nothing beyond the pin, that is only the
 * tenant's own schema, its shared schemas, pg_catalog (searched anyway) and pg_temp (the session's
 * own). An empty quoted name ("") names no schema. "$user", another schema, or a value Postgres
 * would not read, change the pin.
 */
export function searchPathWithinFence(value: string, fence: TenantFence): boolean {
  return judgeSearchPath(value, fence) === null;
}

function judgeSearchPath(value: string, fence: TenantFence): Verdict | null {
  const schemas = searchPathSchemas(value);
  if (schemas === null) {
    return reject(SQLSTATE_INSUFFICIENT_PRIVILEGE, 'pin_change', 'pgfence: a search_path that pgfence cannot read is not allowed (the tenant pin is managed by pgfence)');
  }
  for (const schema of schemas) {
    if (schema === fence.ownSchema || SEARCH_PATH_SYSTEM.has(schema) || fence.sharedSchemas.includes(schema)) continue;
    return reject(
      SQLSTATE_INSUFFICIENT_PRIVILEGE,
      'pin_change',
      `pgfence: search_path may name only this tenant's schema, its shared schemas, pg_catalog and pg_temp, not ${quote(schema)} (the tenant pin is managed by pgfence)`,
    );
  }
  return null;
}

const SEARCH_PATH_SYSTEM: ReadonlySet<string> = new Set(['pg_catalog', 'pg_temp', '']);

function lifted(lift: PolicySwitch, subject: string | undefined, policy: FencePolicy): boolean {
  return policy.allow.has(lift) || (subject !== undefined && policy.allowed.has(subject));
}

/** The operator's own denials, after the built-in rules allowed the text. */
function judgePolicy(a: Analysis, policy: FencePolicy): Verdict {
  if (policy.readOnlySchemas.size > 0) {
    for (const schema of a.writesAnywhere ? a.schemas : a.writtenSchemas) {
      if (policy.readOnlySchemas.has(schema)) {
        return reject(SQLSTATE_INSUFFICIENT_PRIVILEGE, 'read_only_schema', `pgfence: schema ${quote(schema)} is read-only for this tenant`);
      }
    }
  }
  for (const kind of a.statementKinds) {
    if (policy.deniedStatements.has(kind)) {
      return reject(SQLSTATE_INSUFFICIENT_PRIVILEGE, 'denied_statement', `pgfence: ${kind} statements are not allowed by policy`);
    }
  }
  for (const name of a.functions) {
    if (policy.deniedFunctions.has(name)) {
      return reject(SQLSTATE_INSUFFICIENT_PRIVILEGE, 'denied_function', `pgfence: function ${quote(name)} is not allowed by policy`);
    }
  }
  return ALLOWED;
}

function reject(sqlstate: string, reason: RejectReason, message: string): Verdict {
  return { allowed: false, sqlstate, reason, message };
}

/** A name as Postgres would print it in a message, cut to identifier length. */
function quote(name: string): string {
  const shown = name.length > 63 ? `${name.slice(0, 63)}...` : name;
  return `"${shown.replace(/"/g, '""')}"`;
}
