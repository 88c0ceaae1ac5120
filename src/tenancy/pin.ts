import type { TenancyConfig } from '../config/schema.js';
import { quoteIdent, quoteLiteral, roleForTenant } from './names.js';
import type { Tenant } from './resolver.js';

/** The search_path of a pinned backend: the tenant's schema (none in row mode), then the shared schemas. */
function searchPathValue(tenancy: TenancyConfig, tenant: Tenant): string {
  const schemas = tenant.schema === null ? tenancy.sharedSchemas : [tenant.schema, ...tenancy.sharedSchemas];
  return schemas.map(quoteIdent).join(', ');
}

/**
 * The one simple-query statement that pins a backend to a tenant:
 *
 *   SELECT pg_catalog.set_config('search_path', E'"tenant_acme", "public"', false),
 *          pg_catalog.set_config(E'app.current_tenant_id', E'acme', false)
 *
 * and, with tenancy.roleTemplate, last: `pg_catalog.set_config('role', E'pgfence_acme', false)`,
 * which is SET ROLE (the role's name as a plain string: set_config takes it verbatim, no
 * case folding). DISCARD ALL undoes it with everything else (SET SESSION AUTHORIZATION DEFAULT).
 *
 * Every call is schema-qualified, so no search_path and no object a tenant created can redirect
 * it. search_path is a list of identifiers given as one string, so each element is quoted
 * inside the literal (an unquoted `tenant_Acme` would fold to tenant_acme, and `tenant_a-b`
 * would not parse).
 */
export function pinStatement(tenancy: TenancyConfig, tenant: Tenant): string {
  const role = roleForTenant(tenancy, tenant.id);
  return (
    `SELECT pg_catalog.set_config('search_path', ${quoteLiteral(searchPathValue(tenancy, tenant))}, false), ` +
    `pg_catalog.set_config(${quoteLiteral(tenancy.tenantGuc)}, ${quoteLiteral(tenant.id)}, false)` +
    (role === null ? '' : `, pg_catalog.set_config('role', ${quoteLiteral(role)}, false)`)
  );
}

/**
 * What Postgres reports for search_path after pinStatement, in SHOW search_path and (Postgres
 * 18+) in ParameterStatus: set_config keeps the string it is given verbatim, quotes included,
 * e.g. `"tenant_acme", "public"` (a SET statement would instead normalise to
 * `tenant_acme, public`). Checked against real servers in test/tenancy/postgres.test.ts.
 * Row mode with no shared schemas gives the empty string.
 */
export function expectedSearchPath(tenancy: TenancyConfig, tenant: Tenant): string {
  return searchPathValue(tenancy, tenant);
}
