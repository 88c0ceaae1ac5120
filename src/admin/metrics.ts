import { performance } from 'node:perf_hooks';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { DEFAULT_TARGET } from '../placement/placement.js';
import type { PoolsView } from './pool-view.js';
import { bump, Buckets, publishedCounter, publishedGauge, publishedHistogram, type Sample } from './published.js';

/**
 * pgfence's Prometheus metrics, in a registry of their own (never prom-client's global one, so
 * several proxies in one process, as in the tests, do not collide).
 *
 * Nothing here touches prom-client on the hot path. Events are counted in plain number fields:
 * per tenant in a `TenantSeries` that each session holds, per process in fields of `Metrics`. Every
 * metric is copied from those fields, or computed from the `GaugeSources`, when scraped
 * (prom-client `collect` callbacks; see published.ts). Counters and gauges sum across processes,
 * `pgfence_pools_client_maxwait_seconds` takes the maximum, so prom-client's AggregatorRegistry
 * can merge workers.
 *
 * The `pgfence_pools_*` and `pgfence_stats_*` series are pgbouncer_exporter's `pgbouncer_pools_*`
 * and `pgbouncer_stats_*` with the `database` label replaced by `tenant`, so a PgBouncer dashboard
 * carries over by renaming. The pool series (the `pgfence_pools_*` gauges and the backend
 * connection, reset, acquire timeout and wait series) also carry the backend `target` (src/placement);
 * a tenant database's pool counts under its target. Targets come from the configuration, so that
 * label is bounded; a target removed by a reload keeps its counters.
 *
 * Tenant label cardinality: tenant ids are operator-controlled (a static list or the registry),
 * but nothing bounds how many there are. The first `maxTenants` distinct tenants (default 1,000)
 * get their own label value; every tenant after that is counted under `tenant="(other)"`, a value
 * no tenant id can take (ids start with a letter or `_`). A tenant keeps its label for the life of
 * the process, so every per-tenant counter only ever grows (a "top N" that changed over time
 * would make counters jump down). With the defaults that is at most 1,001 label values on each of
 * the 12 per-tenant families (plus ~8 rejection reasons and 9 histogram series per tenant).
 */

/** Label value that stands for every tenant beyond the cap. Not a valid tenant id, so it never collides. */
export const OTHER_TENANT = '(other)';
export const DEFAULT_MAX_TENANTS = 1_000;

/**
 * How a client connection's startup ended. Each client connection counts once, when it is accepted
 * (AuthenticationOk sent) or refused; CancelRequest connections and clients that hang up during
 * startup are not counted.
 */
export type ClientConnectionResult =
  | 'accepted'
  | 'auth_failed'
  | 'tenant_refused'
  | 'startup_refused'
  | 'backend_unavailable'
  | 'protocol_error';
/** Backend connection events: a connect attempt that `opened` or `failed`, and a connection `closed`. */
export type BackendConnectionEvent = 'opened' | 'failed' | 'closed';
export type BackendResetResult = 'ok' | 'failed';

const CLIENT_RESULTS: readonly ClientConnectionResult[] = [
  'accepted',
  'auth_failed',
  'tenant_refused',
  'startup_refused',
  'backend_unavailable',
  'protocol_error',
];

/** Read at scrape time only. A missing source leaves its gauges without samples (0 for the unlabelled ones). */
export interface GaugeSources {
  /** Every pool in PgBouncer's terms, with its target (see pool-view.ts). */
  pools?: () => PoolsView;
}

export interface MetricsOptions {
  /** Distinct tenant label values before `tenant="(other)"`; default 1,000. */
  maxTenants?: number;
  /** Also export prom-client's process_* and nodejs_* metrics; default true. */
  processMetrics?: boolean;
}

/** Bucket upper bounds in seconds; the pool waits at most `pool.acquireTimeoutMs` (default 10 s). */
const ACQUIRE_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10];
/** Few buckets on purpose: this histogram is per tenant. */
const QUERY_BUCKETS = [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10];

/** Bytes a client sent and received; a session counts into its tenant's, or the unattributed one before login. */
export interface Traffic {
  received: number;
  sent: number;
}

/** Running totals as PgBouncer's SHOW STATS names them (times in µs). */
export interface StatTotals {
  assignments: number;
  transactions: number;
  queries: number;
  received: number;
  sent: number;
  transactionMicros: number;
  queryMicros: number;
  waitMicros: number;
}

/** The per-tenant handle a client session keeps once it knows its tenant. */
export interface TenantMetrics extends Traffic {
  /** The label value this tenant is counted under (its id, or `(other)` beyond the cap). */
  readonly label: string;
  /** A Query or Parse from the client, judged by the guard (whether it was then forwarded or refused). */
  statement(): void;
  /** A statement the guard (or the session) refused; `reason` is a fixed code, never free text. */
  rejected(reason: string): void;
  /** One client round trip of `seconds`, outside any QueryTimer (tests, tools). */
  queryDuration(seconds: number): void;
  /** A FIFO timer for this tenant's round trips, one per session. */
  queryTimer(): QueryTimer;
  /** Totals since start, for the admin console's SHOW STATS. */
  readonly statementCount: number;
  readonly rejectedCount: number;
  totals(): StatTotals;
}

const READY_IDLE = 0x49; // 'I': ReadyForQuery outside a transaction block

/** Everything counted for one tenant label: plain fields, incremented in place. */
class TenantSeries implements TenantMetrics, RoundTripSink {
  statementCount = 0;
  rejectedCount = 0;
  readonly rejections = new Map<string, number>();
  received = 0;
  sent = 0;
  assignments = 0;
  waitMicros = 0;
  transactions = 0;
  queries = 0;
  transactionMicros = 0;
  queryMicros = 0;
  readonly durations = new Buckets(QUERY_BUCKETS);

  constructor(readonly label: string) {}

  statement(): void {
    this.statementCount++;
  }

  rejected(reason: string): void {
    this.rejectedCount++;
    bump(this.rejections, reason);
  }

  queryDuration(seconds: number): void {
    this.roundTrip(seconds * 1e6, -1);
  }

  roundTrip(micros: number, transactionMicros: number): void {
    this.queries++;
    this.queryMicros += micros;
    this.durations.observe(micros / 1e6);
    if (transactionMicros >= 0) {
      this.transactions++;
      this.transactionMicros += transactionMicros;
    }
  }

  queryTimer(): QueryTimer {
    return new QueryTimer(this);
  }

  totals(): StatTotals {
    return {
      assignments: this.assignments,
      transactions: this.transactions,
      queries: this.queries,
      received: this.received,
      sent: this.sent,
      transactionMicros: this.transactionMicros,
      queryMicros: this.queryMicros,
      waitMicros: this.waitMicros,
    };
  }
}

/**
 * The events of one backend target's pools, in plain fields: what a BackendPool reports (server
 * connections, resets, acquire timeouts) and the waits of its acquires. Published when scraped.
 */
export class TargetSeries {
  opened = 0;
  failed = 0;
  closed = 0;
  resetsOk = 0;
  resetsFailed = 0;
  acquireTimeouts = 0;
  readonly acquireWaits = new Buckets(ACQUIRE_BUCKETS);

  constructor(
    readonly target: string,
    private readonly tenantSeries: (id: string) => TenantSeries,
  ) {}

  backendConnection(event: BackendConnectionEvent): void {
    switch (event) {
      case 'opened':
        this.opened++;
        return;
      case 'failed':
        this.failed++;
        return;
      case 'closed':
        this.closed++;
        return;
    }
  }

  backendReset(result: BackendResetResult): void {
    if (result === 'ok') this.resetsOk++;
    else this.resetsFailed++;
  }

  acquireTimeout(): void {
    this.acquireTimeouts++;
  }

  /** A backend handed to a client of `tenant` after `seconds` of waiting (0 when one was idle). */
  acquireWait(seconds: number, tenant?: string): void {
    this.acquireWaits.observe(seconds);
    if (tenant === undefined) return;
    const series = this.tenantSeries(tenant);
    series.assignments++;
    series.waitMicros += seconds * 1e6;
  }
}

/** Where a QueryTimer reports each answered round trip (µs), and the transaction it ended (µs; -1: none ended). */
export interface RoundTripSink {
  roundTrip(micros: number, transactionMicros: number): void;
}

/**
 * Times client round trips that may be pipelined: `sent()` for every message that will be
 * answered by one ReadyForQuery (Query, Sync, FunctionCall), `answered(status)` for every
 * ReadyForQuery; answers come back in order, so a FIFO of start times pairs them. A transaction
 * (PgBouncer's "xact": an autocommit statement counts as one) runs from the start of its first
 * round trip to the ReadyForQuery that reports status `I`.
 */
const performanceNow = (): number => performance.now();

export class QueryTimer {
  private starts: number[] = [];
  private head = 0;
  /** Start of the open transaction's first round trip; -1 when none is open. */
  private transactionStart = -1;

  private readonly sink: RoundTripSink;

  /** `sink`: a tenant's series, or a function told each round trip's seconds (tests, benchmarks). */
  constructor(
    sink: RoundTripSink | ((seconds: number) => void),
    private readonly now: () => number = performanceNow,
  ) {
    this.sink = typeof sink === 'function' ? { roundTrip: (micros) => sink(micros / 1e6) } : sink;
  }

  /** Round trips sent and not answered yet. */
  get pending(): number {
    return this.starts.length - this.head;
  }

  sent(): void {
    this.starts.push(this.now());
  }

  /** `status`: the ReadyForQuery's transaction status byte (`I`, `T`, `E`); without it, a transaction ends here. */
  answered(status: number = READY_IDLE): void {
    if (this.head >= this.starts.length) return;
    const started = this.starts[this.head++] as number;
    if (this.head === this.starts.length) {
      this.starts.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.starts.length) {
      // A client that never lets the pipeline drain: drop the answered prefix now and then.
      this.starts = this.starts.slice(this.head);
      this.head = 0;
    }
    const now = this.now();
    if (this.transactionStart < 0) this.transactionStart = started;
    let transactionMicros = -1;
    if (status === READY_IDLE) {
      transactionMicros = (now - this.transactionStart) * 1000;
      this.transactionStart = -1;
    }
    this.sink.roundTrip((now - started) * 1000, transactionMicros);
  }

  /** Forgets unanswered round trips (the backend went away, or the session ended). */
  clear(): void {
    this.starts.length = 0;
    this.head = 0;
    this.transactionStart = -1;
  }
}

/** A previous reading of every tenant's totals, for PgBouncer's per-period averages. */
export interface StatsPeriod {
  /** performance.now() ms of the reading. */
  at: number;
  totals: ReadonlyMap<string, StatTotals>;
}

export class Metrics {
  readonly registry = new Registry();
  private sources: GaugeSources = {};
  private readonly maxTenants: number;
  private readonly tenants = new Map<string, TenantSeries>();
  private other: TenantSeries | null = null;
  private period: StatsPeriod | null = null;

  // Plain counters; published when scraped.
  private readonly clientResults = new Map<string, number>(CLIENT_RESULTS.map((r) => [r, 0]));
  private readonly authFailures = new Map<string, number>();
  private readonly tripwires = new Map<string, number>();
  private readonly cancelRoutes = new Map<string, number>();
  /** Pool events by backend target; `default` from the start, so its fixed sets export zeros. */
  private readonly targets = new Map<string, TargetSeries>();
  private authThrottledCount = 0;
  /** Bytes of connections that have no tenant: startup, authentication, refusals, the admin console. */
  readonly unattributed: Traffic = { received: 0, sent: 0 };

  constructor(options: MetricsOptions = {}) {
    const maxTenants = options.maxTenants ?? DEFAULT_MAX_TENANTS;
    if (!Number.isInteger(maxTenants) || maxTenants < 0) throw new RangeError(`maxTenants must be an integer >= 0, got ${maxTenants}`);
    this.maxTenants = maxTenants;
    const registry = this.registry;
    const series = (): TenantSeries[] => this.tenantSeries();
    const perTenant = (read: (t: TenantSeries) => number) => (): Iterable<Sample<'tenant'>> => series().map((t) => [{ tenant: t.label }, read(t)] as const);
    const labelled = <L extends string>(name: L, map: ReadonlyMap<string, number>) => (): Iterable<Sample<L>> =>
      [...map].map(([value, n]) => [{ [name]: value } as Record<L, string>, n] as const);
    const one = (read: () => number) => (): Iterable<Sample<never>> => [[{}, read()]];
    this.target(DEFAULT_TARGET);
    const targets = (): TargetSeries[] => [...this.targets.values()];
    const perTarget = (read: (t: TargetSeries) => number) => (): Iterable<Sample<'target'>> => targets().map((t) => [{ target: t.target }, read(t)] as const);

    // ---- clients ----------------------------------------------------------------------------
    publishedCounter({
      name: 'pgfence_client_connections_total',
      help: 'Client connections by how their startup ended (accepted, auth_failed, tenant_refused, startup_refused, backend_unavailable, protocol_error).',
      labelNames: ['result'],
      registry,
      read: labelled('result', this.clientResults),
    });
    publishedCounter({
      name: 'pgfence_auth_failures_total',
      help: 'Refused authentications by reason: the JWT check that failed, or why the tenant was refused.',
      labelNames: ['reason'],
      registry,
      read: labelled('reason', this.authFailures),
    });
    publishedCounter({
      name: 'pgfence_statements_total',
      help: 'Query and Parse messages from clients judged by the guard, by tenant (refused ones included).',
      labelNames: ['tenant'],
      registry,
      read: perTenant((t) => t.statementCount),
    });
    publishedCounter({
      name: 'pgfence_statements_rejected_total',
      help: 'Statements refused before reaching the database, by tenant and reason.',
      labelNames: ['tenant', 'reason'],
      registry,
      read: () => series().flatMap((t) => [...t.rejections].map(([reason, n]) => [{ tenant: t.label, reason }, n] as const)),
    });
    publishedCounter({
      name: 'pgfence_tripwires_total',
      help: 'Backends closed because the server reported a change to the pin (session_authorization, search_path, role).',
      labelNames: ['what'],
      registry,
      read: labelled('what', this.tripwires),
    });

    publishedCounter({
      name: 'pgfence_cancel_requests_total',
      help: 'CancelRequests received, by route: local (matched a session here), miss (no such session), worker or peer (passed on to the owner), unroutable.',
      labelNames: ['route'],
      registry,
      read: labelled('route', this.cancelRoutes),
    });

    // ---- backends ---------------------------------------------------------------------------
    publishedCounter({
      name: 'pgfence_backend_connection_attempts_total',
      help: 'Attempts to open a server connection, by result (opened, failed) and backend target.',
      labelNames: ['result', 'target'],
      registry,
      read: () =>
        targets().flatMap((t) => [
          [{ result: 'opened', target: t.target }, t.opened] as const,
          [{ result: 'failed', target: t.target }, t.failed] as const,
        ]),
    });
    publishedCounter({
      name: 'pgfence_backend_connections_closed_total',
      help: 'Server connections that ended, whoever ended them, by backend target.',
      labelNames: ['target'],
      registry,
      read: perTarget((t) => t.closed),
    });
    publishedCounter({
      name: 'pgfence_backend_resets_total',
      help: 'DISCARD ALL resets of released backends, by result (a failed reset closes the backend) and backend target.',
      labelNames: ['result', 'target'],
      registry,
      read: () =>
        targets().flatMap((t) => [
          [{ result: 'ok', target: t.target }, t.resetsOk] as const,
          [{ result: 'failed', target: t.target }, t.resetsFailed] as const,
        ]),
    });
    publishedCounter({
      name: 'pgfence_auth_throttled_total',
      help: 'Failed logins whose error reply was held because their address kept failing (listen.authThrottle).',
      registry,
      read: one(() => this.authThrottledCount),
    });
    publishedCounter({
      name: 'pgfence_acquire_timeouts_total',
      help: 'Backend acquires that gave up after pool.acquireTimeoutMs, by backend target.',
      labelNames: ['target'],
      registry,
      read: perTarget((t) => t.acquireTimeouts),
    });
    publishedHistogram({
      name: 'pgfence_acquire_wait_seconds',
      help: 'Time a client waited for a backend from the pool (successful acquires), by backend target.',
      labelNames: ['target'],
      buckets: ACQUIRE_BUCKETS,
      registry,
      read: () => targets().map((t) => [{ target: t.target }, t.acquireWaits] as const),
    });
    publishedHistogram({
      name: 'pgfence_query_duration_seconds',
      help: 'Client round trips by tenant: from a Query or Sync to the ReadyForQuery that answers it.',
      labelNames: ['tenant'],
      buckets: QUERY_BUCKETS,
      registry,
      read: () => series().map((t) => [{ tenant: t.label }, t.durations] as const),
    });

    // ---- pgbouncer_exporter's stats, by tenant -----------------------------------------------
    publishedCounter({
      name: 'pgfence_stats_sql_transactions_pooled_total',
      help: 'Transactions by tenant (an autocommit statement is one): ReadyForQuery with status idle (PgBouncer total_xact_count).',
      labelNames: ['tenant'],
      registry,
      read: perTenant((t) => t.transactions),
    });
    publishedCounter({
      name: 'pgfence_stats_queries_pooled_total',
      help: 'Client round trips by tenant: Query, Sync or FunctionCall answered by ReadyForQuery (PgBouncer total_query_count).',
      labelNames: ['tenant'],
      registry,
      read: perTenant((t) => t.queries),
    });
    publishedCounter({
      name: 'pgfence_stats_queries_duration_seconds_total',
      help: 'Time spent in client round trips, by tenant (PgBouncer total_query_time).',
      labelNames: ['tenant'],
      registry,
      read: perTenant((t) => t.queryMicros / 1e6),
    });
    publishedCounter({
      name: 'pgfence_stats_sql_transactions_duration_seconds_total',
      help: 'Time spent in transactions, from their first round trip to the idle ReadyForQuery, by tenant (PgBouncer total_xact_time).',
      labelNames: ['tenant'],
      registry,
      read: perTenant((t) => t.transactionMicros / 1e6),
    });
    publishedCounter({
      name: 'pgfence_stats_client_wait_seconds_total',
      help: 'Time clients waited for a backend, by tenant (PgBouncer total_wait_time).',
      labelNames: ['tenant'],
      registry,
      read: perTenant((t) => t.waitMicros / 1e6),
    });
    publishedCounter({
      name: 'pgfence_stats_server_assignments_total',
      help: 'Backends handed to a client, by tenant (PgBouncer total_server_assignment_count).',
      labelNames: ['tenant'],
      registry,
      read: perTenant((t) => t.assignments),
    });
    publishedCounter({
      name: 'pgfence_stats_received_bytes_total',
      help: 'Bytes received from clients, all connections (PgBouncer total_received).',
      registry,
      read: one(() => this.traffic().received),
    });
    publishedCounter({
      name: 'pgfence_stats_sent_bytes_total',
      help: 'Bytes sent to clients, all connections (PgBouncer total_sent).',
      registry,
      read: one(() => this.traffic().sent),
    });

    // ---- pgbouncer_exporter's pools: scrape-time gauges, by target ---------------------------
    const pools = (): PoolsView | undefined => this.sources.pools?.();
    type Row = PoolsView['pools'][number]['rows'][number];
    /** Summed by tenant label and target (a target's tenant databases' pools add into it). */
    const perRow = (read: (row: Row) => number) => (): Iterable<Sample<'tenant' | 'target'>> => {
      const byLabels = new Map<string, { tenant: string; target: string; n: number }>();
      for (const pool of pools()?.pools ?? []) {
        for (const row of pool.rows) {
          if (row.tenant === null) continue;
          const tenant = this.tenant(row.tenant).label;
          const key = `${pool.target}\0${tenant}`;
          const known = byLabels.get(key);
          if (known === undefined) byLabels.set(key, { tenant, target: pool.target, n: read(row) });
          else known.n += read(row);
        }
      }
      return [...byLabels.values()].map(({ tenant, target, n }) => [{ tenant, target }, n] as const);
    };
    /** Folded over every row of a target's pools: one sample per target in the view. */
    const byTarget = (read: (row: Row) => number, fold: (a: number, b: number) => number = (a, b) => a + b) => (): Iterable<Sample<'target'>> => {
      const out = new Map<string, number>();
      for (const pool of pools()?.pools ?? []) {
        let n = out.get(pool.target) ?? 0;
        for (const row of pool.rows) n = fold(n, read(row));
        out.set(pool.target, n);
      }
      return [...out].map(([target, n]) => [{ target }, n] as const);
    };
    publishedGauge({
      name: 'pgfence_pools_client_active_connections',
      help: 'Client sessions by tenant and target that hold a backend or are idle (PgBouncer cl_active); admin console sessions not included.',
      labelNames: ['tenant', 'target'],
      registry,
      read: perRow((r) => r.clActive),
    });
    publishedGauge({
      name: 'pgfence_pools_client_waiting_connections',
      help: 'Client sessions by tenant and target waiting for a backend (PgBouncer cl_waiting).',
      labelNames: ['tenant', 'target'],
      registry,
      read: perRow((r) => r.clWaiting),
    });
    publishedGauge({
      name: 'pgfence_pools_client_login_connections',
      help: 'Client connections in startup or authentication (no tenant or target yet).',
      registry,
      read: one(() => pools()?.loginClients ?? 0),
    });
    publishedGauge({
      name: 'pgfence_pools_client_maxwait_seconds',
      help: 'How long the oldest client waiting for a backend of the target has waited (PgBouncer maxwait); 0 when none waits.',
      labelNames: ['target'],
      registry,
      aggregator: 'max',
      read: byTarget((r) => r.maxWaitMs / 1000, Math.max),
    });
    publishedGauge({
      name: 'pgfence_pools_server_active_connections',
      help: 'Backends of the target held by a client (PgBouncer sv_active), including those waiting for a cancel to be delivered.',
      labelNames: ['target'],
      registry,
      read: byTarget((r) => r.svActive + r.svBeingCanceled),
    });
    publishedGauge({
      name: 'pgfence_pools_server_idle_connections',
      help: 'Idle backends of the target ready to hand out (PgBouncer sv_idle).',
      labelNames: ['target'],
      registry,
      read: byTarget((r) => r.svIdle),
    });
    publishedGauge({
      name: 'pgfence_pools_server_used_connections',
      help: 'Idle backends of the target past pool.healthCheckAfterIdleMs, checked with SELECT 1 before use (PgBouncer sv_used).',
      labelNames: ['target'],
      registry,
      read: byTarget((r) => r.svUsed),
    });
    publishedGauge({
      name: 'pgfence_pools_server_testing_connections',
      help: 'Backends of the target running DISCARD ALL before reuse (PgBouncer sv_tested).',
      labelNames: ['target'],
      registry,
      read: byTarget((r) => r.svTested),
    });
    publishedGauge({
      name: 'pgfence_pools_server_login_connections',
      help: 'Backends of the target connecting and authenticating (PgBouncer sv_login).',
      labelNames: ['target'],
      registry,
      read: byTarget((r) => r.svLogin),
    });
    publishedGauge({
      name: 'pgfence_pools_server_pinned_connections',
      help: 'Backends of the target held by or pinned to each tenant now (active, idle, used or resetting).',
      labelNames: ['tenant', 'target'],
      registry,
      read: perRow((r) => r.svActive + r.svBeingCanceled + r.svIdle + r.svUsed + r.svTested),
    });

    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Where the scrape-time gauges read from; call again to replace them. */
  setSources(sources: GaugeSources): void {
    this.sources = { ...sources };
  }

  /** The Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The per-tenant handle; keep it for the session rather than calling this per message. */
  tenant(id: string): TenantMetrics & Traffic {
    return this.series(id);
  }

  /** Every tenant series so far (and the overflow one), for SHOW STATS. */
  tenantTotals(): TenantMetrics[] {
    return this.tenantSeries();
  }

  /** The totals as of the start of the current stats period (see rollStatsPeriod); null before the first. */
  get statsPeriod(): StatsPeriod | null {
    return this.period;
  }

  /** Starts a new stats period: SHOW STATS's averages compare the totals now with this reading. */
  rollStatsPeriod(at = performance.now()): void {
    this.period = { at, totals: new Map(this.tenantSeries().map((t) => [t.label, t.totals()])) };
  }

  clientConnection(result: ClientConnectionResult): void {
    bump(this.clientResults, result);
  }

  /** `reason`: `AuthError.reason` or `TenantRefused.reason` (fixed catalogs, never a message). */
  authFailure(reason: string): void {
    bump(this.authFailures, reason);
  }

  /** The pool events of backend target `name`: each pool keeps the handle (created once per target). */
  target(name: string): TargetSeries {
    let series = this.targets.get(name);
    if (series === undefined) {
      series = new TargetSeries(name, (id) => this.series(id));
      this.targets.set(name, series);
    }
    return series;
  }

  /** A server connection event of the target `default`; a pool reports through its `target(name)` handle. */
  backendConnection(event: BackendConnectionEvent): void {
    this.target(DEFAULT_TARGET).backendConnection(event);
  }

  backendReset(result: BackendResetResult): void {
    this.target(DEFAULT_TARGET).backendReset(result);
  }

  /** Bytes a connection with no tenant sent (in) or received (out); sessions count into their Traffic directly. */
  clientBytesIn(bytes: number): void {
    this.unattributed.received += bytes;
  }

  clientBytesOut(bytes: number): void {
    this.unattributed.sent += bytes;
  }

  /** `what`: which reported parameter broke the pin (`session_authorization`, `search_path`, `role`). */
  tripwire(what: string): void {
    bump(this.tripwires, what);
  }

  /** `route`: where a CancelRequest went (see CancelRoute in frontend/cancel-registry.ts). */
  cancelRequest(route: string): void {
    bump(this.cancelRoutes, route);
  }

  /** A backend of the target `default` handed to a client of `tenant` after `seconds` of waiting (0 when one was idle). */
  acquireWait(seconds: number, tenant?: string): void {
    this.target(DEFAULT_TARGET).acquireWait(seconds, tenant);
  }

  /** A failed login held by the per-address throttle. */
  authThrottled(): void {
    this.authThrottledCount++;
  }

  acquireTimeout(): void {
    this.target(DEFAULT_TARGET).acquireTimeout();
  }

  /** Bytes of every connection, tenant or not. */
  private traffic(): Traffic {
    let received = this.unattributed.received;
    let sent = this.unattributed.sent;
    for (const t of this.tenantSeries()) {
      received += t.received;
      sent += t.sent;
    }
    return { received, sent };
  }

  private tenantSeries(): TenantSeries[] {
    return this.other === null ? [...this.tenants.values()] : [...this.tenants.values(), this.other];
  }

  private series(id: string): TenantSeries {
    const known = this.tenants.get(id);
    if (known !== undefined) return known;
    if (this.tenants.size < this.maxTenants) {
      const series = new TenantSeries(id);
      this.tenants.set(id, series);
      return series;
    }
    this.other ??= new TenantSeries(OTHER_TENANT);
    return this.other;
  }
}
