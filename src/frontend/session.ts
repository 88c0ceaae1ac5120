import type net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { Metrics, QueryTimer, TenantMetrics } from '../admin/index.js';
import type { ConsoleContext } from '../admin/console.js';
import { ConsoleConnection } from './console-connection.js';
import { clientNotification, rewriteChannelStatements, withSqlText } from './channels.js';
import { serialize } from 'pg-protocol';
import { AuthError, readClaim, type TokenVerifier } from '../auth/index.js';
import { type BackendConnection, BackendError, type BackendSink } from '../backend/connection.js';
import type { Config } from '../config/schema.js';
import { type ChannelStatement, fencePolicy, type Guard, type SessionEffect, type TenantFence } from '../guard/index.js';
import { BackendUnavailableError, type BackendPool, PoolTimeoutError } from '../pool/pool.js';
import * as build from '../protocol/build.js';
import { Backend as B, Frontend as F } from '../protocol/codes.js';
import { errorFields, parameterStatus, parseMessage, queryText, readCString, type SqlText } from '../protocol/decode.js';
import { type FramedMessage, FramingError, MessageFramer } from '../protocol/framer.js';
import { StartupReader } from '../protocol/startup.js';
import { expectedSearchPath, type Tenant, TenantRefused, type TenantResolver } from '../tenancy/index.js';
import type { CancelRegistry } from './cancel-registry.js';
import { clientErrors } from './errors.js';
import { isLoopback } from './peer.js';
import { capStatementTimeout, sessionSettings, StartupParamError } from './startup-params.js';
import { isTenantRoleError, pinSql, settingsKey } from './pin.js';
import { type Expected, ResponseTracker } from './responses.js';
import {
  bindStatementName,
  ClientStatements,
  closeStatementMessage,
  describedTarget,
  describeStatementMessage,
  parseMessageFor,
  renameBind,
} from './statements.js';
import { queryFingerprint } from './audit.js';

export interface SessionDeps {
  metrics: Metrics;
  /** What the admin console (database `pgfence`) reads and acts on; null where there is none. */
  console: ConsoleContext | null;
  /** Offered to clients that send SSLRequest; null answers 'N'. */
  tls: tls.SecureContext | null;
  config: Config;
  guard: Guard;
  verifier: TokenVerifier;
  tenants: TenantResolver;
  pool: BackendPool;
  cancels: CancelRegistry;
  log: Logger;
}

/** Where a client connection is in its life; one `switch` on it routes every byte. */
type Step = 'startup' | 'password' | 'binding' | 'ready' | 'console' | 'closed';

/** A statement the guard refused, waiting for the backend to fail its stand-in Execute. */
interface PendingRejection {
  marker: string;
  error: build.ErrorFields;
  /** Number of the ReadyForQuery that ends the batch it belongs to. */
  syncNumber: number;
}

let nextSessionId = 1;

/** The virtual database of the admin console. */
export const CONSOLE_DATABASE = 'pgfence';

/** A backend that does not show the pin it was given: closed, never used. */
class PinBreach extends Error {
  constructor(readonly what: string) {
    super(`backend does not hold the pin (${what})`);
  }
}

/** A client that sends this much while it waits for a backend is paused until it gets one. */
const QUEUED_BYTES_BEFORE_PAUSE = 1024 * 1024;

/** How long a closed session's last bytes may take to reach a client that has stopped reading. */
const CLOSE_FLUSH_MS = 5_000;

/**
 * One client connection: startup and JWT authentication, then the relay between the client and
 * the backend pinned to its tenant, with the guard inspecting every Query and Parse.
 */
export class ClientSession implements BackendSink {
  readonly id = nextSessionId++;
  private step: Step = 'startup';
  private log: Logger;
  private readonly startup = new StartupReader();
  private readonly framer: MessageFramer;
  private readonly inbox: FramedMessage[] = [];
  private startupTimer: NodeJS.Timeout | null = null;
  private params = new Map<string, string>();
  private tenant: Tenant | null = null;
  private user: string | undefined;
  private fence: TenantFence | null = null;
  private backend: BackendConnection | null = null;
  private key: { processId: number; secretKey: number } | null = null;
  private pinnedSearchPath: string | undefined;
  private pinnedSuperuser: string | undefined;
  /** Messages that produce a ReadyForQuery, sent vs answered: a backend is idle only when equal. */
  private syncsSent = 0;
  private syncsDone = 0;
  /** Extended-protocol messages were sent since the last Sync. */
  private extendedOpen = false;
  /** After a rejected Parse, client messages are dropped up to the next Sync, like the server does. */
  private skippingToSync = false;
  private readonly rejections: PendingRejection[] = [];
  private rejectionCounter = 0;
  private readonly transactionMode: boolean;
  /** The client's session settings: its startup parameters, then every SET it ran (replayed on each backend). */
  private settings = new Map<string, string>();
  private startupSettings = new Map<string, string>();
  private settingsKey = '';
  /** SETs of the current binding, applied to `settings` when it ends without an error. */
  private pendingSets: Array<{ name: string; value: string | null }> = [];
  private bindingFailed = false;
  private bindingDirty = false;
  /** Client messages that arrived while a backend was being acquired (transaction pooling). */
  private encrypted = false;
  private console: ConsoleConnection | null = null;
  private rewritten: Buffer | null = null;
  private draining = false;
  private readonly connectedAt = new Date();
  private queued: FramedMessage[] = [];
  private queuedBytes = 0;
  private acquiring = false;
  private readonly tracker = new ResponseTracker();
  private statements: ClientStatements | null = null;
  /** The backend was just bound: its unnamed statement, if any, is the previous holder's. */
  private unnamedForeign = false;
  private tenantMetrics: TenantMetrics | null = null;
  private queryTimer: QueryTimer | null = null;
  /** A drain listener on the client socket will resume the backend this client holds. */
  private awaitingDrain = false;

  constructor(
    private socket: net.Socket,
    private readonly deps: SessionDeps,
  ) {
    this.framer = new MessageFramer(deps.config.listen.maxMessageBytes);
    this.transactionMode = deps.config.pool.mode === 'transaction';
    this.log = deps.log.child({ conn: this.id, peer: `${socket.remoteAddress}:${socket.remotePort}` });
  }

  start(): void {
    this.socket.setNoDelay(true);
    this.startupTimer = setTimeout(() => this.fail(clientErrors.startupTimeout()), this.deps.config.listen.startupTimeoutMs);
    this.listen(this.socket);
  }

  private listen(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.onClientData(chunk));
    socket.on('error', (error) => this.log.debug({ err: error.message }, 'client socket error'));
    socket.on('close', () => this.onClientGone());
  }

  /** Answers SSLRequest with 'S' and continues the startup inside TLS. */
  private upgradeToTls(context: tls.SecureContext): void {
    // Bytes sent after SSLRequest but before the handshake would bypass encryption (CVE-2021-23214).
    if (this.startup.takeRest().length > 0) {
      this.fail(clientErrors.protocolViolation('data received after SSLRequest before the TLS handshake'));
      return;
    }
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.write('S');
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
    this.socket = secure;
    this.encrypted = true;
    secure.setNoDelay(true);
    this.listen(secure);
  }

  /** Ends the session from outside (shutdown, KILL TENANT). */
  terminate(fields: build.ErrorFields = clientErrors.shuttingDown()): void {
    this.fail(fields);
  }

  /** Shutdown: end the session as soon as it is between transactions (at once if it is now). */
  drain(): void {
    this.draining = true;
    if (this.betweenTransactions()) this.terminate();
  }

  private betweenTransactions(): boolean {
    if (this.step !== 'ready') return true;
    if (this.acquiring || this.queued.length > 0) return false;
    const backend = this.backend;
    return backend === null || (backend.txnStatus === 'I' && this.syncsSent === this.syncsDone && !this.extendedOpen && this.tracker.idle);
  }

  /** What the admin console shows of this session. */
  describe(): { id: number; tenant: string; user: string | undefined; peer: string; state: 'startup' | 'idle' | 'active' | 'waiting'; connectedAt: Date; backendId: number | null; admin: boolean } {
    const state = this.step === 'console' ? 'idle' : this.step !== 'ready' ? 'startup' : this.acquiring ? 'waiting' : this.betweenTransactions() ? 'idle' : 'active';
    return {
      id: this.id,
      tenant: this.tenant?.id ?? '',
      user: this.user,
      peer: `${this.socket.remoteAddress}:${this.socket.remotePort}`,
      state,
      connectedAt: this.connectedAt,
      backendId: this.backend?.id ?? null,
      admin: this.step === 'console',
    };
  }

  get tenantId(): string | null {
    return this.tenant?.id ?? null;
  }

  cancel(): void {
    const backend = this.backend;
    if (backend !== null && this.syncsSent > this.syncsDone) backend.cancel();
  }

  private onClientData(chunk: Buffer): void {
    this.deps.metrics.clientBytesIn(chunk.length);
    try {
      switch (this.step) {
        case 'startup':
          this.onStartupBytes(chunk);
          return;
        case 'password':
        case 'binding':
        case 'ready':
        case 'console':
          this.inbox.length = 0;
          this.framer.push(chunk, this.inbox);
          this.onClientMessages(this.inbox);
          return;
        case 'closed':
          return;
      }
    } catch (error) {
      if (error instanceof FramingError) this.fail(clientErrors.protocolViolation(error.message));
      else this.crash(error);
    }
  }

  private onStartupBytes(chunk: Buffer | null): void {
    const packet = this.startup.next(chunk);
    if (packet === null) return;
    switch (packet.kind) {
      case 'ssl':
        if (this.deps.tls !== null && !this.encrypted) {
          this.upgradeToTls(this.deps.tls);
          return;
        }
        this.socket.write(build.ENCRYPTION_NOT_SUPPORTED);
        this.onStartupBytes(null);
        return;
      case 'gssenc':
        this.socket.write(build.ENCRYPTION_NOT_SUPPORTED);
        this.onStartupBytes(null);
        return;
      case 'cancel':
        this.deps.cancels.cancel(packet.processId, packet.secretKey);
        this.close();
        return;
      case 'unsupported-version':
        this.fail(clientErrors.unsupportedProtocol(packet.major, packet.minor));
        return;
      case 'startup':
        this.params = packet.params;
        this.user = packet.params.get('user');
        if (!this.encrypted && this.deps.config.listen.requireTls) {
          this.deps.metrics.clientConnection('startup_refused');
          this.fail(clientErrors.tlsRequiredAlways());
          return;
        }
        if (!this.encrypted && !this.deps.config.listen.allowPlaintextJwt && !isLoopback(this.socket.remoteAddress)) {
          this.deps.metrics.clientConnection('startup_refused');
          this.fail(clientErrors.tlsRequired());
          return;
        }
        this.step = 'password';
        this.socket.write(build.AUTHENTICATION_CLEARTEXT);
        {
          const rest = this.startup.takeRest();
          if (rest.length > 0) this.onClientData(rest);
        }
        return;
    }
  }

  private onClientMessages(messages: readonly FramedMessage[]): void {
    if (this.step === 'password') {
      const first = messages[0];
      if (first === undefined) return;
      if (first.type !== F.Password) {
        this.fail(clientErrors.passwordExpected());
        return;
      }
      if (messages.length > 1) {
        this.fail(clientErrors.protocolViolation('messages sent before authentication completed'));
        return;
      }
      this.step = 'binding';
      this.socket.pause();
      const token = readCString(first.bytes, 5)[0];
      void this.authenticate(token);
      return;
    }
    if (this.step === 'binding') {
      this.fail(clientErrors.protocolViolation('messages sent before authentication completed'));
      return;
    }
    if (this.step === 'ready') this.onReadyMessages(messages);
    else if (this.step === 'console') this.console?.onMessages(messages);
  }

  /** The virtual database `pgfence`: the admin console, for tokens with the admin claim. */
  private async openConsole(token: string): Promise<void> {
    const claims = await this.deps.verifier.verifyClaims(token);
    const claim = this.deps.config.admin.consoleClaim;
    if (readClaim(claims, claim) !== true) {
      this.deps.metrics.clientConnection('auth_failed');
      this.fail(clientErrors.notAdmin(claim));
      return;
    }
    const ctx = this.deps.console;
    if (ctx === null) {
      this.fail(clientErrors.consoleUnavailable());
      return;
    }
    if (this.isClosed()) return;
    if (this.startupTimer !== null) clearTimeout(this.startupTimer);
    this.startupTimer = null;
    const user = readClaim(claims, this.deps.config.jwt.userClaim);
    this.user = typeof user === 'string' ? user : this.user;
    this.log = this.log.child({ console: true, user: this.user });
    this.console = new ConsoleConnection(ctx, (parts) => this.writeClient(parts), (fields) => (fields ? this.fail(fields) : this.close()));
    this.key = this.deps.cancels.issue(this);
    this.writeClient(ConsoleConnection.greeting(build.backendKeyData(this.key.processId, this.key.secretKey)));
    this.step = 'console';
    this.deps.metrics.clientConnection('accepted');
    this.log.info('admin console opened');
    this.socket.resume();
  }

  private async authenticate(token: string): Promise<void> {
    try {
      if (token.length === 0) throw new AuthError('empty_password');
      if (this.params.get('database') === CONSOLE_DATABASE) {
        await this.openConsole(token);
        return;
      }
      const identity = await this.deps.verifier.verify(token);
      const tenant = await this.deps.tenants.resolve(identity.tenantId);
      this.tenant = tenant;
      this.tenantMetrics = this.deps.metrics.tenant(tenant.id);
      this.queryTimer = this.tenantMetrics.queryTimer();
      this.user = identity.user ?? this.user;
      this.log = this.log.child({ tenant: tenant.id, user: this.user });
      this.startupSettings = sessionSettings(this.params, this.deps.config.tenancy.tenantGuc);
      capStatementTimeout(this.startupSettings, tenant.statementTimeoutMs ?? 0);
      this.settings = new Map(this.startupSettings);
      this.settingsKey = settingsKey(this.settings);
      this.statements = this.transactionMode ? new ClientStatements(tenant.id) : null;
      this.fence = {
        ownSchema: tenant.schema,
        sharedSchemas: this.deps.config.tenancy.sharedSchemas,
        tenantGuc: this.deps.config.tenancy.tenantGuc,
        policy: fencePolicy(this.deps.config.policy, tenant.id, (tenant.statementTimeoutMs ?? 0) > 0 ? ['statement_timeout'] : []),
      };
      if (this.isClosed()) return;
      // Pinning once at connect checks the schema and the client's settings, and yields the
      // ParameterStatus values the client expects; in transaction mode the backend goes back at once.
      const backend = await this.bindBackend(tenant);
      if (backend === null) return;
      const params = new Map(backend.params);
      if (this.transactionMode) this.releaseBackend();
      this.becomeReady(params);
    } catch (error) {
      this.failAuthentication(error);
    }
  }

  /** Acquires a backend for this client's tenant and makes sure it is pinned with its settings. */
  private async bindBackend(tenant: Tenant): Promise<BackendConnection | null> {
    const backend = await this.deps.pool.acquire(tenant.id);
    if (this.isClosed()) {
      this.deps.pool.release(backend, { reusable: true, reset: false });
      return null;
    }
    this.backend = backend;
    backend.bind(this);
    if (!this.holdsPin(backend, tenant)) {
      const pin = pinSql(this.deps.config.tenancy, tenant, this.settings);
      const discard = backend.pinnedTenant !== null || backend.dirty;
      if (discard) backend.markReset();
      await backend.runInternal(discard ? ['DISCARD ALL', pin] : [pin], this.deps.config.pool.resetTimeoutMs);
      backend.pinnedTenant = tenant.id;
      backend.settingsKey = this.settingsKey;
    }
    this.startBinding(backend, tenant);
    return backend;
  }

  /** The backend is pinned to this tenant with this client's settings and nothing left behind. */
  private holdsPin(backend: BackendConnection, tenant: Tenant): boolean {
    return backend.pinnedTenant === tenant.id && !backend.dirty && backend.settingsKey === this.settingsKey;
  }

  /** Transaction pooling, common case: an idle backend already pinned for this client, taken at once. */
  private bindReadyBackend(tenant: Tenant): BackendConnection | null {
    const backend = this.deps.pool.tryAcquirePinned(tenant.id, (b) => this.holdsPin(b, tenant));
    if (backend === null) return null;
    this.backend = backend;
    backend.bind(this);
    this.startBinding(backend, tenant);
    return backend;
  }

  private startBinding(backend: BackendConnection, tenant: Tenant): void {
    // Postgres 18+ reports search_path: it must be exactly the pin, now and until release.
    this.pinnedSearchPath ??= expectedSearchPath(this.deps.config.tenancy, tenant);
    const reported = backend.params.get('search_path');
    if (reported !== undefined && reported !== this.pinnedSearchPath) throw new PinBreach('search_path');
    // Read after the pin ran: its SET ROLE (tenancy.roleTemplate) has already been reported, so
    // only a later change, which the client caused, trips checkPin.
    this.pinnedSuperuser = backend.params.get('is_superuser');
    this.pendingSets = [];
    this.bindingFailed = false;
    this.bindingDirty = false;
    this.unnamedForeign = this.transactionMode;
    this.tracker.clear();
  }

  /** Transaction pooling: hands the backend back once a transaction is over. */
  private releaseBackend(): void {
    const backend = this.backend;
    if (backend === null) return;
    this.backend = null;
    if (!this.bindingFailed && this.pendingSets.length > 0) {
      for (const { name, value } of this.pendingSets) {
        const initial = this.startupSettings.get(name);
        if (value !== null) this.settings.set(name, value);
        else if (initial !== undefined) this.settings.set(name, initial);
        else this.settings.delete(name);
      }
      this.settingsKey = settingsKey(this.settings);
    }
    if (this.pendingSets.length > 0 || this.bindingDirty) backend.dirty = true;
    const reset = backend.dirty || this.deps.config.pool.reset === 'always';
    this.deps.pool.release(backend, { reusable: true, reset });
  }

  private isClosed(): boolean {
    return this.step === 'closed';
  }

  private becomeReady(params: ReadonlyMap<string, string>): void {
    if (this.startupTimer !== null) clearTimeout(this.startupTimer);
    this.startupTimer = null;
    this.key = this.deps.cancels.issue(this);
    const out: Buffer[] = [build.AUTHENTICATION_OK];
    for (const [name, value] of params) out.push(build.parameterStatus(name, value));
    out.push(build.backendKeyData(this.key.processId, this.key.secretKey), build.readyForQuery('I'));
    this.writeClient(out);
    this.step = 'ready';
    this.deps.metrics.clientConnection('accepted');
    this.log.info('client connected');
    this.socket.resume();
  }

  private failAuthentication(error: unknown): void {
    if (this.step === 'binding') this.countRefusal(error);
    if (error instanceof AuthError) {
      this.log.warn({ reason: error.reason }, 'authentication failed');
      this.fail(clientErrors.authFailed(error.sqlstate, error.message));
    } else if (error instanceof TenantRefused) {
      this.log.warn({ reason: error.reason }, 'tenant refused');
      this.fail(clientErrors.tenantRefused(error.sqlstate, error.message));
    } else if (error instanceof StartupParamError) {
      this.fail(error.fields);
    } else if (error instanceof PoolTimeoutError) {
      this.fail(clientErrors.poolTimeout(error.waitedMs));
    } else if (error instanceof BackendUnavailableError) {
      this.log.error({ err: error.message }, 'backend unavailable');
      this.fail(clientErrors.backendUnavailable());
    } else if (error instanceof PinBreach) {
      this.deps.metrics.tripwire(error.what);
      this.fail(clientErrors.tripwire(error.what), false);
    } else if (error instanceof BackendError && error.sqlstate === '3F000' && this.tenant !== null) {
      this.log.error('tenant schema missing');
      this.fail(clientErrors.tenantSchemaMissing(this.tenant.id));
    } else if (error instanceof BackendError && this.tenant !== null && isTenantRoleError(this.deps.config.tenancy, error.sqlstate)) {
      this.log.error({ err: error.message }, 'tenant role unusable');
      this.fail(clientErrors.tenantRoleUnusable(this.tenant.id, error.message));
    } else if (error instanceof BackendError) {
      // The backend refused a session setting the client asked for (e.g. an unknown TimeZone).
      this.fail(clientErrors.invalidSessionSetting(error.message));
    } else {
      this.crash(error);
    }
  }

  /** One count per refused connection, by why it was refused. */
  private countRefusal(error: unknown): void {
    const m = this.deps.metrics;
    if (error instanceof AuthError) {
      m.clientConnection('auth_failed');
      m.authFailure(error.reason);
    } else if (error instanceof TenantRefused) {
      m.clientConnection('tenant_refused');
      m.authFailure(error.reason);
    } else if (error instanceof BackendError && error.sqlstate === '3F000') {
      m.clientConnection('tenant_refused');
      m.authFailure('tenant_schema_missing');
    } else if (error instanceof BackendError && isTenantRoleError(this.deps.config.tenancy, error.sqlstate)) {
      m.clientConnection('tenant_refused');
      m.authFailure('tenant_role_unusable');
    } else if (error instanceof PoolTimeoutError || error instanceof BackendUnavailableError) {
      m.clientConnection('backend_unavailable');
    } else {
      m.clientConnection('startup_refused');
    }
  }

  // ---- client → backend -------------------------------------------------------------------

  /** Ready-state client messages: relayed at once when a backend is bound, else queued for one. */
  private onReadyMessages(messages: readonly FramedMessage[]): void {
    if (this.backend !== null && !this.acquiring) {
      this.relayToBackend(messages);
      return;
    }
    if (!this.acquiring && this.queued.length === 0 && messages[0]?.type !== F.Terminate) {
      let ready: BackendConnection | null;
      try {
        ready = this.bindReadyBackend(this.tenant as Tenant);
      } catch (error) {
        this.failAuthentication(error);
        return;
      }
      if (ready !== null) {
        this.relayToBackend(messages);
        return;
      }
    }
    for (const msg of messages) {
      if (msg.type === F.Terminate && this.queued.length === 0 && !this.acquiring) {
        this.close();
        return;
      }
      this.queued.push(msg);
      this.queuedBytes += msg.bytes.length;
    }
    if (this.queuedBytes > QUEUED_BYTES_BEFORE_PAUSE) this.socket.pause();
    if (!this.acquiring) void this.acquireForQueued();
  }

  /** Transaction pooling: the first message of a transaction binds a backend for it. */
  private async acquireForQueued(): Promise<void> {
    this.acquiring = true;
    // Reading goes on while the backend is acquired (usually at once): pausing and resuming the
    // socket for every transaction costs more than it saves. A client that piles up messages
    // while it waits is paused instead.
    let backend: BackendConnection | null;
    try {
      backend = await this.bindBackend(this.tenant as Tenant);
    } catch (error) {
      this.acquiring = false;
      this.failAuthentication(error);
      return;
    }
    this.acquiring = false;
    if (backend === null || this.isClosed()) return;
    const queued = this.queued;
    this.queued = [];
    const wasPaused = this.queuedBytes > QUEUED_BYTES_BEFORE_PAUSE;
    this.queuedBytes = 0;
    this.relayToBackend(queued);
    if (wasPaused && this.step === 'ready' && !backend.needsDrain) this.socket.resume();
  }

  private expect(kind: Expected, drop = false): void {
    if (this.transactionMode) this.tracker.expect(kind, drop);
  }

  private relayToBackend(messages: readonly FramedMessage[]): void {
    const backend = this.backend;
    if (backend === null) return;
    const out: Buffer[] = [];
    if (this.unnamedForeign) {
      // Dropped first thing, while the server is sure to run it (an error in this client's batch
      // would make it skip a later Close, and leave the previous holder's statement bindable).
      this.unnamedForeign = false;
      out.push(closeStatementMessage(''));
      this.expect('close', true);
    }
    for (const msg of messages) {
      if (this.skippingToSync && msg.type !== F.Sync) continue;
      switch (msg.type) {
        case F.Query: {
          this.syncsSent++;
          this.queryTimer?.sent();
          const rejection = this.inspect(queryText(msg.bytes));
          if (rejection === null) {
            appendBytes(out, this.takeRewritten() ?? msg.bytes);
            this.expect('query');
          } else {
            out.push(this.standIn(rejection), serialize.sync());
            this.expect('execute');
            this.expect('sync');
          }
          break;
        }
        case F.Parse:
          this.extendedOpen = true;
          this.relayParse(msg.bytes, out, backend);
          break;
        case F.Bind:
          this.extendedOpen = true;
          this.relayBind(msg.bytes, out, backend);
          break;
        case F.Describe:
          this.extendedOpen = true;
          this.relayDescribe(msg.bytes, out, backend);
          break;
        case F.Close:
          this.extendedOpen = true;
          this.relayClose(msg.bytes, out);
          break;
        case F.Execute:
          this.extendedOpen = true;
          appendBytes(out, msg.bytes);
          this.expect('execute');
          break;
        case F.Sync:
          this.syncsSent++;
          this.queryTimer?.sent();
          this.extendedOpen = false;
          this.skippingToSync = false;
          appendBytes(out, msg.bytes);
          this.expect('sync');
          break;
        case F.Flush:
        case F.CopyData:
        case F.CopyDone:
        case F.CopyFail:
          appendBytes(out, msg.bytes);
          break;
        case F.FunctionCall:
          // Fast-path calls name functions by OID, out of the guard's sight (set_config included).
          this.syncsSent++;
          this.queryTimer?.sent();
          this.tenantMetrics?.statement();
          this.tenantMetrics?.rejected('function_call');
          out.push(this.standIn(clientErrors.functionCallRefused()), serialize.sync());
          this.expect('execute');
          this.expect('sync');
          break;
        case F.Terminate:
          backend.writeAll(out);
          this.close();
          return;
        default:
          backend.writeAll(out);
          this.fail(clientErrors.protocolViolation(`unexpected message type ${JSON.stringify(String.fromCharCode(msg.type))}`));
          return;
      }
    }
    backend.writeAll(out);
    if (backend.needsDrain) {
      this.socket.pause();
      backend.onceDrained(() => {
        if (this.step === 'ready' && !this.acquiring) this.socket.resume();
      });
    }
  }

  private relayParse(original: Buffer, out: Buffer[], backend: BackendConnection): void {
    const { name, sql } = parseMessage(original);
    const rejection = this.inspect(sql);
    if (rejection !== null) {
      out.push(this.standIn(rejection));
      this.expect('execute');
      this.skippingToSync = true;
      return;
    }
    const bytes = this.takeRewritten() ?? original;
    if (this.statements === null || name === '') {
      appendBytes(out, bytes);
      this.expect('parse');
      return;
    }
    // Transaction pooling: the statement is prepared under its server-side name, replacing any
    // copy this backend holds (Close of a missing statement is not an error). Always closed first:
    // `backend.prepared` forgets everything after an error, yet the server may still hold it.
    const entry = this.statements.register(name, bytes);
    out.push(closeStatementMessage(entry.serverName));
    this.expect('close', true);
    out.push(parseMessageFor(entry.serverName, entry.body));
    this.expect('parse');
    backend.prepared.add(entry.serverName);
  }

  private relayBind(bytes: Buffer, out: Buffer[], backend: BackendConnection): void {
    if (this.statements !== null) {
      const statement = bindStatementName(bytes);
      const entry = statement === '' ? undefined : this.statements.lookup(statement);
      if (entry !== undefined) {
        this.ensurePrepared(entry, out, backend);
        out.push(renameBind(bytes, entry.serverName));
        this.expect('bind');
        return;
      }
    }
    appendBytes(out, bytes);
    this.expect('bind');
  }

  private relayDescribe(bytes: Buffer, out: Buffer[], backend: BackendConnection): void {
    if (this.statements !== null) {
      const target = describedTarget(bytes);
      const entry = target.kind === 'S' && target.name !== '' ? this.statements.lookup(target.name) : undefined;
      if (entry !== undefined) {
        this.ensurePrepared(entry, out, backend);
        out.push(describeStatementMessage(entry.serverName));
        this.expect('describe');
        return;
      }
    }
    appendBytes(out, bytes);
    this.expect('describe');
  }

  private relayClose(bytes: Buffer, out: Buffer[]): void {
    if (this.statements !== null) {
      const target = describedTarget(bytes);
      if (target.kind === 'S' && target.name !== '') {
        // Other clients of the tenant may use the server-side statement: only the client's name goes.
        this.statements.forget(target.name);
        out.push(closeStatementMessage('pgfence_none'));
        this.expect('close');
        return;
      }
    }
    appendBytes(out, bytes);
    this.expect('close');
  }

  /** Prepares a client's statement on this backend if it does not hold it yet. */
  private ensurePrepared(entry: { serverName: string; body: Buffer }, out: Buffer[], backend: BackendConnection): void {
    if (backend.prepared.has(entry.serverName)) return;
    out.push(closeStatementMessage(entry.serverName), parseMessageFor(entry.serverName, entry.body));
    this.expect('close', true);
    this.expect('parse', true);
    backend.prepared.add(entry.serverName);
  }

  /** The guard's verdict on one SQL text; the error to send instead, or null to forward. */
  private inspect(sql: SqlText): build.ErrorFields | null {
    this.tenantMetrics?.statement();
    // The guard must read exactly the bytes the server will: no lossy decoding of bad UTF-8.
    if (!sql.validUtf8) {
      this.tenantMetrics?.rejected('invalid_encoding');
      return clientErrors.invalidEncoding();
    }
    const { analysis, verdict } = this.deps.guard.inspect(sql.text, this.fence as TenantFence);
    if (!verdict.allowed) {
      this.log.warn({ audit: 'statement_rejected', reason: verdict.reason, fingerprint: queryFingerprint(sql.text) }, verdict.message);
      this.tenantMetrics?.rejected(verdict.reason);
      return clientErrors.statementRejected(verdict.sqlstate, verdict.message);
    }
    if (this.transactionMode) {
      const refused = this.noteSessionEffects(analysis.sessionEffects);
      if (refused !== null) return refused;
    }
    if (analysis.channels.length > 0) return this.mapChannels(sql, analysis.channels);
    return null;
  }

  /** Rewrites LISTEN/UNLISTEN/NOTIFY to the tenant's private channels (see channels.ts). */
  private mapChannels(sql: SqlText, statements: readonly ChannelStatement[]): build.ErrorFields | null {
    const text = sql.message.subarray(sql.start, sql.end);
    const rewritten = rewriteChannelStatements(text, statements, (this.tenant as Tenant).id);
    if (!Buffer.isBuffer(rewritten)) return clientErrors.channelNameTooLong(rewritten.tooLong);
    this.rewritten = withSqlText(sql.message, sql.start, sql.end, rewritten);
    return null;
  }

  /** The message as rewritten by the last inspect(), once. */
  private takeRewritten(): Buffer | null {
    const rewritten = this.rewritten;
    this.rewritten = null;
    return rewritten;
  }

  /** Transaction pooling: settings are remembered and replayed; state that cannot follow the client is refused. */
  private noteSessionEffects(effects: readonly SessionEffect[]): build.ErrorFields | null {
    for (const effect of effects) {
      if (effect.kind === 'unsupported') {
        this.tenantMetrics?.rejected('transaction_pooling');
        return clientErrors.notInTransactionPooling(effect.what);
      }
    }
    for (const effect of effects) if (effect.kind === 'set') this.pendingSets.push({ name: effect.name, value: effect.value });
    return null;
  }

  /**
   * Stands in for a refused message: an Execute of a portal that cannot exist makes the server
   * itself fail at this point of the batch, so the transaction state and the ordering of every
   * other reply stay exactly what Postgres would produce; its error is swapped for ours.
   */
  private standIn(error: build.ErrorFields): Buffer {
    const marker = `pgfence_rejected_${this.id}_${++this.rejectionCounter}`;
    this.rejections.push({ marker, error, syncNumber: this.syncsSent + (this.extendedOpen || this.skippingToSync ? 1 : 0) });
    return serialize.execute({ portal: marker });
  }

  // ---- backend → client -------------------------------------------------------------------

  onBackendMessages(messages: readonly FramedMessage[]): void {
    const out: Buffer[] = [];
    for (const msg of messages) {
      if (this.transactionMode && this.tracker.onBackendMessage(msg.type)) continue;
      switch (msg.type) {
        case B.ReadyForQuery:
          this.syncsDone++;
          this.queryTimer?.answered();
          while (this.rejections.length > 0 && (this.rejections[0] as PendingRejection).syncNumber <= this.syncsDone) this.rejections.shift();
          appendBytes(out, msg.bytes);
          break;
        case B.NotificationResponse: {
          const mine = clientNotification(msg.bytes, (this.tenant as Tenant).id, this.backend?.processId ?? 0, this.key?.processId ?? 0);
          if (mine !== null) appendBytes(out, mine);
          break;
        }
        case B.ErrorResponse:
          this.bindingFailed = true;
          if (this.backend !== null && this.statements !== null) this.backend.prepared.clear(); // unsure which survived
          appendBytes(out, this.rewriteError(msg.bytes));
          break;
        case B.ParameterStatus: {
          const breach = this.checkPin(msg.bytes);
          if (breach !== null) {
            this.deps.metrics.tripwire(breach);
            this.writeClient(out);
            this.fail(clientErrors.tripwire(breach), false);
            return;
          }
          this.bindingDirty = true;
          appendBytes(out, msg.bytes);
          break;
        }
        default:
          appendBytes(out, msg.bytes);
      }
    }
    this.writeClient(out);
    if (this.transactionMode && this.backendIdle()) this.releaseBackend();
    if (this.draining && this.betweenTransactions()) this.terminate();
  }

  /** The bound backend has answered everything and is outside any transaction. */
  private backendIdle(): boolean {
    const backend = this.backend;
    return (
      backend !== null &&
      backend.txnStatus === 'I' &&
      this.syncsSent === this.syncsDone &&
      !this.extendedOpen &&
      !this.skippingToSync &&
      this.tracker.idle
    );
  }

  private rewriteError(bytes: Buffer): Buffer {
    const pending = this.rejections[0];
    if (pending === undefined) return bytes;
    const fields = errorFields(bytes);
    if (fields.get('C') !== '34000' || !(fields.get('M') ?? '').includes(pending.marker)) return bytes;
    this.rejections.shift();
    return build.errorResponse(pending.error);
  }

  /** Tripwire behind the guard: a reported change to the pinned identity closes everything. */
  private checkPin(bytes: Buffer): string | null {
    const [name, value] = parameterStatus(bytes);
    if (name === 'session_authorization' && this.backend !== null && value !== this.backend.target.user) return 'session_authorization';
    if (name === 'search_path' && this.pinnedSearchPath !== undefined && value !== this.pinnedSearchPath) return 'search_path';
    // SET ROLE is not reported itself, but the is_superuser it implies is.
    if (name === 'is_superuser' && this.pinnedSuperuser !== undefined && value !== this.pinnedSuperuser) return 'role';
    return null;
  }

  onBackendClosed(error: Error | undefined): void {
    if (this.step === 'closed') return;
    this.queryTimer?.clear();
    this.log.warn({ err: error?.message }, 'server connection lost');
    const backend = this.backend;
    this.backend = null;
    if (backend !== null) this.deps.pool.release(backend, { reusable: false, reset: false });
    this.fail(clientErrors.backendLost());
  }

  // ---- endings ----------------------------------------------------------------------------

  private writeClient(parts: readonly Buffer[]): void {
    if (parts.length === 0 || this.socket.destroyed) return;
    this.socket.cork();
    try {
      let bytes = 0;
      for (const part of parts) {
        bytes += part.length;
        this.socket.write(part);
      }
      this.deps.metrics.clientBytesOut(bytes);
    } finally {
      this.socket.uncork();
    }
    const backend = this.backend;
    if (this.socket.writableNeedDrain && backend !== null) {
      backend.pause();
      if (!this.awaitingDrain) {
        this.awaitingDrain = true;
        // Resumes the backend this client holds then, if any: one it paused and released
        // meanwhile was resumed by the pool (unbind) and may be serving another client now.
        this.socket.once('drain', () => {
          this.awaitingDrain = false;
          this.backend?.resume();
        });
      }
    }
  }

  /** Sends a FATAL error and closes. `reuseBackend` false when the backend is known bad. */
  private fail(fields: build.ErrorFields, reuseBackend = true): void {
    if (this.step === 'closed') return;
    if ((this.step === 'startup' || this.step === 'password') && (fields.sqlstate === '08P01' || fields.sqlstate === '0A000')) {
      this.deps.metrics.clientConnection('protocol_error');
    }
    if (!this.socket.destroyed) this.socket.write(build.errorResponse(fields));
    this.close(reuseBackend);
  }

  private crash(error: unknown): void {
    this.log.error({ err: error instanceof Error ? error.stack : String(error) }, 'internal error in client session');
    this.fail(clientErrors.internal(), false);
  }

  private onClientGone(): void {
    if (this.step !== 'closed') this.log.info('client disconnected');
    this.close();
  }

  private close(reuseBackend = true): void {
    if (this.step === 'closed') return;
    this.queryTimer?.clear();
    this.step = 'closed';
    if (this.startupTimer !== null) clearTimeout(this.startupTimer);
    if (this.key !== null) this.deps.cancels.forget(this.key.processId);
    const backend = this.backend;
    this.backend = null;
    if (backend !== null) {
      const idle = this.syncsSent === this.syncsDone && !this.extendedOpen && backend.txnStatus === 'I' && this.tracker.idle;
      if (this.transactionMode && reuseBackend && idle) {
        this.backend = backend;
        this.releaseBackend();
      } else {
        this.deps.pool.release(backend, { reusable: reuseBackend && idle, reset: true });
      }
    }
    this.socket.end();
    this.socket.destroySoon();
    // A client that never reads would keep the socket (and shutdown) waiting for a flush forever.
    const socket = this.socket;
    const giveUp = setTimeout(() => socket.destroy(), CLOSE_FLUSH_MS);
    giveUp.unref();
    socket.once('close', () => clearTimeout(giveUp));
  }
}

/** Appends a message, merging it into the previous part when it directly follows it in memory. */
function appendBytes(out: Buffer[], bytes: Buffer): void {
  const last = out[out.length - 1];
  if (last !== undefined && last.buffer === bytes.buffer && last.byteOffset + last.length === bytes.byteOffset) {
    out[out.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + bytes.length);
  } else {
    out.push(bytes);
  }
}
