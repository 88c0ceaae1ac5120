import { performance } from 'node:perf_hooks';
import { liveKey } from '../config/reload.js';
import { schemaAt } from '../config/reference.js';
import type { ClientSession } from '../frontend/client-session.js';
import type { SessionDeps } from '../frontend/session-deps.js';
import type { BackendPool } from '../pool/pool.js';
import type { ConsoleContext, ConsoleTenant, ConsoleTenantStats } from './console.js';
import type { StatTotals } from './metrics.js';
import { livePoolView, type PoolView } from './pool-view.js';

/** Configuration keys whose values the console never shows. */
const SECRET_KEYS = new Set(['listen.tls.key', 'backend.url', 'backend.password', 'jwt.secret', 'jwt.jwk', 'jwt.privateKey', 'tenancy.control.provisioner.password']);
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
  pool: BackendPool;
  /** The backend every pooled connection goes to. */
  target: { host: string; port: number; database: string; user: string };
  /** The port pgfence listens on (SHOW DATABASES's row for the console database). */
  listenPort: number;
  reload: () => Promise<{ applied: string[]; notApplied: string[] }>;
  killTenant: (tenantId: string) => number;
  shutdown: () => void;
}): ConsoleContext {
  const { deps, sessions, pool, target } = parts;
  const clientsOf = (): Map<string, number> => {
    const counts = new Map<string, number>();
    for (const s of sessions) if (s.tenantId !== null) counts.set(s.tenantId, (counts.get(s.tenantId) ?? 0) + 1);
    return counts;
  };
  const view = (): PoolView => livePoolView(sessions, pool, deps.config.pool.healthCheckAfterIdleMs);
  return {
    target: () => target,
    pools() {
      const mode = deps.config.pool.mode;
      return view().rows.map((row) => ({ ...row, database: target.database, user: target.user, poolMode: mode }));
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
        const spec = deps.pools.spec(placed.target);
        const where = spec === undefined ? target : { host: spec.target.host, port: spec.target.port, database: placed.database, user: spec.target.user };
        return placed.pool.describe().map((b) => ({ ...b, clientId: holders.get(b.id) ?? null, targetName: placed.target, where }));
      });
    },
    databases() {
      const config = deps.config;
      const backends = pool.describe().length + pool.stats.connecting;
      let tenantClients = 0;
      let consoleClients = 0;
      for (const s of sessions) {
        const state = s.clientState;
        if (state === 'console') consoleClients++;
        else if (state !== 'login') tenantClients++;
      }
      return [
        {
          name: target.database,
          host: target.host,
          port: target.port,
          database: target.database,
          forceUser: target.user,
          poolSize: config.pool.size,
          serverLifetimeSeconds: Math.floor(config.pool.maxLifetimeMs / 1000),
          poolMode: config.pool.mode,
          maxConnections: config.pool.size,
          currentConnections: backends,
          currentClientConnections: tenantClients,
          paused: pool.isPaused,
          maxPerTenant: config.pool.maxPerTenant,
        },
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
        },
      ];
    },
    lists() {
      const v = view();
      const users = new Set<string>();
      for (const s of sessions) if (s.clientState !== 'login') users.add(s.describe().user ?? '');
      return [
        { list: 'databases', items: 2 },
        { list: 'users', items: users.size },
        { list: 'peers', items: 0 },
        { list: 'pools', items: v.rows.length },
        { list: 'peer_pools', items: 0 },
        { list: 'free_clients', items: 0 },
        { list: 'used_clients', items: sessions.size },
        { list: 'login_clients', items: v.loginClients },
        { list: 'free_servers', items: 0 },
        { list: 'used_servers', items: pool.describe().length + pool.stats.connecting },
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
        const secret = SECRET_KEYS.has(key) || key.startsWith('jwt.jwk.');
        return {
          key,
          value: secret ? MASK : shown(value),
          default: shown(schemaAt(key.split('.'))?.default),
          changeable: liveKey(key),
        };
      });
    },
    reload: parts.reload,
    pause: () => pool.pause(),
    resume: () => pool.resume(),
    reconnect: () => pool.reconnect(),
    shutdown: parts.shutdown,
    killTenant: parts.killTenant,
    onError: (command, error) => deps.log.error({ command, err: error }, 'admin console command failed'),
  };
}
