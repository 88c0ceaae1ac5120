import type { TenancyConfig } from '../config/schema.js';
import { TenantRefused } from './errors.js';
import { NAME_PATTERN, roleForTenant, schemaForTenant } from './names.js';
import type { TenantResolver } from './resolver.js';

/** Tenants from the configuration file (tenancy.tenants). */
export function staticResolver(tenancy: TenancyConfig, tenants: NonNullable<TenancyConfig['tenants']>): TenantResolver {
  const byId = new Map(tenants.map((t) => [t.id, t]));
  return {
    async resolve(tenantId) {
      if (!NAME_PATTERN.test(tenantId)) throw new TenantRefused('invalid_tenant_id', tenantId);
      const entry = byId.get(tenantId);
      if (entry === undefined) throw new TenantRefused('unknown_tenant', tenantId);
      if (entry.status !== 'active') throw new TenantRefused('suspended_tenant', tenantId);
      roleForTenant(tenancy, tenantId); // refused at connect if its role name (tenancy.roleTemplate) is invalid
      const statementTimeoutMs = entry.statementTimeoutMs ?? tenancy.statementTimeoutMs;
      return { id: tenantId, schema: schemaForTenant(tenancy, tenantId), statementTimeoutMs };
    },
    async close() {},
  };
}
