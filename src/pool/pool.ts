import type { Logger } from 'pino';
import type { Metrics } from '../admin/index.js';
import { BackendConnection, type BackendOptions, type BackendTarget } from '../backend/connection.js';

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

interface Waiter {
  tenant: string;
  since: number;
  resolve(backend: BackendConnection): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
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
}

/**
 * Backend connections to one target, shared by all tenants. A backend lives in exactly one place
 * (idle, active, resetting) and moves only through `move`. Acquire prefers an idle backend already
 * pinned to the same tenant (no reset needed); a backend goes back to idle only when its holder
 * saw it idle, and after DISCARD ALL whenever its session state is not known to be clean.
 */
export class BackendPool {
  private readonly idle: BackendConnection[] = [];
  private readonly active = new Set<BackendConnection>();
  private readonly resetting = new Set<BackendConnection>();
  private readonly waiters: Waiter[] = [];
  private readonly perTenant = new Map<string, number>();
  private readonly holder = new Map<BackendConnection, string>();
  private readonly idleSince = new Map<BackendConnection, number>();
  private readonly born = new Map<BackendConnection, number>();
  private connecting = 0;
  private closing = false;
  private paused = false;
  private readonly janitor: NodeJS.Timeout;
  /** Observers for metrics: called with the wait in seconds of each successful acquire. */
  onAcquired: ((waitSeconds: number) => void) | null = null;

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
      active: this.active.size,
      resetting: this.resetting.size,
      connecting: this.connecting,
      waiting: this.waiters.length,
    };
  }

  private get total(): number {
    return this.idle.length + this.active.size + this.resetting.size + this.connecting;
  }

  /** A backend for `tenant`; the caller pins it unless `backend.pinnedTenant` already says so. */
  acquire(tenant: string): Promise<BackendConnection> {
    if (this.closing) return Promise.reject(new Error('pool is closing'));
    const since = Date.now();
    if (!this.paused && this.waiters.length === 0 && this.underCap(tenant)) {
      const idle = this.takeIdle(tenant);
      if (idle !== undefined) return this.checked(idle, tenant, since);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        this.metrics?.acquireTimeout();
        reject(new PoolTimeoutError(this.options.acquireTimeoutMs));
      }, this.options.acquireTimeoutMs);
      const waiter: Waiter = { tenant, since, resolve, reject, timer };
      this.waiters.push(waiter);
      this.serveWaiters();
    });
  }

  /**
   * Synchronously takes an idle backend that `suits` the caller (pinned to its tenant, nothing
   * left behind) when one is there and no one is waiting; null otherwise (then use acquire).
   */
  tryAcquirePinned(tenant: string, suits: (backend: BackendConnection) => boolean): BackendConnection | null {
    if (this.paused || this.closing || this.waiters.length > 0 || !this.underCap(tenant)) return null;
    const now = Date.now();
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const backend = this.idle[i] as BackendConnection;
      if (!suits(backend) || now - backend.lastUsed >= this.options.healthCheckAfterIdleMs) continue;
      this.idle.splice(i, 1);
      this.idleSince.delete(backend);
      this.active.add(backend);
      this.enterTenant(backend, tenant);
      this.onAcquired?.(0);
      return backend;
    }
    return null;
  }

  /**
   * Gives a backend back. Releasing a backend that is not active is a bug and throws: there is
   * one release path, and a backend can only be in one place.
   */
  release(backend: BackendConnection, opts: ReleaseOptions): void {
    if (!this.active.delete(backend)) throw new Error(`backend ${backend.id} released but not active`);
    this.leaveTenant(backend);
    backend.unbind();
    const tooOld = this.options.maxLifetimeMs > 0 && Date.now() - (this.born.get(backend) ?? 0) > this.options.maxLifetimeMs;
    if (!opts.reusable || this.closing || backend.closed || backend.txnStatus !== 'I' || tooOld) {
      this.log.debug({ backend: backend.id, reusable: opts.reusable, txn: backend.txnStatus, tooOld }, 'closing backend instead of reuse');
      this.destroy(backend);
      this.serveWaiters();
      return;
    }
    if (!opts.reset && backend.cancelling === null) {
      this.move(backend, 'idle');
      this.serveWaiters();
      return;
    }
    const afterCancel = backend.cancelling ?? Promise.resolve();
    this.move(backend, 'resetting');
    void afterCancel.then(() => (opts.reset ? this.reset(backend) : undefined)).then(
      () => {
        this.resetting.delete(backend);
        if (backend.closed || this.closing) {
          this.destroy(backend);
          return;
        }
        this.move(backend, 'idle');
        this.serveWaiters();
      },
      (error: Error) => {
        this.log.warn({ backend: backend.id, err: error.message }, 'backend reset failed; closing it');
        this.resetting.delete(backend);
        this.destroy(backend);
        this.serveWaiters();
      },
    );
  }

  /** Stops handing out backends (acquires wait); resolves once no backend is in use. */
  async pause(): Promise<void> {
    this.paused = true;
    while (this.paused && (this.active.size > 0 || this.resetting.size > 0)) await new Promise((r) => setTimeout(r, 50));
  }

  resume(): void {
    this.paused = false;
    this.serveWaiters();
  }

  /** What the admin console shows of every backend. */
  describe(): Array<{ id: number; state: 'idle' | 'active' | 'resetting'; tenant: string | null; dirty: boolean; createdAt: Date; lastUsedAt: Date | null }> {
    const row = (b: BackendConnection, state: 'idle' | 'active' | 'resetting') => ({
      id: b.id,
      state,
      tenant: b.pinnedTenant,
      dirty: b.dirty,
      createdAt: new Date(this.born.get(b) ?? Date.now()),
      lastUsedAt: b.lastUsed > 0 ? new Date(b.lastUsed) : null,
    });
    return [
      ...this.idle.map((b) => row(b, 'idle')),
      ...[...this.active].map((b) => row(b, 'active')),
      ...[...this.resetting].map((b) => row(b, 'resetting')),
    ];
  }

  /** The longest a client has been waiting for a backend, in ms. */
  get maxWaitMs(): number {
    const first = this.waiters[0];
    return first === undefined ? 0 : Date.now() - first.since;
  }

  /** New limits and timeouts from a reload; they apply from the next acquire and release on. */
  reconfigure(options: PoolOptions): void {
    this.options = options;
    this.serveWaiters();
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.janitor);
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('pool is closing'));
    }
    for (const backend of [...this.idle, ...this.active, ...this.resetting]) backend.destroy();
    this.idle.length = 0;
    this.active.clear();
    this.resetting.clear();
  }

  private async reset(backend: BackendConnection): Promise<void> {
    try {
      await backend.reset(this.options.resetTimeoutMs);
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
  private takeIdle(tenant: string): BackendConnection | undefined {
    let pick = -1;
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const b = this.idle[i] as BackendConnection;
      if (b.pinnedTenant === tenant && !b.dirty) {
        pick = i;
        break;
      }
      if (pick < 0 && b.pinnedTenant === null) pick = i;
    }
    if (pick < 0 && this.idle.length > 0) pick = 0;
    if (pick < 0) return undefined;
    const [backend] = this.idle.splice(pick, 1) as [BackendConnection];
    this.idleSince.delete(backend);
    return backend;
  }

  /** Hands out an idle backend, after a health check if it sat idle long. */
  private checked(backend: BackendConnection, tenant: string, since: number): Promise<BackendConnection> {
    const idleFor = Date.now() - (backend.lastUsed ?? 0);
    this.move(backend, 'active');
    this.enterTenant(backend, tenant);
    this.onAcquired?.((Date.now() - since) / 1000);
    if (idleFor < this.options.healthCheckAfterIdleMs) return Promise.resolve(backend);
    return backend.runInternal('SELECT 1', this.options.connectTimeoutMs).then(
      () => backend,
      () => {
        this.active.delete(backend);
        this.leaveTenant(backend);
        this.destroy(backend);
        return this.acquire(tenant);
      },
    );
  }

  private serveWaiters(): void {
    if (this.paused) return;
    this.serveSameTenantWaiters();
    for (let i = 0; i < this.waiters.length; ) {
      const waiter = this.waiters[i] as Waiter;
      if (!this.underCap(waiter.tenant)) {
        i++;
        continue;
      }
      const idle = this.takeIdle(waiter.tenant);
      if (idle === undefined) break;
      this.waiters.splice(i, 1);
      clearTimeout(waiter.timer);
      this.checked(idle, waiter.tenant, waiter.since).then(waiter.resolve, waiter.reject);
    }
    const eligible = this.waiters.filter((w) => this.underCap(w.tenant)).length;
    while (!this.closing && eligible > this.connecting && this.total < this.options.size) this.grow();
    // Full pool, idle backends of no use to the waiters' caps: nothing more to do until a release.
  }

  /**
   * Tenant affinity for waiters: an idle backend pinned to some tenant goes to a waiter of that
   * tenant (no reset needed) rather than to the longest waiter of another one, as long as the
   * longest waiter has not waited past AFFINITY_WINDOW_MS (then plain FIFO order serves it).
   */
  private serveSameTenantWaiters(): void {
    const head = this.waiters[0];
    if (head === undefined || Date.now() - head.since > AFFINITY_WINDOW_MS) return;
    for (let i = 0; i < this.waiters.length && i < AFFINITY_LOOKAHEAD; ) {
      const waiter = this.waiters[i] as Waiter;
      const match = this.underCap(waiter.tenant) ? this.idle.findIndex((b) => b.pinnedTenant === waiter.tenant && !b.dirty) : -1;
      if (match < 0) {
        i++;
        continue;
      }
      const [backend] = this.idle.splice(match, 1) as [BackendConnection];
      this.idleSince.delete(backend);
      this.waiters.splice(i, 1);
      clearTimeout(waiter.timer);
      this.checked(backend, waiter.tenant, waiter.since).then(waiter.resolve, waiter.reject);
    }
  }

  private grow(): void {
    this.connecting++;
    BackendConnection.connect(this.target, this.options).then(
      (backend) => {
        this.connecting--;
        this.metrics?.backendConnection('opened');
        this.born.set(backend, Date.now());
        backend.onClose = () => this.forget(backend);
        if (this.closing) {
          backend.destroy();
          return;
        }
        this.move(backend, 'idle');
        this.serveWaiters();
      },
      (error: Error) => {
        this.connecting--;
        this.metrics?.backendConnection('failed');
        this.log.error({ err: error.message }, 'backend connection failed');
        // Fail one waiter per failed attempt so clients hear about an unreachable server quickly.
        const waiter = this.waiters.shift();
        if (waiter !== undefined) {
          clearTimeout(waiter.timer);
          waiter.reject(new BackendUnavailableError(error));
        }
      },
    );
  }

  private move(backend: BackendConnection, to: 'idle' | 'active' | 'resetting'): void {
    const i = this.idle.indexOf(backend);
    if (i >= 0) this.idle.splice(i, 1);
    this.active.delete(backend);
    this.resetting.delete(backend);
    if (to === 'idle') {
      this.idle.push(backend);
      this.idleSince.set(backend, Date.now());
      backend.lastUsed = Date.now();
    } else if (to === 'active') this.active.add(backend);
    else this.resetting.add(backend);
  }

  private enterTenant(backend: BackendConnection, tenant: string): void {
    this.holder.set(backend, tenant);
    this.perTenant.set(tenant, (this.perTenant.get(tenant) ?? 0) + 1);
  }

  private leaveTenant(backend: BackendConnection): void {
    const tenant = this.holder.get(backend);
    if (tenant === undefined) return;
    this.holder.delete(backend);
    const n = (this.perTenant.get(tenant) ?? 1) - 1;
    if (n <= 0) this.perTenant.delete(tenant);
    else this.perTenant.set(tenant, n);
  }

  private destroy(backend: BackendConnection): void {
    this.born.delete(backend);
    this.idleSince.delete(backend);
    backend.destroy();
  }

  /** Closes idle backends past their idle timeout or lifetime. */
  private sweep(): void {
    const now = Date.now();
    for (const backend of [...this.idle]) {
      const idleFor = now - (this.idleSince.get(backend) ?? now);
      const age = now - (this.born.get(backend) ?? now);
      const idleTooLong = this.options.idleTimeoutMs > 0 && idleFor > this.options.idleTimeoutMs;
      const tooOld = this.options.maxLifetimeMs > 0 && age > this.options.maxLifetimeMs;
      if (idleTooLong || tooOld) {
        this.idle.splice(this.idle.indexOf(backend), 1);
        this.destroy(backend);
      }
    }
  }

  private forget(backend: BackendConnection): void {
    this.metrics?.backendConnection('closed');
    const i = this.idle.indexOf(backend);
    if (i >= 0) this.idle.splice(i, 1);
    this.resetting.delete(backend);
    this.born.delete(backend);
    this.idleSince.delete(backend);
    // An active backend stays in `active` until its holder releases it (which then closes it).
  }
}
