import { performance } from 'node:perf_hooks';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * pgfence's Prometheus metrics, in a registry of their own (never prom-client's global one, so
 * several proxies in one process, as in the tests, do not collide).
 *
 * Counters and histograms are updated on the hot path through small typed methods; the labelled
 * children are made once (per tenant, per outcome) and kept, so a call does no label handling of
 * its own beyond at most one Map lookup. Gauges are never
 * updated per message: they are computed at scrape time from the callbacks in `GaugeSources`.
 *
 * Tenant label cardinality: tenant ids are operator-controlled (a static list or the registry),
 * but nothing bounds how many there are. The first `maxTenants` distinct tenants (default 1,000)
 * get their own label value; every tenant after that is counted under `tenant="(other)"`, a value
 * no tenant id can take (ids start with a letter or `_`). The set is never pruned, so a tenant
 * keeps its series for the life of the process. With the defaults that is at most
 * 1,001 × (1 statements + ~8 rejection reasons + 10 duration series + 1 pinned) series.
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
export type BackendConnectionResult = 'opened' | 'failed' | 'closed';
export type BackendResetResult = 'ok' | 'failed';
export type BackendState = 'idle' | 'active' | 'resetting' | 'connecting';

const CLIENT_RESULTS: readonly ClientConnectionResult[] = [
  'accepted',
  'auth_failed',
  'tenant_refused',
  'startup_refused',
  'backend_unavailable',
  'protocol_error',
];
const BACKEND_RESULTS: readonly BackendConnectionResult[] = ['opened', 'failed', 'closed'];
const RESET_RESULTS: readonly BackendResetResult[] = ['ok', 'failed'];
const BACKEND_STATES: readonly BackendState[] = ['idle', 'active', 'resetting', 'connecting'];

/** What the pool reports at scrape time; `BackendPool.stats` has exactly this shape. */
export type PoolSnapshot = Readonly<Record<BackendState | 'waiting', number>>;

/** Read at scrape time only. A missing source leaves its gauge without samples (or at 0 if unlabelled). */
export interface GaugeSources {
  /** Client connections open right now, in any state (startup and authentication included). */
  clients?: () => number;
  pool?: () => PoolSnapshot;
  /** Backends pinned to each tenant right now. */
  pinned?: () => Iterable<readonly [tenant: string, backends: number]>;
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

/** The per-tenant handle a client session keeps once it knows its tenant. */
export interface TenantMetrics {
  /** The label value this tenant is counted under (its id, or `(other)` beyond the cap). */
  readonly label: string;
  /** A Query or Parse from the client, judged by the guard (whether it was then forwarded or refused). */
  statement(): void;
  /** A statement the guard (or the session) refused; `reason` is a fixed code, never free text. */
  rejected(reason: string): void;
  /** One client round trip: from a Query/Sync/FunctionCall to the ReadyForQuery that answers it. */
  queryDuration(seconds: number): void;
  /** A FIFO timer for this tenant's round trips, one per session. */
  queryTimer(): QueryTimer;
  /** Totals since start, for the admin console's SHOW STATS. */
  readonly statementCount: number;
  readonly rejectedCount: number;
}

type Inc = { inc(value?: number): void };
type Observe = { observe(value: number): void };

class TenantSeries implements TenantMetrics {
  private readonly statements: Inc;
  private readonly duration: Observe;
  private readonly rejections = new Map<string, Inc>();
  statementCount = 0;
  rejectedCount = 0;

  constructor(
    readonly label: string,
    private readonly metrics: { statements: Counter<'tenant'>; rejected: Counter<'tenant' | 'reason'>; queryDuration: Histogram<'tenant'> },
  ) {
    this.statements = metrics.statements.labels(label);
    this.duration = metrics.queryDuration.labels(label);
  }

  statement(): void {
    this.statementCount++;
    this.statements.inc();
  }

  rejected(reason: string): void {
    this.rejectedCount++;
    let child = this.rejections.get(reason);
    if (child === undefined) {
      child = this.metrics.rejected.labels(this.label, reason);
      this.rejections.set(reason, child);
    }
    child.inc();
  }

  queryDuration(seconds: number): void {
    this.duration.observe(seconds);
  }

  queryTimer(): QueryTimer {
    return new QueryTimer((seconds) => this.duration.observe(seconds));
  }
}

/**
 * Times client round trips that may be pipelined: `sent()` for every message that will be
 * answered by one ReadyForQuery (Query, Sync, FunctionCall), `answered()` for every
 * ReadyForQuery; answers come back in order, so a FIFO of start times pairs them.
 */
export class QueryTimer {
  private starts: number[] = [];
  private head = 0;

  constructor(
    private readonly observe: (seconds: number) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Round trips sent and not answered yet. */
  get pending(): number {
    return this.starts.length - this.head;
  }

  sent(): void {
    this.starts.push(this.now());
  }

  answered(): void {
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
    this.observe((this.now() - started) / 1000);
  }

  /** Forgets unanswered round trips (the backend went away, or the session ended). */
  clear(): void {
    this.starts.length = 0;
    this.head = 0;
  }
}

export class Metrics {
  readonly registry = new Registry();
  private sources: GaugeSources = {};
  private readonly maxTenants: number;
  private readonly tenants = new Map<string, TenantSeries>();
  private other: TenantSeries | null = null;

  private readonly clientConnections: Counter<'result'>;
  private readonly authFailures: Counter<'reason'>;
  private readonly authThrottledCount: Counter;
  private readonly statements: Counter<'tenant'>;
  private readonly rejectedStatements: Counter<'tenant' | 'reason'>;
  private readonly backendConnections: Counter<'result'>;
  private readonly backendResets: Counter<'result'>;
  private readonly tripwires: Counter<'what'>;
  private readonly clientBytes: Counter<'direction'>;
  private readonly bytesIn: Inc;
  private readonly bytesOut: Inc;
  private readonly acquireTimeouts: Counter;
  private readonly acquireWaitSeconds: Histogram;
  private readonly queryDurationSeconds: Histogram<'tenant'>;
  private readonly clientResults: Record<ClientConnectionResult, Inc>;
  private readonly backendResults: Record<BackendConnectionResult, Inc>;
  private readonly resetResults: Record<BackendResetResult, Inc>;

  constructor(options: MetricsOptions = {}) {
    const maxTenants = options.maxTenants ?? DEFAULT_MAX_TENANTS;
    if (!Number.isInteger(maxTenants) || maxTenants < 0) throw new RangeError(`maxTenants must be an integer >= 0, got ${maxTenants}`);
    this.maxTenants = maxTenants;
    const registers = [this.registry];

    this.clientConnections = new Counter({
      name: 'pgfence_client_connections_total',
      help: 'Client connections by how their startup ended (accepted, auth_failed, tenant_refused, startup_refused, backend_unavailable, protocol_error).',
      labelNames: ['result'],
      registers,
    });
    this.authFailures = new Counter({
      name: 'pgfence_auth_failures_total',
      help: 'Refused authentications by reason: the JWT check that failed, or why the tenant was refused.',
      labelNames: ['reason'],
      registers,
    });
    this.authThrottledCount = new Counter({
      name: 'pgfence_auth_throttled_total',
      help: 'Failed logins whose error reply was held because their address kept failing (listen.authThrottle).',
      registers,
    });
    this.statements = new Counter({
      name: 'pgfence_statements_total',
      help: 'Query and Parse messages from clients judged by the guard, by tenant (refused ones included).',
      labelNames: ['tenant'],
      registers,
    });
    this.rejectedStatements = new Counter({
      name: 'pgfence_statements_rejected_total',
      help: 'Statements refused before reaching the database, by tenant and reason.',
      labelNames: ['tenant', 'reason'],
      registers,
    });
    this.backendConnections = new Counter({
      name: 'pgfence_backend_connections_total',
      help: 'Server connections opened, failed to open, and closed.',
      labelNames: ['result'],
      registers,
    });
    this.backendResets = new Counter({
      name: 'pgfence_backend_resets_total',
      help: 'DISCARD ALL resets of released backends, by result (a failed reset closes the backend).',
      labelNames: ['result'],
      registers,
    });
    this.tripwires = new Counter({
      name: 'pgfence_tripwire_total',
      help: 'Backends closed because the server reported a change to the pin (session_authorization, search_path, role).',
      labelNames: ['what'],
      registers,
    });
    this.clientBytes = new Counter({
      name: 'pgfence_client_bytes_total',
      help: 'Bytes between clients and pgfence: direction="in" from clients, "out" to clients.',
      labelNames: ['direction'],
      registers,
    });
    this.bytesIn = this.clientBytes.labels('in');
    this.bytesOut = this.clientBytes.labels('out');
    this.acquireTimeouts = new Counter({
      name: 'pgfence_acquire_timeouts_total',
      help: 'Backend acquires that gave up after pool.acquireTimeoutMs.',
      registers,
    });
    this.acquireWaitSeconds = new Histogram({
      name: 'pgfence_acquire_wait_seconds',
      help: 'Time a client waited for a backend from the pool (successful acquires).',
      buckets: ACQUIRE_BUCKETS,
      registers,
    });
    this.queryDurationSeconds = new Histogram({
      name: 'pgfence_query_duration_seconds',
      help: 'Client round trips by tenant: from a Query or Sync to the ReadyForQuery that answers it.',
      labelNames: ['tenant'],
      buckets: QUERY_BUCKETS,
      registers,
    });

    // Scrape-time gauges: computed from the sources when scraped, never updated per message.
    // Outcomes from fixed sets are exported at 0 from the start, so rate() and alerts see them.
    this.clientResults = zeroed(this.clientConnections, CLIENT_RESULTS);
    this.backendResults = zeroed(this.backendConnections, BACKEND_RESULTS);
    this.resetResults = zeroed(this.backendResets, RESET_RESULTS);

    const clients: Gauge = new Gauge({
      name: 'pgfence_clients',
      help: 'Client connections open now (startup and authentication included).',
      registers,
      collect: () => {
        const source = this.sources.clients;
        clients.set(source === undefined ? 0 : source());
      },
    });
    const backends: Gauge<'state'> = new Gauge({
      name: 'pgfence_backends',
      help: 'Backend connections by pool state.',
      labelNames: ['state'],
      registers,
      collect: () => {
        backends.reset();
        const pool = this.sources.pool?.();
        if (pool === undefined) return;
        for (const state of BACKEND_STATES) backends.set({ state }, pool[state]);
      },
    });
    const waiting: Gauge = new Gauge({
      name: 'pgfence_pool_waiting_clients',
      help: 'Clients waiting for a backend now.',
      registers,
      collect: () => {
        const pool = this.sources.pool?.();
        waiting.set(pool === undefined ? 0 : pool.waiting);
      },
    });
    const pinned: Gauge<'tenant'> = new Gauge({
      name: 'pgfence_backends_pinned',
      help: 'Backends pinned to each tenant now.',
      labelNames: ['tenant'],
      registers,
      collect: () => {
        pinned.reset();
        const source = this.sources.pinned?.();
        if (source === undefined) return;
        const byLabel = new Map<string, number>();
        for (const [tenant, count] of source) {
          const label = this.tenant(tenant).label;
          byLabel.set(label, (byLabel.get(label) ?? 0) + count);
        }
        for (const [tenant, count] of byLabel) pinned.set({ tenant }, count);
      },
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
  /** Every tenant series so far (and the overflow one), for SHOW STATS. */
  tenantTotals(): TenantMetrics[] {
    return this.other === undefined || this.other === null ? [...this.tenants.values()] : [...this.tenants.values(), this.other];
  }

  tenant(id: string): TenantMetrics {
    const known = this.tenants.get(id);
    if (known !== undefined) return known;
    if (this.tenants.size < this.maxTenants) {
      const series = new TenantSeries(id, this.tenantMetricSet());
      this.tenants.set(id, series);
      return series;
    }
    this.other ??= new TenantSeries(OTHER_TENANT, this.tenantMetricSet());
    return this.other;
  }

  clientConnection(result: ClientConnectionResult): void {
    this.clientResults[result].inc();
  }

  /** `reason`: `AuthError.reason` or `TenantRefused.reason` (fixed catalogs, never a message). */
  authFailure(reason: string): void {
    this.authFailures.labels(reason).inc();
  }

  /** A failed login held by the per-address throttle. */
  authThrottled(): void {
    this.authThrottledCount.inc();
  }

  backendConnection(result: BackendConnectionResult): void {
    this.backendResults[result].inc();
  }

  backendReset(result: BackendResetResult): void {
    this.resetResults[result].inc();
  }

  /** Bytes a client sent (in) or received (out). */
  clientBytesIn(bytes: number): void {
    this.bytesIn.inc(bytes);
  }

  clientBytesOut(bytes: number): void {
    this.bytesOut.inc(bytes);
  }

  /** `what`: which reported parameter broke the pin (`session_authorization`, `search_path`, `role`). */
  tripwire(what: string): void {
    this.tripwires.labels(what).inc();
  }

  acquireWait(seconds: number): void {
    this.acquireWaitSeconds.observe(seconds);
  }

  acquireTimeout(): void {
    this.acquireTimeouts.inc();
  }

  private tenantMetricSet(): ConstructorParameters<typeof TenantSeries>[1] {
    return { statements: this.statements, rejected: this.rejectedStatements, queryDuration: this.queryDurationSeconds };
  }
}

/** One cached child per value of the counter's single label, each exported at 0. */
function zeroed<V extends string>(counter: Counter<'result'>, values: readonly V[]): Record<V, Inc> {
  const children = {} as Record<V, Inc>;
  for (const value of values) {
    const child = counter.labels(value);
    child.inc(0);
    children[value] = child;
  }
  return children;
}
