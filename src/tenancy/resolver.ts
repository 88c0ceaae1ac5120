import type { ResolvedBackendTarget } from '../config/load.js';
import type { TenancyConfig } from '../config/schema.js';
import type { Placement } from '../placement/placement.js';
import { controlRegistryQuery } from './control.js';
import { registryResolver } from './registry-resolver.js';
import { staticResolver } from './static-resolver.js';

export type TenantStatus = 'active' | 'suspended';

/** A tenant pgfence serves. */
export interface Tenant {
  id: string;
  /** The tenant's schema; null in row mode. */
  schema: string | null;
  /** The most statement_timeout its sessions may have, in ms; 0 or absent: no limit. */
  statementTimeoutMs?: number;
  /** Where it lives (src/placement); absent: the target `default`, its database. */
  placement?: Placement;
}

export interface TenantResolver {
  /** The tenant to serve, or a rejection with TenantRefused; never a default tenant. */
  resolve(tenantId: string): Promise<Tenant>;
  /** Drops what the cache knows of one tenant (null: of every tenant), so the next resolve asks the registry. */
  forget(tenantId: string | null): void;
  /** Releases the registry connections, if any; idempotent. */
  close(): Promise<void>;
  /** Registry only: the tenants whose answer is cached now, with their status (for SHOW TENANTS). */
  known?(): Array<{ id: string; status: string }>;
}

export interface TenantResolverOptions {
  /** Registry only: time to connect to the backend (default 5 s). */
  connectTimeoutMs?: number;
  /** Registry only: longest the registry query may run (default 5 s). */
  queryTimeoutMs?: number;
}

/**
 * The static list of tenancy.tenants, the operator's registry query (tenancy.registry), or the
 * registry pgfence owns (tenancy.control), read like an operator's registry.
 */
export function createTenantResolver(
  tenancy: TenancyConfig,
  backend: ResolvedBackendTarget,
  options: TenantResolverOptions = {},
): TenantResolver {
  if (tenancy.tenants !== undefined) return staticResolver(tenancy, tenancy.tenants);
  if (tenancy.registry !== undefined) return registryResolver(tenancy, tenancy.registry, backend, options);
  if (tenancy.control !== undefined) {
    const registry = { query: controlRegistryQuery(tenancy.control.schema), cacheTtlMs: tenancy.control.cacheTtlMs };
    return registryResolver(tenancy, registry, backend, options);
  }
  throw new Error('tenancy needs tenants, registry or control (the configuration schema requires one)');
}
