import { LRUCache } from 'lru-cache';
import pg from 'pg';
import type { ResolvedBackendTarget } from '../config/load.js';
import type { TenancyConfig } from '../config/schema.js';
import { TenantRefused } from './errors.js';
import { NAME_PATTERN, schemaForTenant } from './names.js';

export interface Tenant {
  id: string;
  /** null in row mode. */
  schema: string | null;
}

export interface TenantResolver {
  /** The tenant to serve, or TenantRefused. */
  resolve(tenantId: string): Promise<Tenant>;
  close(): Promise<void>;
}

export function createTenantResolver(tenancy: TenancyConfig, backend: ResolvedBackendTarget): TenantResolver {
  if (tenancy.tenants !== undefined) return staticResolver(tenancy, tenancy.tenants);
  if (tenancy.registry !== undefined) return registryResolver(tenancy, tenancy.registry, backend);
  throw new Error('tenancy needs tenants or registry');
}

function staticResolver(tenancy: TenancyConfig, tenants: NonNullable<TenancyConfig['tenants']>): TenantResolver {
  const byId = new Map(tenants.map((t) => [t.id, t.status]));
  return {
    async resolve(tenantId) {
      const status = byId.get(tenantId);
      if (!NAME_PATTERN.test(tenantId)) throw new TenantRefused('invalid_tenant_id', tenantId);
      if (status === undefined) throw new TenantRefused('unknown_tenant', tenantId);
      if (status !== 'active') throw new TenantRefused('suspended_tenant', tenantId);
      return { id: tenantId, schema: schemaForTenant(tenancy, tenantId) };
    },
    async close() {},
  };
}

/** Reads a tenant's status with the operator's query; answers (found or not) are cached briefly. */
function registryResolver(
  tenancy: TenancyConfig,
  registry: NonNullable<TenancyConfig['registry']>,
  backend: ResolvedBackendTarget,
): TenantResolver {
  const pool = new pg.Pool({ ...backend, max: 2, idleTimeoutMillis: 30_000, application_name: 'pgfence-registry' });
  pool.on('error', () => undefined);
  const cache = new LRUCache<string, { status: string }>({ max: 10_000, ttl: Math.max(registry.cacheTtlMs, 1) });
  return {
    async resolve(tenantId) {
      if (!NAME_PATTERN.test(tenantId)) throw new TenantRefused('invalid_tenant_id', tenantId);
      let entry = registry.cacheTtlMs > 0 ? cache.get(tenantId) : undefined;
      if (entry === undefined) {
        let rows: Array<{ status?: unknown }>;
        try {
          rows = (await pool.query(registry.query, [tenantId])).rows;
        } catch {
          throw new TenantRefused('registry_unavailable', tenantId);
        }
        entry = { status: rows.length === 0 ? 'unknown' : String(rows[0]?.status) };
        if (registry.cacheTtlMs > 0) cache.set(tenantId, entry);
      }
      if (entry.status === 'unknown') throw new TenantRefused('unknown_tenant', tenantId);
      if (entry.status !== 'active') throw new TenantRefused('suspended_tenant', tenantId);
      return { id: tenantId, schema: schemaForTenant(tenancy, tenantId) };
    },
    close: () => pool.end(),
  };
}
