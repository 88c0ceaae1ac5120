import type { Logger } from 'pino';
import { BackendConnection, type BackendOptions, type BackendTarget } from '../backend/connection.js';

export interface PoolOptions extends BackendOptions {
  size: number;
  acquireTimeoutMs: number;
  resetTimeoutMs: number;
}

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
  resolve(backend: BackendConnection): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

export type BackendPlace = 'idle' | 'active' | 'resetting';

export interface PoolStats {
  idle: number;
  active: number;
  resetting: number;
  connecting: number;
  waiting: number;
}

/**
 * Backend connections to one target, shared by all tenants. A backend lives in exactly one
 * place (idle, active, resetting) and moves only through `move`; it goes back to idle only after
 * `DISCARD ALL` succeeded on an idle transaction status, otherwise it is closed.
 */
export class BackendPool {
  private readonly idle: BackendConnection[] = [];
  private readonly active = new Set<BackendConnection>();
  private readonly resetting = new Set<BackendConnection>();
  private readonly waiters: Waiter[] = [];
  private connecting = 0;
  private closing = false;

  constructor(
    private readonly target: BackendTarget,
    private readonly options: PoolOptions,
    private readonly log: Logger,
  ) {}

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

  acquire(): Promise<BackendConnection> {
    if (this.closing) return Promise.reject(new Error('pool is closing'));
    const idle = this.idle.pop();
    if (idle !== undefined) {
      this.move(idle, 'active');
      return Promise.resolve(idle);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new PoolTimeoutError(this.options.acquireTimeoutMs));
      }, this.options.acquireTimeoutMs);
      const waiter: Waiter = { resolve, reject, timer };
      this.waiters.push(waiter);
      this.growIfNeeded();
    });
  }

  /**
   * Gives a backend back. `reusable` says the caller saw it idle and finished; even then it is
   * reset before anyone else gets it. Releasing a backend that is not active is a bug and throws.
   */
  release(backend: BackendConnection, reusable: boolean): void {
    if (!this.active.delete(backend)) throw new Error(`backend ${backend.id} released but not active`);
    backend.unbind();
    if (!reusable || this.closing || backend.closed || backend.txnStatus !== 'I') {
      this.log.debug({ backend: backend.id, reusable, txn: backend.txnStatus }, 'closing backend instead of reuse');
      backend.destroy();
      this.growIfNeeded();
      return;
    }
    this.move(backend, 'resetting');
    backend.pinnedTenant = null;
    backend.runInternal('DISCARD ALL', this.options.resetTimeoutMs).then(
      () => {
        this.resetting.delete(backend);
        if (backend.closed || this.closing) {
          backend.destroy();
          return;
        }
        this.handOut(backend);
      },
      (error: Error) => {
        this.log.warn({ backend: backend.id, err: error.message }, 'backend reset failed; closing it');
        this.resetting.delete(backend);
        backend.destroy();
        this.growIfNeeded();
      },
    );
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('pool is closing'));
    }
    for (const backend of [...this.idle, ...this.active, ...this.resetting]) backend.destroy();
    this.idle.length = 0;
    this.active.clear();
    this.resetting.clear();
  }

  private move(backend: BackendConnection, to: BackendPlace): void {
    const i = this.idle.indexOf(backend);
    if (i >= 0) this.idle.splice(i, 1);
    this.active.delete(backend);
    this.resetting.delete(backend);
    if (to === 'idle') this.idle.push(backend);
    else if (to === 'active') this.active.add(backend);
    else this.resetting.add(backend);
  }

  /** Gives a clean backend to the longest waiter, or parks it idle. */
  private handOut(backend: BackendConnection): void {
    const waiter = this.waiters.shift();
    if (waiter === undefined) {
      this.move(backend, 'idle');
      return;
    }
    clearTimeout(waiter.timer);
    this.move(backend, 'active');
    waiter.resolve(backend);
  }

  private growIfNeeded(): void {
    while (!this.closing && this.waiters.length > this.connecting && this.total < this.options.size) {
      this.connecting++;
      BackendConnection.connect(this.target, this.options).then(
        (backend) => {
          this.connecting--;
          backend.onClose = () => this.forget(backend);
          if (this.closing) backend.destroy();
          else this.handOut(backend);
        },
        (error: Error) => {
          this.connecting--;
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
  }

  private forget(backend: BackendConnection): void {
    const i = this.idle.indexOf(backend);
    if (i >= 0) this.idle.splice(i, 1);
    this.resetting.delete(backend);
    // An active backend stays in `active` until its session releases it (which then closes it).
  }
}
