import type { TenancyConfig } from '../config/schema.js';
import { TenantRefused } from './errors.js';
import { NAME_PATTERN, roleForTenant, schemaForTenant } from './names.js';
import type { TenantResolver, TenantStatus } from './resolver.js';

/** Tenants from the configuration file (tenancy.tenants). */
export function staticResolver(tenancy: TenancyConfig, tenants: NonNullable<TenancyConfig['tenants']>): TenantResolver {
  const statusById = new Map<string, TenantStatus>(tenants.map((t) => [t.id, t.status]));
  return {
    async resolve(tenantId) {
      if (!NAME_PATTERN.test(tenantId)) throw new TenantRefused('invalid_tenant_id', tenantId);
      const status = statusById.get(tenantId);
      if (status === undefined) throw new TenantRefused('unknown_tenant', tenantId);
      if (status !== 'active') throw new TenantRefused('suspended_tenant', tenantId);
      roleForTenant(tenancy, tenantId); // refused at connect if its role name (tenancy.roleTemplate) is invalid
      return { id: tenantId, schema: schemaForTenant(tenancy, tenantId) };
    },
    async close() {},
  };
}
