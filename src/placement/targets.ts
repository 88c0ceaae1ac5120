import { type ResolvedBackendTarget, resolveBackendTarget } from '../config/backend-target.js';
import type { Config } from '../config/schema.js';
import type { PoolOptions } from '../pool/pool.js';
import { DEFAULT_TARGET } from './placement.js';

/** One backend target with every default applied: where it is, and the limits of its pools. */
export interface TargetSpec {
  name: string;
  target: ResolvedBackendTarget;
  /** Options of the target's own pool (its database). */
  pool: PoolOptions;
  /** Options of each tenant database's pool on this target (size = databaseSize). */
  databasePool: PoolOptions;
  /** Most tenant databases with a pool at once. */
  maxDatabases: number;
}

/**
 * The targets of a configuration: `default` from `backend` with the top-level pool, then each of
 * `backends`, whose pool keys replace the top-level ones they give.
 */
export function targetSpecs(config: Config): Map<string, TargetSpec> {
  const specs = new Map<string, TargetSpec>();
  specs.set(DEFAULT_TARGET, spec(config, DEFAULT_TARGET, resolveBackendTarget(config.backend), config.backend.connectTimeoutMs, {}));
  for (const [name, entry] of Object.entries(config.backends ?? {})) {
    specs.set(name, spec(config, name, resolveBackendTarget(entry), entry.connectTimeoutMs, entry.pool ?? {}));
  }
  return specs;
}

function spec(
  config: Config,
  name: string,
  target: ResolvedBackendTarget,
  connectTimeoutMs: number,
  limits: { size?: number; maxPerTenant?: number; databaseSize?: number; maxDatabases?: number },
): TargetSpec {
  const p = config.pool;
  const common = {
    acquireTimeoutMs: p.acquireTimeoutMs,
    resetTimeoutMs: p.resetTimeoutMs,
    idleTimeoutMs: p.idleTimeoutMs,
    maxLifetimeMs: p.maxLifetimeMs,
    healthCheckAfterIdleMs: p.healthCheckAfterIdleMs,
    connectTimeoutMs,
    maxMessageBytes: config.listen.maxMessageBytes,
    maxPreparedStatements: p.maxPreparedStatements,
    maxPerTenant: limits.maxPerTenant ?? p.maxPerTenant,
  };
  return {
    name,
    target,
    pool: { ...common, size: limits.size ?? p.size },
    databasePool: { ...common, size: limits.databaseSize ?? p.databaseSize },
    maxDatabases: limits.maxDatabases ?? p.maxDatabases,
  };
}
