import type { Logger } from 'pino';
import { type BackendConnection, BackendClosedError } from '../backend/connection.js';
import type { Config } from '../config/schema.js';
import { searchPathWithinFence, type TenantFence } from '../guard/index.js';
import { pinSql } from '../frontend/pin.js';
import type { BackendPool, RepinSpec } from '../pool/pool.js';
import type { FramedMessage } from '../protocol/framer.js';
import type { ClientChannels } from '../relay/client-channels.js';
import type { Relay } from '../relay/relay.js';
import { expectedSearchPath, type Tenant } from '../tenancy/index.js';
import type { ClientSettings } from './client-settings.js';

/** How many dead backends one acquire may run into before the client is told. */
const DEAD_BACKEND_RETRIES = 3;

/** A backend that does not show the pin it was given: closed, never used. */
export class PinBreach extends Error {
  constructor(readonly what: string) {
    super(`backend does not hold the pin (${what})`);
  }
}

/** What a binding strategy needs of the client session. */
export interface BindingHost {
  readonly closed: boolean;
  /** Ends the session over an error while binding (pool timeout, pin failure...). */
  failBinding(error: unknown): void;
  /** The client's messages are too many to keep while it waits: stop / start reading. */
  pauseClient(): void;
  resumeClient(): void;
  /** The client sent Terminate. */
  clientTerminated(): void;
  /** The client broke the protocol. */
  violation(what: string): void;
}

export interface BindingDeps {
  config: () => Config;
  /** Where backends come from: read at every acquire (a reload or a move may replace the tenant's pool). */
  readonly pool: BackendPool;
  tenant: Tenant;
  fence: TenantFence;
  settings: ClientSettings;
  relay: Relay;
  /** Transaction pooling: the client's channels on the shared listener; null without one. */
  channels: ClientChannels | null;
  host: BindingHost;
  /** While the tenant is paused for a move: resolves when it is served again (null: served now). */
  paused?: () => Promise<void> | null;
  log: Logger;
}

/**
 * When a client holds a backend, and how it gets and gives back one: one strategy per pool mode
 * (session-mode.ts, transaction-mode.ts). This base owns what both share: acquire, pin, attach.
 */
export abstract class Binding {
  protected searchPath: string | undefined;
  /** The pool the bound backend came from, which takes it back (null while none is bound). */
  private from: BackendPool | null = null;
  private taking = false;

  constructor(protected readonly deps: BindingDeps) {}

  /** At connect: a pinned backend, to check the tenant; resolves with the ParameterStatus messages the client is greeted with. */
  abstract open(): Promise<Buffer | null>;
  /** Ready-state client messages. */
  abstract send(messages: readonly FramedMessage[]): void;
  /**
   * The relay answered a chunk from the server. A promise when the client's reply must wait
   * (transaction pooling: until the shared listener listens on the channels it just LISTENed on).
   */
  abstract afterServerBatch(): Promise<void> | null;
  /** Gives the backend back (or closes it when `reusable` is false or its state is unknown). */
  abstract close(reusable: boolean): void;
  /** Waiting for a backend to be free. */
  abstract get waiting(): boolean;

  /** The pool of the bound backend; null while none is bound. */
  get boundPool(): BackendPool | null {
    return this.from;
  }

  /** Holds a backend, or has passed the tenant's pause and is taking one (a move waits for neither). */
  get holdsBackend(): boolean {
    return this.taking || this.deps.relay.backend !== null;
  }

  /** Not inside a transaction, a batch or a wait: shutdown may end the client now. */
  get betweenTransactions(): boolean {
    return !this.waiting && (this.deps.relay.backend === null || this.deps.relay.idle);
  }

  /**
   * Acquires a backend for this client's tenant, pins it with its settings, and attaches the relay.
   * A backend found dead on the way (its server went away while it sat idle) is dropped and
   * another one taken, a few times at most.
   */
  protected async acquire(): Promise<BackendConnection | null> {
    // A tenant paused for a move: the transaction waits, then takes a backend where the tenant is then.
    for (let gate = this.deps.paused?.() ?? null; gate !== null; gate = this.deps.paused?.() ?? null) {
      await gate;
      if (this.deps.host.closed) return null;
    }
    this.taking = true;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.acquireOnce();
        } catch (error) {
          if (!(error instanceof BackendClosedError) || attempt >= DEAD_BACKEND_RETRIES || this.deps.host.closed) throw error;
          this.deps.log.warn({ err: error, attempt }, 'backend died before use; taking another');
        }
      }
    } finally {
      this.taking = false;
    }
  }

  /**
   * The backend is the binding's only once pinned: until then nothing of the client reaches it,
   * and the client's own end (close, a lost connection) cannot hand it back while pgfence's pin
   * still runs on it.
   */
  private async acquireOnce(): Promise<BackendConnection | null> {
    const { tenant, settings, relay, host } = this.deps;
    const pool = this.deps.pool;
    const backend = await pool.acquire(tenant.id);
    if (!backend.holdsPin(tenant.id, settings.key) && !host.closed) {
      const config = this.deps.config();
      try {
        await backend.pin(tenant.id, settings.key, pinSql(config.tenancy, tenant, settings.values), config.pool.resetTimeoutMs);
      } catch (error) {
        // A pin the server refused (a setting of the client's) leaves a usable backend, reset first.
        pool.release(backend, { reusable: !(error instanceof BackendClosedError), reset: true });
        throw error;
      }
    }
    if (host.closed) {
      pool.release(backend, { reusable: true, reset: false });
      return null;
    }
    backend.bind(relay);
    this.from = pool;
    this.attach(backend);
    this.checkPin(backend);
    return backend;
  }

  /** Transaction pooling, common case: an idle backend already pinned for this client, taken at once. */
  protected acquirePinnedNow(): BackendConnection | null {
    const { tenant, settings, relay } = this.deps;
    const pool = this.deps.pool;
    const backend = pool.tryAcquirePinned(tenant.id, (b) => b.holdsPin(tenant.id, settings.key));
    if (backend === null) return null;
    backend.bind(relay);
    this.from = pool;
    this.attach(backend);
    this.checkPin(backend);
    return backend;
  }

  private attach(backend: BackendConnection): void {
    const config = this.deps.config();
    this.searchPath ??= expectedSearchPath(config.tenancy, this.deps.tenant);
    this.deps.relay.attach(backend, {
      searchPath: this.searchPath,
      // Read after the pin ran: its SET ROLE (tenancy.roleTemplate) has been reported by then.
      superuser: undefined,
      user: backend.target.user,
      allowsSearchPath: (value) => searchPathWithinFence(value, this.deps.fence),
      params: backend.params,
      backendPid: backend.processId,
      statements: backend.statements,
    });
  }

  /** Postgres 18+ reports search_path: it must be the pin, now and until release. */
  private checkPin(backend: BackendConnection): void {
    const reported = backend.params.get('search_path');
    // The pin's, or a narrower one of the client's own (replayed with its settings).
    if (reported !== undefined && reported !== this.searchPath && !searchPathWithinFence(reported, this.deps.fence)) throw new PinBreach('search_path');
    this.deps.relay.toClient.pinned(backend.params.get('is_superuser'));
  }

  /**
   * Relays a batch to the bound backend; when the backend cannot take more, the client is not read
   * from until it drains (and, with `readyToRead`, until then only if that still holds).
   */
  protected relayBatch(messages: readonly FramedMessage[], readyToRead: () => boolean = () => true): void {
    const { relay, host } = this.deps;
    const backend = relay.backend;
    if (backend === null) return;
    const result = relay.send(messages);
    if (result === 'terminate') host.clientTerminated();
    else if (result !== 'sent') host.violation(result.violation);
    else if (backend.needsDrain) {
      host.pauseClient();
      backend.onceDrained(() => {
        if (readyToRead()) host.resumeClient();
      });
    }
  }

  /**
   * Hands the bound backend back; `reset` when its session holds more than the pin. A reset
   * backend is pinned again for this client's tenant and settings in the same round trip.
   */
  protected giveBack(reusable: boolean, reset: boolean): void {
    const backend = this.deps.relay.detach();
    const pool = this.from;
    this.from = null;
    if (backend === null || pool === null) return;
    pool.release(backend, { reusable, reset, repin: reset && reusable ? this.repinSpec() : undefined });
  }

  private repin: { spec: RepinSpec; config: Config } | null = null;

  /** The pin of this client as it stands (its settings change with its SETs, the pin with a reload). */
  private repinSpec(): RepinSpec {
    const { tenant, settings } = this.deps;
    const config = this.deps.config();
    if (this.repin === null || this.repin.spec.settingsKey !== settings.key || this.repin.config !== config) {
      this.repin = { spec: { tenant: tenant.id, settingsKey: settings.key, sql: pinSql(config.tenancy, tenant, settings.values) }, config };
    }
    return this.repin.spec;
  }
}
