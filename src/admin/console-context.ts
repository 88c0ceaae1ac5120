import { liveKey } from '../config/reload.js';
import type { ClientSession } from '../frontend/client-session.js';
import type { SessionDeps } from '../frontend/session-deps.js';
import type { BackendPool } from '../pool/pool.js';
import type { ConsoleContext } from './console.js';

/** Configuration keys whose values the console never shows. */
const SECRET_KEYS = new Set(['listen.tls.key', 'backend.url', 'backend.password', 'jwt.secret', 'jwt.jwk', 'jwt.privateKey']);

function flatten(value: unknown, prefix: string, out: Array<[string, unknown]>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.push([prefix, value]);
  }
}

/** What the admin console reads from, and acts on, in a running pgfence. */
export function consoleContext(parts: {
  deps: SessionDeps;
  sessions: ReadonlySet<ClientSession>;
  pool: BackendPool;
  reload: () => Promise<{ applied: string[]; notApplied: string[] }>;
  killTenant: (tenantId: string) => number;
}): ConsoleContext {
  const { deps, sessions, pool } = parts;
  const clientsOf = (tenant: string): number => [...sessions].filter((s) => s.tenantId === tenant).length;
  return {
    pools() {
      const stats = pool.stats;
      return [{ database: deps.config.backend.database ?? 'postgres', mode: deps.config.pool.mode, size: deps.config.pool.size, ...stats, maxWaitMs: pool.maxWaitMs }];
    },
    clients: () => [...sessions].map((s) => s.describe()),
    servers: () => pool.describe(),
    tenants() {
      const listed = deps.config.tenancy.tenants ?? [];
      return listed.map((t) => ({
        id: t.id,
        status: t.status,
        schema: deps.config.tenancy.mode === 'row' ? null : deps.config.tenancy.schemaTemplate.replaceAll('{tenant}', t.id),
        clients: clientsOf(t.id),
      }));
    },
    stats() {
      const backends = pool.describe();
      return deps.metrics.tenantTotals().map((t) => ({
        tenant: t.label,
        statements: t.statementCount,
        rejected: t.rejectedCount,
        clients: clientsOf(t.label),
        backends: backends.filter((b) => b.tenant === t.label).length,
      }));
    },
    config() {
      const rows: Array<[string, unknown]> = [];
      flatten(deps.config, '', rows);
      return rows.map(([key, value]) => ({
        key,
        value: SECRET_KEYS.has(key) || key.startsWith('jwt.jwk.') ? '********' : value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value),
        changeable: liveKey(key),
      }));
    },
    reload: parts.reload,
    pause: () => pool.pause(),
    resume: () => pool.resume(),
    killTenant: parts.killTenant,
    onError: (command, error) => deps.log.error({ command, err: error }, 'admin console command failed'),
  };
}
