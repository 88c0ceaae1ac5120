import type { TenancyConfig } from '../config/schema.js';
import { quoteIdent, quoteLiteral } from './names.js';
import type { Tenant } from './resolver.js';

/** The search_path a pinned backend has: the tenant schema (if any), then the shared schemas. */
export function pinnedSearchPath(tenancy: TenancyConfig, tenant: Tenant): string {
  const schemas = tenant.schema === null ? tenancy.sharedSchemas : [tenant.schema, ...tenancy.sharedSchemas];
  return schemas.map(quoteIdent).join(', ');
}

/**
 * One statement that pins a backend to a tenant. Schema-qualified calls, so that no search_path
 * and no object a tenant created can redirect it.
 */
export function pinStatement(tenancy: TenancyConfig, tenant: Tenant): string {
  return (
    `SELECT pg_catalog.set_config('search_path', ${quoteLiteral(pinnedSearchPath(tenancy, tenant))}, false), ` +
    `pg_catalog.set_config(${quoteLiteral(tenancy.tenantGuc)}, ${quoteLiteral(tenant.id)}, false)`
  );
}
