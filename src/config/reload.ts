import { isDeepStrictEqual } from 'node:util';
import type { Config } from './schema.js';

/**
 * Keys a running pgfence can take from a reloaded file. Everything else (where it listens, the
 * target `default`, the pooling mode, how tenants map to schemas and GUCs) shapes sessions that
 * are already pinned, so it keeps its old value until a restart. `backends` is live: a new target
 * gets a pool, a removed or changed one's pool drains (src/placement/pools.ts).
 */
const LIVE_KEYS = [
  'listen.allowPlaintextJwt',
  'listen.requireTls',
  'listen.startupTimeoutMs',
  'listen.shutdownTimeoutMs',
  'listen.tls',
  'listen.authThrottle',
  'jwt',
  'tenancy.tenants',
  'tenancy.statementTimeoutMs',
  'tenancy.registry',
  'backends',
  'pool.reset',
  'pool.size',
  'pool.maxPerTenant',
  'pool.acquireTimeoutMs',
  'pool.resetTimeoutMs',
  'pool.idleTimeoutMs',
  'pool.maxLifetimeMs',
  'pool.healthCheckAfterIdleMs',
  'guard',
  'policy',
  'log',
  'admin.readyProbeCacheMs',
] as const;

export interface ReloadPlan {
  /** The configuration to run with: the new file, less what cannot change live. */
  effective: Config;
  applied: string[];
  notApplied: string[];
}

type Tree = Record<string, unknown>;

function leaves(value: unknown, prefix: string, out: Map<string, unknown>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) leaves(v, prefix ? `${prefix}.${k}` : k, out);
    if (Object.keys(value).length === 0) out.set(prefix, value);
  } else {
    out.set(prefix, value);
  }
}

/** True for a key a reload may change in a running pgfence. */
export function liveKey(path: string): boolean {
  return LIVE_KEYS.some((key) => path === key || path.startsWith(`${key}.`));
}

function setAt(tree: Tree, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = tree;
  for (const part of parts.slice(0, -1)) {
    if (node[part] === null || typeof node[part] !== 'object') node[part] = {};
    node = node[part] as Tree;
  }
  const last = parts[parts.length - 1] as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
}

/** Compares two configurations key by key and keeps the old value of every key that cannot change live. */
export function planReload(current: Config, next: Config): ReloadPlan {
  const before = new Map<string, unknown>();
  const after = new Map<string, unknown>();
  leaves(current, '', before);
  leaves(next, '', after);
  const effective = structuredClone(next) as unknown as Tree;
  const applied: string[] = [];
  const notApplied: string[] = [];
  for (const path of new Set([...before.keys(), ...after.keys()])) {
    if (isDeepStrictEqual(before.get(path), after.get(path))) continue;
    if (liveKey(path)) applied.push(path);
    else {
      notApplied.push(path);
      setAt(effective, path, structuredClone(before.get(path)));
    }
  }
  return { effective: effective as unknown as Config, applied: applied.sort(), notApplied: notApplied.sort() };
}
