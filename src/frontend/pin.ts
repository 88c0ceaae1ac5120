import type { TenancyConfig } from '../config/schema.js';
import { pinStatement, quoteIdent, quoteLiteral, roleForTenant, type Tenant } from '../tenancy/index.js';

/**
 * The one simple query that prepares a reset backend for a client: the client's own session
 * settings first, then the tenant pin, so nothing the client asked for can override the pin
 * (but a search_path narrower than the pin's, which comes last).
 */
export function pinSql(tenancy: TenancyConfig, tenant: Tenant, settings: ReadonlyMap<string, string>): string {
  const parts: string[] = [];
  for (const [name, value] of settings) {
    if (name === 'search_path') continue;
    parts.push(`pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, false)`);
  }
  // A narrower search_path the client set (its own and shared schemas only: the guard saw to it)
  // goes after the pin, which would otherwise replace it.
  const narrower = settings.get('search_path');
  const searchPath = narrower === undefined ? '' : `; SELECT pg_catalog.set_config('search_path', ${quoteLiteral(narrower)}, false)`;
  const settingsSql = parts.length > 0 ? `SELECT ${parts.join(', ')}; ` : '';
  // The cast fails with 3F000 when the schema is missing: a search_path naming a missing schema
  // would silently send the tenant's CREATE TABLE into the next schema on the path.
  // The literal is read as an identifier (case-folded unless quoted), so quote it: 'tenant_Acme'
  // unquoted would find tenant_acme.
  // Likewise a missing tenant role (tenancy.roleTemplate) fails with 42704 here, rather than with
  // the 22023 of set_config, which a bad client setting also gives (see isTenantRoleError).
  const role = roleForTenant(tenancy, tenant.id);
  const checks = [
    ...(tenant.schema === null ? [] : [`${quoteLiteral(quoteIdent(tenant.schema))}::pg_catalog.regnamespace`]),
    ...(role === null ? [] : [`${quoteLiteral(quoteIdent(role))}::pg_catalog.regrole`]),
  ];
  const check = checks.length === 0 ? '' : `SELECT ${checks.join(', ')}; `;
  return check + settingsSql + pinStatement(tenancy, tenant) + searchPath;
}

/** A stable identity for a set of session settings: equal keys need no re-pin. */
export function settingsKey(settings: ReadonlyMap<string, string>): string {
  return JSON.stringify([...settings].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The backend refused the tenant role of the pin: 42704 from the regrole check (no such role),
 * 42501 from set_config('role') (the pool's user is not a member). Client settings are limited
 * to ordinary user-settable parameters, which give neither.
 */
export function isTenantRoleError(tenancy: TenancyConfig, sqlstate: string | undefined): boolean {
  return tenancy.roleTemplate !== undefined && (sqlstate === '42704' || sqlstate === '42501');
}
