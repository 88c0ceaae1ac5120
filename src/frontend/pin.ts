import type { TenancyConfig } from '../config/schema.js';
import { pinStatement, quoteIdent, quoteLiteral, type Tenant } from '../tenancy/index.js';

/**
 * The one simple query that prepares a reset backend for a client: the client's own session
 * settings first, then the tenant pin, so nothing the client asked for can override the pin.
 */
export function pinSql(tenancy: TenancyConfig, tenant: Tenant, settings: ReadonlyMap<string, string>): string {
  const parts: string[] = [];
  for (const [name, value] of settings) {
    parts.push(`pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false)`);
  }
  const settingsSql = parts.length > 0 ? `SELECT ${parts.join(', ')}; ` : '';
  // The cast fails with 3F000 when the schema is missing: a search_path naming a missing schema
  // would silently send the tenant's CREATE TABLE into the next schema on the path.
  // The literal is read as an identifier (case-folded unless quoted), so quote it: 'tenant_Acme'
  // unquoted would find tenant_acme.
  const schemaCheck = tenant.schema === null ? '' : `SELECT ${quoteLiteral(quoteIdent(tenant.schema))}::pg_catalog.regnamespace; `;
  return schemaCheck + settingsSql + pinStatement(tenancy, tenant);
}

/** A stable identity for a set of session settings: equal keys need no re-pin. */
export function settingsKey(settings: ReadonlyMap<string, string>): string {
  return JSON.stringify([...settings].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
