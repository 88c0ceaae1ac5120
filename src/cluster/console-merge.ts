import type {
  ConsoleBackend,
  ConsoleContext,
  ConsoleData,
  ConsoleDatabase,
  ConsolePool,
  ConsoleSession,
  ConsoleTarget,
  ConsoleTenant,
  ConsoleTenantStats,
} from '../admin/console.js';
import type { ShowItem } from '../admin/console-commands.js';
import type { StatTotals } from '../admin/metrics.js';
import { DEFAULT_TARGET } from '../placement/placement.js';

/**
 * The admin console of a `workers: N` instance: the worker an operator's psql landed on asks every
 * worker (through the primary) for its share of a SHOW, and merges the answers into one table, as
 * if one process held everything. Rows of clients and backends keep their per-worker ids and gain
 * the worker's index; per-tenant rows are summed.
 */

/** What one worker sends for one SHOW: the parts of its console data that the SHOW reads (plain data). */
export interface ConsoleSnapshot {
  worker: number;
  target: ConsoleTarget;
  pools?: ConsolePool[];
  clients?: ConsoleSession[];
  servers?: ConsoleBackend[];
  databases?: ConsoleDatabase[];
  tenants?: ConsoleTenant[];
  stats?: ConsoleTenantStats[];
  config?: ReturnType<ConsoleContext['config']>;
}

/** This worker's part of SHOW `item`. */
export function consoleSnapshot(item: ShowItem, ctx: ConsoleContext, worker: number): ConsoleSnapshot {
  const snapshot: ConsoleSnapshot = { worker, target: ctx.target() };
  switch (item) {
    case 'help':
    case 'version':
      break;
    case 'pools':
      snapshot.pools = ctx.pools();
      break;
    case 'clients':
      snapshot.clients = ctx.clients();
      break;
    case 'servers':
      snapshot.servers = ctx.servers();
      break;
    case 'databases':
      snapshot.databases = ctx.databases();
      break;
    case 'lists':
      // SHOW LISTS counts what the other SHOWs list, so it is computed from them.
      snapshot.pools = ctx.pools();
      snapshot.clients = ctx.clients();
      snapshot.servers = ctx.servers();
      snapshot.tenants = ctx.tenants();
      snapshot.databases = ctx.databases();
      break;
    case 'tenants':
      snapshot.tenants = ctx.tenants();
      break;
    case 'stats':
      snapshot.stats = ctx.stats();
      break;
    case 'config':
      snapshot.config = ctx.config();
      break;
  }
  return snapshot;
}

function sumBy<T>(rows: readonly T[], key: (row: T) => string, merge: (into: T, row: T) => void): T[] {
  const out = new Map<string, T>();
  for (const row of rows) {
    const known = out.get(key(row));
    if (known === undefined) out.set(key(row), structuredClone(row));
    else merge(known, row);
  }
  return [...out.values()];
}

function mergePools(rows: readonly ConsolePool[]): ConsolePool[] {
  // A row is a tenant's share of one pool: the same target, database and tenant in every worker.
  const merged = sumBy(
    rows,
    (r) => `${r.target ?? DEFAULT_TARGET}\0${r.database}\0${r.tenant ?? ''}`,
    (into, r) => {
      into.clActive += r.clActive;
      into.clWaiting += r.clWaiting;
      into.svActive += r.svActive;
      into.svBeingCanceled += r.svBeingCanceled;
      into.svIdle += r.svIdle;
      into.svUsed += r.svUsed;
      into.svTested += r.svTested;
      into.svLogin += r.svLogin;
      into.maxWaitMs = Math.max(into.maxWaitMs, r.maxWaitMs);
    },
  );
  // Pool by pool in the order the first worker listed them; in each, as poolView sorts: tenants by id, then the shared row.
  const pools = new Map<string, ConsolePool[]>();
  for (const row of merged) {
    const key = `${row.target ?? DEFAULT_TARGET}\0${row.database}`;
    pools.set(key, [...(pools.get(key) ?? []), row]);
  }
  return [...pools.values()].flatMap((rows) => {
    const tenants = rows.filter((r) => r.tenant !== null).sort((a, b) => ((a.tenant as string) < (b.tenant as string) ? -1 : 1));
    return [...tenants, ...rows.filter((r) => r.tenant === null)];
  });
}

const SOURCE_RANK: Record<ConsoleTenant['source'], number> = { config: 0, registry: 1, session: 2 };

function mergeTenants(rows: readonly ConsoleTenant[]): ConsoleTenant[] {
  return sumBy(
    rows,
    (r) => r.id,
    (into, r) => {
      into.clients += r.clients;
      into.status ??= r.status;
      if (SOURCE_RANK[r.source] < SOURCE_RANK[into.source]) into.source = r.source;
    },
  );
}

const COUNTS: ReadonlyArray<keyof StatTotals> = ['assignments', 'transactions', 'queries', 'received', 'sent', 'transactionMicros', 'queryMicros', 'waitMicros'];

/** Totals and per-second rates add up; the time averages are weighted by the rate they are per. */
function mergeStats(rows: readonly ConsoleTenantStats[]): ConsoleTenantStats[] {
  const weighted = (into: ConsoleTenantStats, r: ConsoleTenantStats, time: keyof StatTotals, rate: keyof StatTotals): number => {
    const total = into.averages[rate] + r.averages[rate];
    return total > 0 ? (into.averages[time] * into.averages[rate] + r.averages[time] * r.averages[rate]) / total : 0;
  };
  return sumBy(
    rows,
    (r) => r.tenant,
    (into, r) => {
      into.averages.transactionMicros = weighted(into, r, 'transactionMicros', 'transactions');
      into.averages.queryMicros = weighted(into, r, 'queryMicros', 'queries');
      into.averages.waitMicros = weighted(into, r, 'waitMicros', 'assignments');
      for (const k of ['assignments', 'transactions', 'queries', 'received', 'sent'] as const) into.averages[k] += r.averages[k];
      for (const k of COUNTS) into.totals[k] += r.totals[k];
      into.statements += r.statements;
      into.rejected += r.rejected;
    },
  );
}

function mergeDatabases(rows: readonly ConsoleDatabase[]): ConsoleDatabase[] {
  // pool_size and max_per_tenant come from the configuration: the instance's figures, the same in every worker.
  return sumBy(
    rows,
    // A draining pool (disabled) and its target's new one share a name.
    (r) => `${r.name}\0${r.target ?? ''}\0${r.disabled === true ? 1 : 0}`,
    (into, r) => {
      into.currentConnections += r.currentConnections;
      into.currentClientConnections += r.currentClientConnections;
      into.paused &&= r.paused;
    },
  );
}

/** SHOW LISTS from the merged tables, counted as a single process counts them. */
function listsOf(databases: number, pools: readonly ConsolePool[], clients: readonly ConsoleSession[], servers: readonly ConsoleBackend[], tenants: readonly ConsoleTenant[]): Array<{ list: string; items: number }> {
  const users = new Set(clients.filter((c) => c.state !== 'login').map((c) => c.user ?? ''));
  const connecting = pools.reduce((n, p) => n + p.svLogin, 0);
  return [
    { list: 'databases', items: databases },
    { list: 'users', items: users.size },
    { list: 'peers', items: 0 },
    { list: 'pools', items: pools.length },
    { list: 'peer_pools', items: 0 },
    { list: 'free_clients', items: 0 },
    { list: 'used_clients', items: clients.length },
    { list: 'login_clients', items: clients.filter((c) => c.state === 'login').length },
    { list: 'free_servers', items: 0 },
    { list: 'used_servers', items: servers.length + connecting },
    { list: 'dns_names', items: 0 },
    { list: 'dns_zones', items: 0 },
    { list: 'dns_queries', items: 0 },
    { list: 'dns_pending', items: 0 },
    { list: 'tenants', items: tenants.length },
  ];
}

/** One console's data from every worker's snapshot (at least one: the asking worker's own). */
export function mergeSnapshots(snapshots: readonly ConsoleSnapshot[]): ConsoleData {
  const sorted = [...snapshots].sort((a, b) => a.worker - b.worker);
  const all = <T>(read: (s: ConsoleSnapshot) => T[] | undefined): T[] => sorted.flatMap((s) => read(s) ?? []);
  const pools = mergePools(all((s) => s.pools));
  const clients = sorted.flatMap((s) => (s.clients ?? []).map((c) => ({ ...c, worker: s.worker })));
  const servers = sorted.flatMap((s) => (s.servers ?? []).map((b) => ({ ...b, worker: s.worker })));
  const tenants = mergeTenants(all((s) => s.tenants));
  const first = sorted[0];
  if (first === undefined) throw new Error('no worker answered');
  return {
    clustered: true,
    target: () => first.target,
    pools: () => pools,
    clients: () => clients,
    servers: () => servers,
    databases: () => mergeDatabases(all((s) => s.databases)),
    lists: () => listsOf(mergeDatabases(all((s) => s.databases)).length, pools, clients, servers, tenants),
    tenants: () => tenants,
    stats: () => mergeStats(all((s) => s.stats)),
    config: () => first.config ?? [],
  };
}
