import type { Logger } from 'pino';
import type { QueryTimer, TenantMetrics } from '../admin/index.js';
import type { Binding, BindingDeps, BindingHost } from '../binding/binding.js';
import { ClientSettings } from '../binding/client-settings.js';
import { SessionModeBinding } from '../binding/session-mode.js';
import { TransactionModeBinding } from '../binding/transaction-mode.js';
import type { Config } from '../config/schema.js';
import type { Guard, TenantFence } from '../guard/index.js';
import type { HeldListener } from '../placement/listeners.js';
import type { HeldPool } from '../placement/pools.js';
import type { BackendPool } from '../pool/pool.js';
import { ClientChannels } from '../relay/client-channels.js';
import { Relay, type RelayHost } from '../relay/relay.js';
import { type InspectorDeps, StatementInspector } from '../relay/statement-inspector.js';
import { ClientStatements } from '../relay/statements.js';
import type { Tenant } from '../tenancy/index.js';
import type { SessionDeps } from './session-deps.js';

/** The session the parts serve: where replies go, who logs, who hears of notifications. */
export interface TenantPartsHost extends RelayHost, BindingHost {
  /** The session's logger (made on its first line). */
  readonly log: Logger;
  /** A notification from the shared listener for this client. */
  onNotification(message: Buffer): void;
  /** The tenant as it is served now (a move rehomes the session). */
  readonly currentTenant: Tenant;
  /** The pool of the tenant's placement now (a move rehomes the session). */
  readonly currentPool: HeldPool;
}

/**
 * What one authenticated tenant client is made of behind its socket: the inspector of its SQL,
 * the relay to a backend, its settings, channels and statements, and the binding of its pool mode.
 * One object is what the inspector and the binding read (no closure or accessor object per
 * session: an idle client's memory is a sizing figure).
 */
export class TenantParts implements InspectorDeps, BindingDeps {
  readonly tenantId: string;
  readonly transactionMode: boolean;
  readonly settings: ClientSettings;
  readonly relay: Relay;
  readonly channels: ClientChannels | null;
  readonly binding: Binding;

  constructor(
    private readonly session: TenantPartsHost,
    private readonly deps: SessionDeps,
    tenant: Tenant,
    readonly fence: TenantFence,
    startupSettings: ReadonlyMap<string, string>,
    readonly metrics: TenantMetrics,
    timer: QueryTimer,
    sessionId: number,
  ) {
    this.tenantId = tenant.id;
    this.transactionMode = deps.config.pool.mode === 'transaction';
    this.settings = new ClientSettings(startupSettings);
    this.relay = new Relay(session, {
      sessionId,
      tenantId: tenant.id,
      inspector: new StatementInspector(this),
      statements: this.transactionMode ? new ClientStatements(tenant.id) : null,
      timer,
      notificationsFromBackend: !this.transactionMode,
    });
    // Notifications come from where the tenant's data lives: its placement's listener (where it
    // lives when the client first listens; see ClientSession.rehome).
    this.channels = this.transactionMode ? new ClientChannels(this, tenant.id) : null;
    this.binding = this.transactionMode ? new TransactionModeBinding(this) : new SessionModeBinding(this);
  }

  get host(): BindingHost {
    return this.session;
  }

  /** Read per transaction: a move points the session to its tenant's new placement. */
  get tenant(): Tenant {
    return this.session.currentTenant;
  }

  /** Read per acquire: a reload or a move points the session to its tenant's current pool. */
  get pool(): BackendPool {
    return this.session.currentPool.pool;
  }

  /** While the tenant is paused for a move: resolves when it is served again. */
  paused(): Promise<void> | null {
    return this.deps.pauses?.whenServed(this.tenantId) ?? null;
  }

  /** A notification for this client's channels. */
  onNotification(message: Buffer): void {
    this.session.onNotification(message);
  }

  holdListener(): HeldListener {
    const held = this.session.currentPool;
    return this.deps.listeners.hold(held.target, held.tenantDatabase);
  }

  get log(): Logger {
    return this.session.log;
  }

  config(): Config {
    return this.deps.config;
  }

  guard(): Guard {
    return this.deps.guard;
  }
}
