import os from 'node:os';
import type { Config } from '../config/schema.js';
import type { PoolOptions } from '../pool/pool.js';
import { MAX_WORKERS } from './cancel-key.js';

/**
 * How `workers: N` divides the figures that bound the whole instance. Each worker has a pool of its
 * own, so pool.size and pool.maxPerTenant are split into N shares that differ by at most one and
 * sum to the configured figure (20 over 3 workers: 7, 7, 6); so are each backend target's
 * (`backends.NAME.pool`), including targets a reload adds. A figure below N cannot be split
 * without a worker getting 0, so such a configuration is refused (schema.ts for a number of
 * workers, `workersFor` and `shareProblem` for `auto` and reloads).
 */

/** Worker `index`'s share of `total` over `count` workers. */
export function shareOf(total: number, index: number, count: number): number {
  return Math.floor(total / count) + (index < total % count ? 1 : 0);
}

/**
 * The number of worker processes: the configured number, or for `auto` one per core, no more than
 * pool.size and pool.maxPerTenant allow (each worker needs a share of at least one).
 */
export function workersFor(config: Config, cores: number = os.availableParallelism()): number {
  if (config.workers !== 'auto') return config.workers;
  const caps = [cores, config.pool.size, MAX_WORKERS];
  if (config.pool.maxPerTenant > 0) caps.push(config.pool.maxPerTenant);
  for (const target of Object.values(config.backends ?? {})) {
    if (target.pool?.size !== undefined) caps.push(target.pool.size);
    if (target.pool?.maxPerTenant !== undefined && target.pool.maxPerTenant > 0) caps.push(target.pool.maxPerTenant);
  }
  return Math.max(1, Math.min(...caps));
}

/** Why `count` workers cannot share this configuration's pool figures; null when they can. */
export function shareProblem(config: Config, count: number): string | null {
  if (config.pool.size < count) return `pool.size ${config.pool.size} is below the ${count} running workers: each needs at least one backend`;
  if (config.pool.maxPerTenant > 0 && config.pool.maxPerTenant < count) {
    return `pool.maxPerTenant ${config.pool.maxPerTenant} is below the ${count} running workers: each needs a share of at least one`;
  }
  for (const [name, target] of Object.entries(config.backends ?? {})) {
    const size = target.pool?.size;
    if (size !== undefined && size < count) return `backends.${name}.pool.size ${size} is below the ${count} running workers: each needs at least one backend`;
    const cap = target.pool?.maxPerTenant;
    if (cap !== undefined && cap > 0 && cap < count) {
      return `backends.${name}.pool.maxPerTenant ${cap} is below the ${count} running workers: each needs a share of at least one`;
    }
  }
  return null;
}

/** Worker `index`'s pool: the instance's options with its shares of the size and the per-tenant cap. */
export function sharedPoolOptions(options: PoolOptions, index: number, count: number): PoolOptions {
  if (count <= 1) return options;
  return {
    ...options,
    size: shareOf(options.size, index, count),
    maxPerTenant: options.maxPerTenant === 0 ? 0 : shareOf(options.maxPerTenant, index, count),
  };
}
