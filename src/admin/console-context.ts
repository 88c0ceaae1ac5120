import { performance } from 'node:perf_hooks';
import { liveKey } from '../config/reload.js';
import { isSecretPath, schemaAt } from '../config/reference.js';
import type { ClientSession } from '../frontend/client-session.js';
import type { SessionDeps } from '../frontend/session-deps.js';
import type { BackendPool } from '../pool/pool.js';
import type { ConsoleContext, ConsoleTenant, ConsoleTenantStats } from './console.js';
import type { StatTotals } from './metrics.js';
import { placementLabel } from '../placement/placement.js';
import type { ConsoleDatabase } from './console.js';
import { livePoolsView, type PlacedPoolView, type PoolsView } from './pool-view.js';

/** What the console shows for the value of a key the schema marks secret (isSecretPath), at any depth: backends.NAME.url too. */
const MASK = '********';

function flatten(value: unknown, prefix: string, out: Array<[string, unknown]>): void {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.push([prefix, value]);
  }
}

function shown(value: unknown): string {
  return value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
}

const STAT_KEYS: ReadonlyArray<keyof StatTotals> = ['assignments', 'transactions', 'queries', 'received', 'sent', 'transactionMicros', 'queryMicros', 'waitMicros'];

/**
 * PgBouncer's averages over the last stats period: counts and bytes per second; transaction,
 * query and wait times per transaction, query and assignment (µs). All 0 before the first period.
 */
export function statAverages(now: StatTotals, before: StatTotals | undefined, seconds: number): StatTotals {
  const avg = Object.fromEntries(STAT_KEYS.map((k) => [k, 0])) as unknown as StatTotals;
  if (before === undefined || seconds <= 0) return avg;
  const d = (k: keyof StatTotals): number => now[k] - before[k];
  const per = (a: number, b: number): number => (b > 0 ? a / b : 0);
  avg.assignments = d('assignments') / seconds;
  avg.transactions = d('transactions') / seconds;
  avg.queries = d('queries') / seconds;
  avg.received = d('received') / seconds;
  avg.sent = d('sent') / seconds;
  avg.transactionMicros = per(d('transactionMicros'), d('transactions'));
  avg.queryMicros = per(d('queryMicros'), d('queries'));
  avg.waitMicros = per(d('waitMicros'), d('assignments'));
  return avg;
}

/** What the admin console reads from, and acts on, in a running pgfence. */
export function consoleContext(parts: {
  deps: SessionDeps;
  sessions: ReadonlySet<ClientSession>;
  /** The target `default` (SHOW SERVERS's fallback; every pool says where it connects). */
  target: { host: string; port: number; database: string; user: string };
  /** The port pgfence listens on (SHOW DATABASES's row for the console database). */
  listenPort: number;
  reload: () => Promise<{ applied: string[]; notApplied: string[] }>;
  killTenant: (tenantId: string) => number;
  shutdown: () => void;
}): ConsoleContext {
  const { deps, sessions, target } = parts;
  const clientsOf = (): Map<string, number> => {
    const counts = new Map<string, number>();
    for (const s of sessions) if (s.tenantId !== null) counts.set(s.tenantId, (counts.get(s.tenantId) ?? 0) + 1);
    return counts;
  };
  // Every pool of every backend target (src/placement), the ones still draining after a reload included.
  const view = (): PoolsView<PlacedPoolView> => livePoolsView(sessions, deps.pools.all(), deps.config.pool.healthCheckAfterIdleMs);
  return {
    target: () => target,
    pools() {
      const mode = deps.config.pool.mode;
      return view().pools.flatMap((p) => p.rows.map((row) => ({ ...row, database: p.database, user: p.user, poolMode: mode, target: p.target })));
    },
    clients: () => [...sessions].map((s) => s.describe()),
    servers() {
      const holders = new Map<number, number>();
      for (const s of sessions) {
        const d = s.describe();
        if (d.backendId !== null) holders.set(d.backendId, d.id);
      }
      // Every target's pools, each backend with the target it belongs to (src/placement).
      return deps.pools.all().flatMap((placed) => {
        const { host, port, user } = placed.spec.target;
        const where = { host, port, database: placed.database, user };
        return placed.pool.describe().map((b) => ({ ...b, clientId: holders.get(b.id) ?? null, targetName: placed.target, where }));
      });
    },
    databases() {
      const config = deps.config;
      const clients = new Map<BackendPool, number>();
      let consoleClients = 0;
      for (const s of sessions) {
        const state = s.clientState;
        if (state === 'console') consoleClients++;
        else if (state !== 'login' && s.pool !== null) clients.set(s.pool, (clients.get(s.pool) ?? 0) + 1);
      }
      // One row per pool: each backend target's own, then each tenant database's in use on it.
      const rows = deps.pools.all().map((p): ConsoleDatabase => {
        const limits = p.tenantDatabase ? p.spec.databasePool : p.spec.pool;
        return {
          name: placementLabel({ target: p.target, database: p.tenantDatabase ? p.database : null }),
          host: p.spec.target.host,
          port: p.spec.target.port,
          database: p.database,
          forceUser: p.spec.target.user,
          poolSize: limits.size,
          serverLifetimeSeconds: Math.floor(config.pool.maxLifetimeMs / 1000),
          poolMode: config.pool.mode,
          maxConnections: limits.size,
          currentConnections: p.pool.describe().length + p.pool.stats.connecting,
          currentClientConnections: clients.get(p.pool) ?? 0,
          paused: p.pool.isPaused,
          disabled: p.retiring,
          maxPerTenant: limits.maxPerTenant,
          target: p.target,
        };
      });
      return [
        ...rows,
        {
          name: 'pgfence',
          host: null,
          port: parts.listenPort,
          database: 'pgfence',
          forceUser: null,
          poolSize: 0,
          serverLifetimeSeconds: 0,
          poolMode: 'statement',
          maxConnections: 0,
          currentConnections: 0,
          currentClientConnections: consoleClients,
          paused: false,
          maxPerTenant: 0,
          target: null,
        },
      ];
    },
    lists() {
      const v = view();
      const users = new Set<string>();
      for (const s of sessions) if (s.clientState !== 'login') users.add(s.describe().user ?? '');
      const rows = v.pools.reduce((n, p) => n + p.rows.length, 0);
      const servers = deps.pools.all().reduce((n, { pool: p }) => n + p.describe().length + p.stats.connecting, 0);
      return [
        { list: 'databases', items: this.databases().length },
        { list: 'users', items: users.size },
        { list: 'peers', items: 0 },
        { list: 'pools', items: rows },
        { list: 'peer_pools', items: 0 },
        { list: 'free_clients', items: 0 },
        { list: 'used_clients', items: sessions.size },
        { list: 'login_clients', items: v.loginClients },
        { list: 'free_servers', items: 0 },
        { list: 'used_servers', items: servers },
        { list: 'dns_names', items: 0 },
        { list: 'dns_zones', items: 0 },
        { list: 'dns_queries', items: 0 },
        { list: 'dns_pending', items: 0 },
        { list: 'tenants', items: this.tenants().length },
      ];
    },
    tenants() {
      const tenancy = deps.config.tenancy;
      const schemaOf = (id: string): string | null => (tenancy.mode === 'row' ? null : tenancy.schemaTemplate.replaceAll('{tenant}', id));
      const clients = clientsOf();
      const byId = new Map<string, ConsoleTenant>();
      for (const t of tenancy.tenants ?? []) byId.set(t.id, { id: t.id, status: t.status, schema: schemaOf(t.id), clients: 0, source: 'config' });
      for (const t of deps.tenants.known?.() ?? []) {
        if (!byId.has(t.id)) byId.set(t.id, { id: t.id, status: t.status, schema: schemaOf(t.id), clients: 0, source: 'registry' });
      }
      for (const id of clients.keys()) {
        if (!byId.has(id)) byId.set(id, { id, status: null, schema: schemaOf(id), clients: 0, source: 'session' });
      }
      for (const t of byId.values()) t.clients = clients.get(t.id) ?? 0;
      return [...byId.values()];
    },
    stats(): ConsoleTenantStats[] {
      const period = deps.metrics.statsPeriod;
      const seconds = period === null ? 0 : (performance.now() - period.at) / 1000;
      return deps.metrics.tenantTotals().map((t) => {
        const totals = t.totals();
        return {
          tenant: t.label,
          database: target.database,
          totals,
          averages: statAverages(totals, period?.totals.get(t.label), seconds),
          statements: t.statementCount,
          rejected: t.rejectedCount,
        };
      });
    },
    config() {
      const rows: Array<[string, unknown]> = [];
      flatten(deps.config, '', rows);
      return rows.map(([key, value]) => {
        const secret = isSecretPath(key.split('.'));
        return {
          key,
          value: secret ? MASK : shown(value),
          default: shown(schemaAt(key.split('.'))?.default),
          changeable: liveKey(key),
        };
      });
    },
    reload: parts.reload,
    // Every pool of every target: PAUSE, RESUME and RECONNECT act on all of them (BackendPools).
    pause: () => deps.pools.pause(),
    resume: () => deps.pools.resume(),
    reconnect: () => deps.pools.reconnect(),
    shutdown: parts.shutdown,
    killTenant: parts.killTenant,
    onError: (command, error) => deps.log.error({ command, err: error }, 'admin console command failed'),
  };
}
