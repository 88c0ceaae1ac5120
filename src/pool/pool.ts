import type { Logger } from 'pino';
import type { Metrics } from '../admin/index.js';
import { BackendConnection, type BackendOptions, type BackendTarget } from '../backend/connection.js';
import { type Waiter, WaitQueue } from './wait-queue.js';

type PoolMetrics = Pick<Metrics, 'acquireTimeout' | 'backendConnection' | 'backendReset'>;

export interface PoolOptions extends BackendOptions {
  size: number;
  acquireTimeoutMs: number;
  resetTimeoutMs: number;
  /** Most backends one tenant may hold at once; 0 = no cap. */
  maxPerTenant: number;
  /** Idle backends older than this are closed; 0 = never. */
  idleTimeoutMs: number;
  /** Backends older than this are closed when they come back; 0 = never. */
  maxLifetimeMs: number;
  /** A backend idle longer than this answers `SELECT 1` before it is handed out. */
  healthCheckAfterIdleMs: number;
}

/** How long the longest waiter may be passed over for same-tenant waiters (see serveSameTenantWaiters). */
const AFFINITY_WINDOW_MS = 20;
/** How far down the wait queue a same-tenant waiter is looked for. */
const AFFINITY_LOOKAHEAD = 64;

export class PoolTimeoutError extends Error {
  constructor(readonly waitedMs: number) {
    super(`no backend available within ${waitedMs} ms`);
    this.name = 'PoolTimeoutError';
  }
}

export class BackendUnavailableError extends Error {
  constructor(override readonly cause: Error) {
    super(`could not connect to the backend: ${cause.message}`);
    this.name = 'BackendUnavailableError';
  }
}

export interface PoolStats {
  idle: number;
  active: number;
  resetting: number;
  connecting: number;
  waiting: number;
}

export interface ReleaseOptions {
  /** The holder saw the backend idle and finished with it; otherwise it is closed. */
  reusable: boolean;
  /** Run DISCARD ALL before anyone gets it again (session mode, dirty state, reset: always). */
  reset: boolean;
  /**
   * With reset: pin the clean session again for the holder's tenant and settings in the same
   * round trip (DISCARD ALL and the pin in one write), so that the tenant's next client finds it
   * ready; another tenant's client resets it as usual.
   */
  repin?: RepinSpec;
}

export interface RepinSpec {
  tenant: string;
  settingsKey: string;
  sql: string;
}

type Place = 'idle' | 'active' | 'resetting';

/** The pool's one record of a backend: where it is, who holds it, and its times. */
interface PooledBackend {
  readonly backend: BackendConnection;
  place: Place;
  /** Tenant counted against maxPerTenant while it is active. */
  holder: string | null;
  readonly born: number;
  idleSince: number;
  /** The pool's generation when it was opened: older ones close on release (RECONNECT). */
  readonly generation: number;
}

/** What the admin console and the scrape-time gauges see of one backend. */
export interface BackendView {
  id: number;
  state: Place;
  /** Tenant whose pin is in force; null when unpinned. */
  tenant: string | null;
  /** Tenant holding it now (active only). */
  holder: string | null;
  dirty: boolean;
  createdAt: Date;
  lastUsedAt: Date | null;
  /** A CancelRequest for it is on its way: it serves no one until delivered. */
  cancelling: boolean;
  /** RECONNECT was issued after it opened: it closes when released (or now, when idle). */
  closeNeeded: boolean;
  /** Server process id from BackendKeyData. */
  processId: number;
  /** Statements pgfence keeps prepared on it. */
  preparedStatements: number;
}

/**
 * Backend connections to one target, shared by all tenants. Each backend has one record, in
 * exactly one place (idle, active, resetting), moved only by `move`. Acquire prefers an idle
 * backend already pinned to the same tenant (no reset needed); a backend goes back to idle only
 * when its holder saw it idle, and after DISCARD ALL whenever its session state is not known to
 * be clean. The backend itself says what it holds (pin, dirt, statements); the pool asks it.
 */
export class BackendPool {
  private readonly records = new Map<BackendConnection, PooledBackend>();
  /** Idle records, least recently used first. */
  private readonly idle: PooledBackend[] = [];
  private activeCount = 0;
  private resettingCount = 0;
  private readonly waiters = new WaitQueue();
  private readonly perTenant = new Map<string, number>();
  private connecting = 0;
  private closing = false;
  private paused = false;
  /** Resolved when no backend is in use (pause). */
  private quiet: Array<() => void> = [];
  private readonly janitor: NodeJS.Timeout;
  /** Observers for metrics: called with the wait in seconds of each successful acquire. */
  onAcquired: ((waitSeconds: number, tenant: string) => void) | null = null;
  /** Bumped by reconnect(): backends of an older generation are closed instead of reused. */
  private generation = 0;
  /** Set by retire(): called once the pool holds nothing (then it is closed). */
  private onDrained: (() => void) | null = null;

  constructor(
    private readonly target: BackendTarget,
    private options: PoolOptions,
    private readonly log: Logger,
    private readonly metrics: PoolMetrics | null = null,
  ) {
    this.janitor = setInterval(() => this.sweep(), 1_000);
    this.janitor.unref();
  }

  get stats(): PoolStats {
    return {
      idle: this.idle.length,
      active: this.activeCount,
      resetting: this.resettingCount,
      connecting: this.connecting,
      waiting: this.waiters.size,
    };
  }

  private get total(): number {
    return this.records.size + this.connecting;
  }

  /** A backend for `tenant`; the caller pins it unless the backend already holds the pin. */
  acquire(tenant: string): Promise<BackendConnection> {
    if (this.closing) return Promise.reject(new Error('pool is closing'));
    const since = Date.now();
    if (!this.paused && this.waiters.size === 0 && this.underCap(tenant)) {
      const idle = this.takeIdle(tenant);
      if (idle !== undefined) return this.checked(idle, tenant, since);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        tenant,
        since,
        resolve,
        reject,
        prev: null,
        next: null,
        queued: false,
        timer: setTimeout(() => {
          if (!this.waiters.remove(waiter)) return;
          this.metrics?.acquireTimeout();
          reject(new PoolTimeoutError(this.options.acquireTimeoutMs));
          this.closeIfDrained();
        }, this.options.acquireTimeoutMs),
      };
      this.waiters.push(waiter);
      this.serveWaiters();
    });
  }

  /**
   * Synchronously takes an idle backend that `suits` the caller (pinned to its tenant, nothing
   * left behind) when one is there and no one is waiting; null otherwise (then use acquire).
   */
  tryAcquirePinned(tenant: string, suits: (backend: BackendConnection) => boolean): BackendConnection | null {
    if (this.paused || this.closing || this.waiters.size > 0 || !this.underCap(tenant)) return null;
    const now = Date.now();
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const record = this.idle[i] as PooledBackend;
      if (!suits(record.backend) || now - record.backend.lastUsed >= this.options.healthCheckAfterIdleMs) continue;
      this.handOut(record, tenant, 0);
      return record.backend;
    }
    return null;
  }

  /**
   * Gives a backend back. Releasing a backend that is not active is a bug and throws: there is
   * one release path, and a backend can only be in one place.
   */
  release(backend: BackendConnection, opts: ReleaseOptions): void {
    const record = this.records.get(backend);
    if (record === undefined || record.place !== 'active') throw new Error(`backend ${backend.id} released but not active`);
    this.leaveTenant(record);
    backend.unbind();
    const tooOld = (this.options.maxLifetimeMs > 0 && Date.now() - record.born > this.options.maxLifetimeMs) || record.generation < this.generation || this.retiring;
    if (!opts.reusable || this.closing || backend.closed || backend.txnStatus !== 'I' || tooOld) {
      this.log.debug({ backend: backend.id, reusable: opts.reusable, txn: backend.txnStatus, tooOld }, 'closing backend instead of reuse');
      this.destroy(record);
      this.serveWaiters();
      return;
    }
    if (!opts.reset && backend.cancelling === null) {
      this.move(record, 'idle');
      this.serveWaiters();
      return;
    }
    const afterCancel = backend.cancelling ?? Promise.resolve();
    this.move(record, 'resetting');
    void afterCancel.then(() => (opts.reset ? this.reset(backend, opts.repin) : undefined)).then(
      () => {
        if (backend.closed || this.closing || record.generation < this.generation || this.retiring) {
          this.destroy(record);
          this.serveWaiters();
          return;
        }
        this.move(record, 'idle');
        this.serveWaiters();
      },
      (error: Error) => {
        this.log.warn({ backend: backend.id, err: error }, 'backend reset failed; closing it');
        this.destroy(record);
        this.serveWaiters();
      },
    );
  }

  /** Stops handing out backends (acquires wait); resolves once no backend is in use. */
  pause(): Promise<void> {
    this.paused = true;
    if (this.inUse === 0) return Promise.resolve();
    return new Promise((resolve) => this.quiet.push(resolve));
  }

  /** PAUSE is in force. */
  get isPaused(): boolean {
    return this.paused;
  }

  resume(): void {
    this.paused = false;
    for (const resolve of this.quiet.splice(0)) resolve();
    this.serveWaiters();
  }

  /** What the admin console shows of every backend. */
  describe(): BackendView[] {
    return [...this.records.values()].map((r) => ({
      id: r.backend.id,
      state: r.place,
      tenant: r.backend.pinnedTenant,
      holder: r.holder,
      dirty: r.backend.dirty,
      createdAt: new Date(r.born),
      lastUsedAt: r.backend.lastUsed > 0 ? new Date(r.backend.lastUsed) : null,
      cancelling: r.backend.cancelling !== null,
      closeNeeded: r.generation < this.generation,
      processId: r.backend.processId,
      preparedStatements: r.backend.statements.size,
    }));
  }

  /** Every waiting client's tenant and when it started waiting (Date.now() ms), oldest first. */
  waiting(): Array<{ tenant: string; since: number }> {
    const out: Array<{ tenant: string; since: number }> = [];
    for (let w = this.waiters.first; w !== null; w = w.next) out.push({ tenant: w.tenant, since: w.since });
    return out;
  }

  /**
   * RECONNECT: every backend open now closes instead of going back to the pool, idle ones at once;
   * new backends open as needed. Returns how many backends were marked.
   */
  reconnect(): number {
    this.generation++;
    const marked = this.records.size;
    for (const record of [...this.idle]) this.destroy(record);
    this.serveWaiters();
    return marked;
  }

  /**
   * A reload removed or changed this pool's target: every backend closes as it comes back (idle
   * ones now), as after RECONNECT; clients already waiting are still served. Resolves once the
   * pool holds no backend and no waiter, when it is closed.
   */
  retire(): Promise<void> {
    const drained = new Promise<void>((resolve) => (this.onDrained = resolve));
    this.reconnect();
    this.closeIfDrained();
    return drained;
  }

  /** retire() was called: the pool only drains. */
  get retiring(): boolean {
    return this.onDrained !== null;
  }

  /** The longest a client has been waiting for a backend, in ms. */
  get maxWaitMs(): number {
    const first = this.waiters.first;
    return first === null ? 0 : Date.now() - first.since;
  }

  /** New limits and timeouts from a reload; they apply from the next acquire and release on. */
  reconfigure(options: PoolOptions): void {
    this.options = options;
    for (const record of this.records.values()) record.backend.statements.resize(options.maxPreparedStatements);
    this.serveWaiters();
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.janitor);
    for (const waiter of this.waiters.drain()) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('pool is closing'));
    }
    for (const record of [...this.records.values()]) record.backend.destroy();
    this.idle.length = 0;
  }

  private get inUse(): number {
    return this.activeCount + this.resettingCount;
  }

  private closeIfDrained(): void {
    const drained = this.onDrained;
    if (drained === null || this.closing || this.records.size > 0 || this.connecting > 0 || this.waiters.size > 0) return;
    void this.close();
    drained();
  }

  private async reset(backend: BackendConnection, repin: RepinSpec | undefined): Promise<void> {
    try {
      if (repin === undefined) await backend.reset(this.options.resetTimeoutMs);
      else await backend.resetAndPin(repin.tenant, repin.settingsKey, repin.sql, this.options.resetTimeoutMs);
    } catch (error) {
      this.metrics?.backendReset('failed');
      throw error;
    }
    this.metrics?.backendReset('ok');
  }

  private underCap(tenant: string): boolean {
    return this.options.maxPerTenant === 0 || (this.perTenant.get(tenant) ?? 0) < this.options.maxPerTenant;
  }

  /** Same tenant and clean first (most recently used), then an unpinned one, then the oldest other. */
  private takeIdle(tenant: string): PooledBackend | undefined {
    let pick = -1;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const b = (this.idle[i] as PooledBackend).backend;
      if (b.pinnedTenant === tenant && !b.dirty) {
        pick = i;
        break;
      }
      if (pick < 0 && b.pinnedTenant === null) pick = i;
    }
    if (pick < 0 && this.idle.length > 0) pick = 0;
    return pick < 0 ? undefined : this.idle[pick];
  }

  /** Marks an idle backend active for a tenant. */
  private handOut(record: PooledBackend, tenant: string, waitedSeconds: number): void {
    this.move(record, 'active');
    record.holder = tenant;
    this.perTenant.set(tenant, (this.perTenant.get(tenant) ?? 0) + 1);
    this.onAcquired?.(waitedSeconds, tenant);
  }

  /** Hands out an idle backend, after a health check if it sat idle long. */
  private checked(record: PooledBackend, tenant: string, since: number): Promise<BackendConnection> {
    const backend = record.backend;
    const idleFor = Date.now() - backend.lastUsed;
    this.handOut(record, tenant, (Date.now() - since) / 1000);
    if (idleFor < this.options.healthCheckAfterIdleMs) return Promise.resolve(backend);
    return backend.runInternal('SELECT 1', this.options.connectTimeoutMs).then(
      () => backend,
      () => {
        this.leaveTenant(record);
        this.destroy(record);
        return this.acquire(tenant);
      },
    );
  }

  private serveWaiters(): void {
    if (this.paused) return;
    this.serveSameTenantWaiters();
    let eligible = 0;
    for (let waiter = this.waiters.first; waiter !== null; ) {
      const next = waiter.next;
      // Nothing idle and no room to open more: the rest of the queue waits for a release.
      if (this.idle.length === 0 && this.total >= this.options.size) break;
      if (this.underCap(waiter.tenant)) {
        const idle = this.takeIdle(waiter.tenant);
        if (idle === undefined) {
          eligible++;
        } else {
          this.serve(waiter, idle);
        }
      }
      waiter = next;
    }
    while (!this.closing && eligible > this.connecting && this.total < this.options.size) this.grow();
    // Full pool, idle backends of no use to the waiters' caps: nothing more to do until a release.
  }

  private serve(waiter: Waiter, record: PooledBackend): void {
    this.waiters.remove(waiter);
    clearTimeout(waiter.timer);
    this.checked(record, waiter.tenant, waiter.since).then(waiter.resolve, waiter.reject);
  }

  /**
   * Tenant affinity for waiters: an idle backend pinned to some tenant goes to a waiter of that
   * tenant (no reset needed) rather than to the longest waiter of another one, as long as the
   * longest waiter has not waited past AFFINITY_WINDOW_MS (then plain FIFO order serves it).
   */
  private serveSameTenantWaiters(): void {
    const head = this.waiters.first;
    if (head === null || Date.now() - head.since > AFFINITY_WINDOW_MS) return;
    let looked = 0;
    for (let waiter: Waiter | null = head; waiter !== null && looked < AFFINITY_LOOKAHEAD && this.idle.length > 0; looked++) {
      const next: Waiter | null = waiter.next;
      const tenant = waiter.tenant;
      const match = this.underCap(tenant) ? this.idle.find((r) => r.backend.pinnedTenant === tenant && !r.backend.dirty) : undefined;
      if (match !== undefined) this.serve(waiter, match);
      waiter = next;
    }
  }

  private grow(): void {
    this.connecting++;
    BackendConnection.connect(this.target, this.options).then(
      (backend) => {
        this.connecting--;
        this.metrics?.backendConnection('opened');
        const now = Date.now();
        const record: PooledBackend = { backend, place: 'idle', holder: null, born: now, idleSince: now, generation: this.generation };
        backend.onClose = () => this.forget(record);
        if (this.closing) {
          backend.destroy();
          return;
        }
        if (this.retiring && this.waiters.size === 0) {
          backend.destroy();
          this.closeIfDrained();
          return;
        }
        this.records.set(backend, record);
        backend.lastUsed = now;
        this.idle.push(record);
        this.serveWaiters();
      },
      (error: Error) => {
        this.connecting--;
        this.metrics?.backendConnection('failed');
        this.log.error({ err: error }, 'backend connection failed');
        // Fail one waiter per failed attempt so clients hear about an unreachable server quickly.
        const waiter = this.waiters.first;
        if (waiter !== null) {
          this.waiters.remove(waiter);
          clearTimeout(waiter.timer);
          waiter.reject(new BackendUnavailableError(error));
        }
        this.closeIfDrained();
      },
    );
  }

  /** The one way a backend changes place. */
  private move(record: PooledBackend, to: Place): void {
    const from = record.place;
    if (from === 'idle') {
      const i = this.idle.indexOf(record);
      if (i >= 0) this.idle.splice(i, 1);
    } else if (from === 'active') this.activeCount--;
    else this.resettingCount--;
    record.place = to;
    if (to === 'idle') {
      record.idleSince = Date.now();
      record.backend.lastUsed = record.idleSince;
      this.idle.push(record);
    } else if (to === 'active') this.activeCount++;
    else this.resettingCount++;
    this.wakePause();
  }

  private leaveTenant(record: PooledBackend): void {
    const tenant = record.holder;
    if (tenant === null) return;
    record.holder = null;
    const n = (this.perTenant.get(tenant) ?? 1) - 1;
    if (n <= 0) this.perTenant.delete(tenant);
    else this.perTenant.set(tenant, n);
  }

  /** Closes a backend and drops its record (the close callback finds it gone). */
  private destroy(record: PooledBackend): void {
    this.drop(record);
    record.backend.destroy();
  }

  private drop(record: PooledBackend): void {
    if (!this.records.delete(record.backend)) return;
    if (record.place === 'idle') {
      const i = this.idle.indexOf(record);
      if (i >= 0) this.idle.splice(i, 1);
    } else if (record.place === 'active') this.activeCount--;
    else this.resettingCount--;
    this.wakePause();
    this.closeIfDrained();
  }

  private wakePause(): void {
    if (this.quiet.length === 0 || this.inUse > 0) return;
    for (const resolve of this.quiet.splice(0)) resolve();
  }

  /** Closes idle backends past their idle timeout or lifetime. */
  private sweep(): void {
    const now = Date.now();
    for (const record of [...this.idle]) {
      const idleTooLong = this.options.idleTimeoutMs > 0 && now - record.idleSince > this.options.idleTimeoutMs;
      const tooOld = this.options.maxLifetimeMs > 0 && now - record.born > this.options.maxLifetimeMs;
      if (idleTooLong || tooOld) this.destroy(record);
    }
  }

  /** The connection ended: an idle or resetting record goes; an active one stays until its holder releases it (which then closes it). */
  private forget(record: PooledBackend): void {
    this.metrics?.backendConnection('closed');
    if (record.place !== 'active') this.drop(record);
  }
}
