import type { PlacedPool } from '../placement/pools.js';
import type { BackendPool, BackendView } from '../pool/pool.js';

/**
 * A pool as PgBouncer's SHOW POOLS counts it, one row per tenant: what the admin console shows
 * and what the scrape-time gauges export, computed from one snapshot by one function.
 *
 * A pool (one per backend target, and one per tenant database in use) is shared by the tenants
 * placed there, so a row is a tenant's share of it: its clients, and the backends it holds
 * (active) or that are pinned to it (idle, used, resetting). The row with tenant null holds what
 * belongs to no tenant: unpinned idle backends and backends still connecting. Summing a pool's
 * rows gives the whole pool.
 */

/** Where a client connection is, in PgBouncer's terms. */
export type ClientState = 'login' | 'idle' | 'active' | 'waiting' | 'console';

export interface PoolRow {
  /** null: the backends no tenant holds or is pinned to. */
  tenant: string | null;
  /** Clients linked to a backend or idle (PgBouncer's cl_active counts both). */
  clActive: number;
  /** Clients that sent a query and wait for a backend. */
  clWaiting: number;
  svActive: number;
  /** Held back until a CancelRequest sent for them has been delivered. */
  svBeingCanceled: number;
  svIdle: number;
  /** Idle longer than pool.healthCheckAfterIdleMs: they answer `SELECT 1` before being handed out. */
  svUsed: number;
  /** Running DISCARD ALL (resetting). */
  svTested: number;
  /** Connecting and authenticating. */
  svLogin: number;
  /** How long the tenant's oldest waiting client has waited, in ms. */
  maxWaitMs: number;
}

export interface PoolView {
  rows: PoolRow[];
  /** Clients in startup or authentication: no tenant yet. */
  loginClients: number;
  /** Admin console sessions. */
  consoleClients: number;
}

export interface PoolViewInputs {
  clients: Iterable<{ readonly tenantId: string | null; readonly clientState: ClientState }>;
  backends: readonly BackendView[];
  /** Backends connecting now. */
  connecting: number;
  waiting: Iterable<{ tenant: string; since: number }>;
  healthCheckAfterIdleMs: number;
  now: number;
}

function emptyRow(tenant: string | null): PoolRow {
  return { tenant, clActive: 0, clWaiting: 0, svActive: 0, svBeingCanceled: 0, svIdle: 0, svUsed: 0, svTested: 0, svLogin: 0, maxWaitMs: 0 };
}

/** Rows for every tenant with a client or a backend, sorted by tenant, then the shared row (always present). */
export function poolView(inputs: PoolViewInputs): PoolView {
  const rows = new Map<string, PoolRow>();
  const shared = emptyRow(null);
  const rowOf = (tenant: string | null): PoolRow => {
    if (tenant === null) return shared;
    let row = rows.get(tenant);
    if (row === undefined) rows.set(tenant, (row = emptyRow(tenant)));
    return row;
  };
  let loginClients = 0;
  let consoleClients = 0;
  for (const client of inputs.clients) {
    switch (client.clientState) {
      case 'login':
        loginClients++;
        break;
      case 'console':
        consoleClients++;
        break;
      case 'waiting':
        rowOf(client.tenantId).clWaiting++;
        break;
      case 'idle':
      case 'active':
        rowOf(client.tenantId).clActive++;
        break;
    }
  }
  for (const b of inputs.backends) {
    if (b.state === 'active') {
      const row = rowOf(b.holder ?? b.tenant);
      if (b.cancelling) row.svBeingCanceled++;
      else row.svActive++;
      continue;
    }
    const row = rowOf(b.tenant);
    if (b.cancelling) row.svBeingCanceled++;
    else if (b.state === 'resetting') row.svTested++;
    else if (b.lastUsedAt !== null && inputs.now - b.lastUsedAt.getTime() >= inputs.healthCheckAfterIdleMs) row.svUsed++;
    else row.svIdle++;
  }
  shared.svLogin = inputs.connecting;
  for (const w of inputs.waiting) {
    const row = rowOf(w.tenant);
    row.maxWaitMs = Math.max(row.maxWaitMs, inputs.now - w.since);
  }
  const sorted = [...rows.values()].sort((a, b) => ((a.tenant as string) < (b.tenant as string) ? -1 : 1));
  return { rows: [...sorted, shared], loginClients, consoleClients };
}

/** One pool's rows and its backend target: what the scrape-time gauges read. */
export interface TargetRows {
  target: string;
  rows: PoolRow[];
}

/** One pool's rows, with where the pool connects: what the admin console reads. */
export interface PlacedPoolView extends TargetRows {
  database: string;
  /** The role its backends log in as. */
  user: string;
  /** A tenant database's pool (database per tenant) rather than the target's own. */
  tenantDatabase: boolean;
  /** Draining after a reload removed or changed its target. */
  retiring: boolean;
  pool: BackendPool;
}

/** Every pool of the process, and the clients that have none yet. */
export interface PoolsView<P extends TargetRows = TargetRows> {
  pools: P[];
  loginClients: number;
  consoleClients: number;
}

/** A client session as the pools view counts it: under the pool it takes its backends from (null: none yet). */
export interface PooledClient {
  readonly tenantId: string | null;
  readonly clientState: ClientState;
  readonly pool: BackendPool | null;
}

/** Every pool now, each with the clients that take their backends from it. */
export function livePoolsView(clients: Iterable<PooledClient>, pools: readonly PlacedPool[], healthCheckAfterIdleMs: number): PoolsView<PlacedPoolView> {
  const byPool = new Map<BackendPool, PooledClient[]>(pools.map((p) => [p.pool, []]));
  let loginClients = 0;
  let consoleClients = 0;
  for (const client of clients) {
    if (client.clientState === 'login') loginClients++;
    else if (client.clientState === 'console') consoleClients++;
    else if (client.pool !== null) byPool.get(client.pool)?.push(client);
  }
  return {
    pools: pools.map((p) => ({
      target: p.target,
      database: p.database,
      user: p.spec.target.user,
      tenantDatabase: p.tenantDatabase,
      retiring: p.retiring,
      pool: p.pool,
      rows: livePoolView(byPool.get(p.pool) ?? [], p.pool, healthCheckAfterIdleMs).rows,
    })),
    loginClients,
    consoleClients,
  };
}

/** The pool view of one pool now: the client sessions that take backends from it, and its backends. */
export function livePoolView(clients: PoolViewInputs['clients'], pool: BackendPool, healthCheckAfterIdleMs: number): PoolView {
  return poolView({
    clients,
    backends: pool.describe(),
    connecting: pool.stats.connecting,
    waiting: pool.waiting(),
    healthCheckAfterIdleMs,
    now: Date.now(),
  });
}
