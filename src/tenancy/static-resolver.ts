import type { TenancyConfig } from '../config/schema.js';
import { TenantRefused } from './errors.js';
import { NAME_PATTERN, servedTenant } from './names.js';
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
      const placement = entry.placement;
      return servedTenant(tenancy, tenantId, entry.statementTimeoutMs, {
        placement: placement === undefined ? undefined : { target: placement.target, database: placement.database ?? null },
        schema: placement?.schema,
      });
    },
    forget() {},
    async close() {},
  };
}
