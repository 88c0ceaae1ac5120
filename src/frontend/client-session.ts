import type net from 'node:net';
import type { Logger } from 'pino';
import type { ConsoleSession } from '../admin/console.js';
import type { ClientState, QueryTimer, Traffic } from '../admin/index.js';
import { type Binding, PinBreach } from '../binding/binding.js';
import * as build from '../protocol/build.js';
import { Frontend as F, PROTOCOL_3_0 } from '../protocol/codes.js';
import { type FramedMessage, FramingError, MessageFramer } from '../protocol/framer.js';
import { frontendMessageProblem } from '../protocol/frontend-checks.js';
import { MAX_PASSWORD_MESSAGE, StartupReader, UnreadableStartupPacket } from '../protocol/startup.js';
import type { Relay } from '../relay/relay.js';
import { PlacementRefused } from '../placement/errors.js';
import { DEFAULT_TARGET, placementLabel } from '../placement/placement.js';
import type { HeldPool } from '../placement/pools.js';
import type { BackendPool } from '../pool/pool.js';
import type { Tenant } from '../tenancy/index.js';
import type { ClientChannels } from '../relay/client-channels.js';
import { clientNotification } from './channels.js';
import { ClientConnection, type ClientConnectionHandler } from './client-connection.js';
import { ConsoleConnection } from './console-connection.js';
import { clientErrors } from './errors.js';
import { type Authenticated, authenticate, holdFailure, refusal } from './handshake.js';
import { isLoopback } from './peer.js';
import { pinSql } from './pin.js';
import type { SessionDeps } from './session-deps.js';
import { TenantParts, type TenantPartsHost } from './tenant-parts.js';

/** Where a client connection is in its life; one `switch` on it routes every byte. */
type Step = 'startup' | 'password' | 'authenticating' | 'ready' | 'console' | 'closed';

let nextSessionId = 1;


/**
 * One client connection through its life: startup and authentication (handshake.ts), then every
 * message checked where it is framed and handed to the binding of its pool mode, which relays it
 * (relay/) to a backend pinned to the client's tenant. An exception ends this session alone.
 */
export class ClientSession implements TenantPartsHost, ClientConnectionHandler {
  readonly id = nextSessionId++;
  private step: Step = 'startup';
  /** The child logger carrying this session's identity, made on its first line (most sessions log none). */
  private logger: Logger | null = null;
  private readonly conn: ClientConnection;
  /** Until the startup packet is read. */
  private startup: StartupReader | null = new StartupReader();
  private readonly framer: MessageFramer;
  private startupTimer: NodeJS.Timeout | null = null;
  /** From the startup packet until authentication. */
  private params: ReadonlyMap<string, string> | null = null;
  /** What the admin console shows of the startup packet. */
  private database: string | undefined;
  private applicationName: string | undefined;
  private tenant: Tenant | null = null;
  private user: string | undefined;
  /** BackendKeyData; processId 0 until it is issued. */
  private processId = 0;
  private secretKey = 0;
  private parts: TenantParts | null = null;
  private console: ConsoleConnection | null = null;
  private queryTimer: QueryTimer | null = null;
  /** The pool of the tenant's placement, held until the session ends. */
  private heldPool: HeldPool | null = null;
  /** Transaction pooling: notifications held while the client is inside a transaction; null when none are. */
  private heldNotifications: Buffer[] | null = null;
  /** Client messages that arrived while a reply waits (see onServerBatch); null when none waits. */
  private held: FramedMessage[] | null = null;
  private draining = false;
  /** What a drained session is told when it ends: the first reason given (shutdown, a reload that removed its target, a move). */
  private drainFields: build.ErrorFields | null = null;
  private readonly connectedAtMs = Date.now();
  /** Where this connection's bytes are counted: no tenant until login, then its tenant's. */
  private traffic: Traffic;

  constructor(
    private readonly socket: net.Socket,
    private readonly deps: SessionDeps,
    /** Told once the socket has closed (the server's set of live sessions). */
    private readonly gone: ((session: ClientSession) => void) | null = null,
  ) {
    this.traffic = deps.metrics.unattributed;
    this.framer = new MessageFramer(MAX_PASSWORD_MESSAGE);
    // Read now: Node keeps the peer's address once read, so a line logged after the socket closed still has it.
    void socket.remotePort;
    this.conn = new ClientConnection(socket, this);
  }

  get log(): Logger {
    if (this.deps.log.level === 'silent') return this.deps.log;
    this.logger ??= this.deps.log.child(this.logBindings());
    return this.logger;
  }

  /** What this session's log lines carry, as far as it is known. */
  private logBindings(): Record<string, unknown> {
    const bindings: Record<string, unknown> = { conn: this.id, peer: `${this.socket.remoteAddress}:${this.socket.remotePort}` };
    if (this.tenant !== null) {
      bindings['tenant'] = this.tenant.id;
      bindings['user'] = this.user;
    } else if (this.step === 'console') {
      bindings['console'] = true;
      bindings['user'] = this.user;
    }
    return bindings;
  }

  private get relay(): Relay | null {
    return this.parts?.relay ?? null;
  }

  private get binding(): Binding | null {
    return this.parts?.binding ?? null;
  }

  private get channels(): ClientChannels | null {
    return this.parts?.channels ?? null;
  }

  /** The client's BackendKeyData process id (0 before it is issued). */
  get clientPid(): number {
    return this.processId;
  }

  get currentTenant(): Tenant {
    if (this.tenant === null) throw new Error('no tenant yet');
    return this.tenant;
  }

  get currentPool(): HeldPool {
    if (this.heldPool === null) throw new Error('no pool yet');
    return this.heldPool;
  }

  /** The statement that pins this client's session again after its RESET ALL / DISCARD ALL. */
  repinSql(): string {
    const parts = this.parts;
    if (parts === null) throw new Error('no tenant session to pin');
    return pinSql(this.deps.config.tenancy, parts.tenant, parts.settings.startup);
  }

  start(): void {
    this.startupTimer = setTimeout(() => this.fail(clientErrors.startupTimeout()), this.deps.config.listen.startupTimeoutMs);
  }

  get closed(): boolean {
    return this.step === 'closed';
  }

  get tenantId(): string | null {
    return this.tenant?.id ?? null;
  }

  /** Ends the session from outside (shutdown, KILL TENANT). */
  terminate(fields: build.ErrorFields = clientErrors.shuttingDown()): void {
    this.fail(fields);
  }

  /**
   * End the session as soon as it is between transactions (at once if it is now), with `fields`:
   * shutdown, a reload that removed the tenant's backend target, or a move. The first reason stays.
   */
  drain(fields: build.ErrorFields = clientErrors.shuttingDown()): void {
    this.draining = true;
    this.drainFields ??= fields;
    if (this.betweenTransactions()) this.terminate(this.drainFields);
  }

  /**
   * A reload removed the backend target of this session's tenant: the session ends once its
   * transaction is over, refused as a fresh connect is (08004, unknown target).
   */
  targetRemoved(): void {
    const tenant = this.tenant;
    if (tenant === null) return;
    const refused = new PlacementRefused('unknown_target', tenant.id, tenant.placement ?? { target: DEFAULT_TARGET, database: null });
    this.log.warn({ target: refused.placement.target }, 'backend target removed by a reload; ending the session after its transaction');
    this.drain(clientErrors.placementRefused(refused.sqlstate, refused.message, refused.detail));
  }

  /** The backend target the session's tenant is served from; null before login and in the console. */
  get target(): string | null {
    return this.heldPool?.target ?? null;
  }

  /** The pool this session takes its backends from now (the bound backend's, else its placement's); null before login. */
  get pool(): BackendPool | null {
    return this.binding?.boundPool ?? this.heldPool?.current ?? null;
  }

  /** Holds a backend, or is taking one: a tenant's move waits until none of its sessions does. */
  get holdsBackend(): boolean {
    return this.binding?.holdsBackend === true;
  }

  /**
   * After the tenant's pause for a move: where it lives now. A transaction-pooling session
   * between transactions follows it (its next transaction takes a backend there); a session
   * bound to a server of the old placement (session pooling, or in a transaction) ends. Resolves
   * once its LISTENs are listened on there (before its next transaction may run).
   */
  rehome(tenant: Tenant): Promise<void> {
    const current = this.tenant;
    if (current === null || this.closed) return Promise.resolve();
    const label = (t: Tenant): string => placementLabel(t.placement ?? { target: DEFAULT_TARGET, database: null });
    if (label(current) === label(tenant)) return Promise.resolve();
    if (this.step !== 'ready' || this.deps.config.pool.mode !== 'transaction' || this.holdsBackend) {
      this.terminate(clientErrors.tenantMoved(tenant.id));
      return Promise.resolve();
    }
    let next: HeldPool;
    try {
      next = this.deps.pools.forTenant(tenant);
    } catch (error) {
      this.refuse(error, false);
      return Promise.resolve();
    }
    this.heldPool?.letGo();
    this.heldPool = next;
    this.tenant = tenant;
    this.log.info({ from: label(current), to: label(tenant) }, 'session follows its tenant to its new placement');
    return (this.channels?.relisten() ?? Promise.resolve()).catch((error: unknown) => {
      this.log.warn({ err: error }, 'could not listen on the new placement: the client\'s LISTENs there are lost');
    });
  }

  private betweenTransactions(): boolean {
    return this.step !== 'ready' || this.binding === null || this.binding.betweenTransactions;
  }

  /** Where the session is, in PgBouncer's terms: `active` holds a backend, `idle` does not. */
  get clientState(): ClientState {
    switch (this.step) {
      case 'startup':
      case 'password':
      case 'authenticating':
        return 'login';
      case 'console':
        return 'console';
      case 'ready':
      case 'closed':
        if (this.binding?.waiting === true) return 'waiting';
        return (this.relay?.backend ?? null) !== null ? 'active' : 'idle';
    }
  }

  /** What the admin console shows of this session. */
  describe(): ConsoleSession {
    return {
      id: this.id,
      tenant: this.tenant?.id ?? null,
      user: this.user,
      database: this.database ?? this.user ?? null,
      applicationName: this.applicationName ?? null,
      addr: this.socket.remoteAddress ?? null,
      port: this.socket.remotePort ?? null,
      localAddr: this.socket.localAddress ?? null,
      localPort: this.socket.localPort ?? null,
      state: this.clientState,
      connectedAt: new Date(this.connectedAtMs),
      backendId: this.relay?.backend?.id ?? null,
      tls: this.conn.encrypted,
    };
  }

  /** A CancelRequest with this client's key: sent to the backend running its statement, if any. */
  cancel(): void {
    if (this.relay?.busy === true) this.relay.backend?.cancel();
  }

  // ---- client bytes ---------------------------------------------------------------------

  onClientData(chunk: Buffer): void {
    this.traffic.received += chunk.length;
    try {
      switch (this.step) {
        case 'startup':
          this.onStartupBytes(chunk);
          return;
        case 'password':
        case 'authenticating':
        case 'ready':
        case 'console': {
          // A fresh array per chunk: nothing of a chunk (the password message's token) outlives it.
          const messages: FramedMessage[] = [];
          this.framer.push(chunk, messages);
          this.onMessages(messages);
          return;
        }
        case 'closed':
          return;
      }
    } catch (error) {
      if (!(error instanceof FramingError)) this.crash(error);
      else if (!(error instanceof UnreadableStartupPacket)) this.fail(clientErrors.protocolViolation(error.message));
      else {
        // As Postgres does with a startup packet it cannot read: closed without a word (a client that
        // connects and sends Terminate at once must not hear a FATAL it cannot place).
        this.log.info({ err: error }, 'unreadable startup packet');
        this.deps.metrics.clientConnection('protocol_error');
        this.close();
      }
    }
  }

  private onStartupBytes(chunk: Buffer | null): void {
    const startup = this.startup;
    if (startup === null) return;
    const packet = startup.next(chunk);
    if (packet === null) return;
    switch (packet.kind) {
      case 'ssl':
        if (this.deps.tls !== null && !this.conn.encrypted) {
          // Bytes sent after SSLRequest but before the handshake would bypass encryption (CVE-2021-23214).
          if (startup.takeRest().length > 0) {
            this.fail(clientErrors.protocolViolation('data received after SSLRequest before the TLS handshake'));
            return;
          }
          this.conn.upgradeToTls(this.deps.tls);
          return;
        }
        this.conn.write([build.ENCRYPTION_NOT_SUPPORTED]);
        this.onStartupBytes(null);
        return;
      case 'gssenc':
        this.conn.write([build.ENCRYPTION_NOT_SUPPORTED]);
        this.onStartupBytes(null);
        return;
      case 'cancel':
        this.deps.cancels.cancel(packet.processId, packet.secretKey);
        this.close();
        return;
      case 'unsupported-version':
        this.fail(clientErrors.unsupportedProtocol(packet.major, packet.minor));
        return;
      case 'startup': {
        this.params = packet.params;
        this.user = packet.params.get('user');
        this.database = packet.params.get('database');
        this.applicationName = packet.params.get('application_name');
        const refused = this.transportRefusal();
        if (refused !== null) {
          this.deps.metrics.clientConnection('startup_refused');
          this.fail(refused);
          return;
        }
        this.step = 'password';
        // A client asking for 3.x (x > 0) or for protocol options goes on with 3.0 and none of them.
        const negotiate = packet.minor > 0 || packet.protocolOptions.length > 0;
        this.conn.write(negotiate ? [build.negotiateProtocolVersion(PROTOCOL_3_0, packet.protocolOptions), build.AUTHENTICATION_CLEARTEXT] : [build.AUTHENTICATION_CLEARTEXT]);
        const rest = startup.takeRest();
        this.startup = null;
        if (rest.length > 0) this.onClientData(rest);
        return;
      }
    }
  }

  /** A JWT travels only over TLS, or over loopback, unless the operator says otherwise. */
  private transportRefusal(): build.ErrorFields | null {
    if (this.conn.encrypted) return null;
    const listen = this.deps.config.listen;
    if (listen.requireTls) return clientErrors.tlsRequiredAlways();
    if (!listen.allowPlaintextJwt && !isLoopback(this.conn.remoteAddress)) return clientErrors.tlsRequired();
    return null;
  }

  private onMessages(messages: readonly FramedMessage[]): void {
    for (const msg of messages) {
      const problem = frontendMessageProblem(msg.type, msg.bytes);
      if (problem !== null) {
        this.fail(clientErrors.protocolViolation(problem));
        return;
      }
    }
    switch (this.step) {
      case 'password':
        this.onPassword(messages);
        return;
      case 'authenticating':
        if (messages.length > 0) this.fail(clientErrors.protocolViolation('messages sent before authentication completed'));
        return;
      case 'ready':
        if (this.held !== null) this.held.push(...messages);
        else this.binding?.send(messages);
        return;
      case 'console':
        this.console?.onMessages(messages);
        return;
      default:
        return;
    }
  }

  private onPassword(messages: readonly FramedMessage[]): void {
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
    const end = first.bytes.indexOf(0, 5);
    if (end !== first.bytes.length - 1) {
      this.fail(clientErrors.protocolViolation('password message is not one NUL-terminated string'));
      return;
    }
    this.step = 'authenticating';
    this.conn.pause();
    void this.admit(first.bytes.toString('utf8', 5, end));
  }

  /** Authenticates, binds a first backend (which checks the pin), and tells the client it may start. */
  private async admit(token: string): Promise<void> {
    try {
      const who = await authenticate(token, this.params ?? new Map<string, string>(), this.deps);
      if (this.closed) return;
      if (who.kind === 'console') this.openConsole(who.user);
      else await this.openTenantSession(who);
    } catch (error) {
      const throttled = await holdFailure(error, this.conn.remoteAddress, this.deps);
      this.refuse(error, true, throttled);
    }
  }

  private async openTenantSession(who: Authenticated & { kind: 'tenant' }): Promise<void> {
    const { deps } = this;
    let tenant = who.tenant;
    // Paused for a move: the connection waits, then is served where the tenant lives by then.
    for (let gate = deps.pauses?.whenServed(tenant.id) ?? null; gate !== null; gate = deps.pauses?.whenServed(tenant.id) ?? null) {
      await gate;
      if (this.closed) return;
      tenant = await deps.tenants.resolve(tenant.id);
    }
    this.tenant = tenant;
    this.params = null;
    this.heldPool = deps.pools.forTenant(tenant);
    this.user = who.user;
    this.logger = null; // the next line names the tenant and the user
    const tenantMetrics = deps.metrics.tenant(tenant.id);
    this.traffic = tenantMetrics;
    this.queryTimer = tenantMetrics.queryTimer();
    this.parts = new TenantParts(this, deps, tenant, who.fence, who.settings, tenantMetrics, this.queryTimer, this.id);
    const params = await this.parts.binding.open();
    if (params === null || this.closed) return;
    this.becomeReady(params);
  }

  private becomeReady(parameterStatuses: Buffer): void {
    this.clearStartupTimer();
    this.issueKey();
    this.writeClient([build.AUTHENTICATION_OK, parameterStatuses, build.backendKeyData(this.processId, this.secretKey), build.readyForQuery('I')]);
    this.step = 'ready';
    this.framer.limit(this.deps.config.listen.maxMessageBytes);
    this.deps.metrics.clientConnection('accepted');
    this.log.info('client connected');
    this.conn.resume();
  }

  /** The virtual database `pgfence`: the admin console, for tokens with the admin claim. */
  private openConsole(user: string | undefined): void {
    const ctx = this.deps.console;
    if (ctx === null) return;
    this.clearStartupTimer();
    this.user = user;
    this.params = null;
    this.step = 'console';
    this.logger = null; // the next line says console and names the user
    this.console = new ConsoleConnection(ctx, (parts) => this.writeClient(parts), (fields) => (fields ? this.fail(fields) : this.close()), this.log);
    this.issueKey();
    this.writeClient(ConsoleConnection.greeting(build.backendKeyData(this.processId, this.secretKey)));
    this.framer.limit(this.deps.config.listen.maxMessageBytes);
    this.deps.metrics.clientConnection('accepted');
    this.log.info('admin console opened');
    this.conn.resume();
  }

  // ---- relay and binding hosts ----------------------------------------------------------

  /** BackendKeyData for the client, registered for CancelRequests. */
  private issueKey(): void {
    const key = this.deps.cancels.issue(this);
    this.processId = key.processId;
    this.secretKey = key.secretKey;
  }

  writeClient(parts: readonly Buffer[]): void {
    this.conn.write(parts, true);
  }

  /**
   * The client is not reading: stop reading from it and from the backend serving it until it
   * drains. Resumes the backend it holds then, if any: one it held and released meanwhile was
   * resumed by the pool (unbind) and may be serving another client now.
   */
  onClientSlow(): void {
    this.relay?.backend?.pause();
    this.conn.pause();
    this.conn.onceDrained(() => {
      this.relay?.backend?.resume();
      this.resumeClient();
    });
  }

  onBreach(what: string): void {
    this.deps.metrics.tripwire(what);
    this.fail(clientErrors.tripwire(what), false);
  }

  onServerBatch(out: readonly Buffer[]): void {
    if (this.closed) return;
    const wait = this.binding?.afterServerBatch() ?? null;
    if (wait === null) {
      this.afterServerBatch(out);
      return;
    }
    // The reply waits, and so does everything the client sends meanwhile, so nothing overtakes it.
    this.conn.pause();
    this.held = [];
    void wait.then(() => {
      const held = this.held ?? [];
      this.held = null;
      if (this.closed) return;
      this.afterServerBatch(out);
      if (held.length > 0) this.onMessages(held);
      if (!this.conn.writableNeedDrain) this.resumeClient();
    });
  }

  private afterServerBatch(out: readonly Buffer[]): void {
    this.writeClient(out);
    const notifications = this.heldNotifications;
    if (notifications !== null && this.binding?.betweenTransactions === true) {
      this.heldNotifications = null;
      this.writeClient(notifications);
    }
    if (this.draining && this.betweenTransactions()) this.terminate(this.drainFields ?? undefined);
  }

  onBackendLost(error: Error | undefined): void {
    if (this.closed) return;
    this.log.warn({ err: error }, 'server connection lost');
    this.fail(clientErrors.backendLost(), false);
  }

  /**
   * A notification from the shared listener (transaction pooling), delivered between transactions
   * as Postgres delivers them, with the client's own channel name.
   */
  onNotification(serverMessage: Buffer): void {
    if (this.closed || this.tenant === null) return;
    const message = clientNotification(serverMessage, this.tenant.id, -1, 0);
    if (message === null) return;
    if (this.binding?.betweenTransactions === true && this.relay?.backend === null) this.writeClient([message]);
    else (this.heldNotifications ??= []).push(message);
  }

  failBinding(error: unknown): void {
    this.refuse(error, false);
  }

  pauseClient(): void {
    this.conn.pause();
  }

  resumeClient(): void {
    if (this.step === 'ready' && this.held === null) this.conn.resume();
  }

  clientTerminated(): void {
    this.close();
  }

  violation(what: string): void {
    this.fail(clientErrors.protocolViolation(what));
  }

  // ---- endings --------------------------------------------------------------------------

  /** Ends the session over an error from authentication or binding, with the FATAL it calls for. */
  private refuse(error: unknown, atConnect: boolean, throttled = false): void {
    const fields = refusal(error, { tenantId: this.tenant?.id ?? null, atConnect, throttled, placement: this.tenant?.placement ?? null }, this.deps);
    if (fields === null) this.crash(error);
    else this.fail(fields, !(error instanceof PinBreach)); // a backend that lost its pin is closed
  }

  /** Sends a FATAL error and closes. `reuseBackend` false when the backend is known bad. */
  private fail(fields: build.ErrorFields, reuseBackend = true): void {
    if (this.closed) return;
    if ((this.step === 'startup' || this.step === 'password') && (fields.sqlstate === '08P01' || fields.sqlstate === '0A000')) {
      this.deps.metrics.clientConnection('protocol_error');
    }
    this.close(reuseBackend, build.errorResponse(fields));
  }

  private crash(error: unknown): void {
    this.log.error({ err: error }, 'internal error in client session');
    this.fail(clientErrors.internal(), false);
  }

  onClientGone(): void {
    if (!this.closed) this.log.info('client disconnected');
    this.close();
    this.gone?.(this);
  }

  onClientError(error: Error): void {
    this.log.debug({ err: error }, 'client socket error');
  }

  onBytesOut(n: number): void {
    this.traffic.sent += n;
  }

  /** Message-level Terminate, a cancel connection, or the client gone. */
  close(reuseBackend = true, last?: Buffer): void {
    if (this.closed) return;
    this.queryTimer?.clear();
    this.step = 'closed';
    this.clearStartupTimer();
    if (this.processId !== 0) this.deps.cancels.forget(this.processId);
    this.channels?.clear();
    try {
      this.binding?.close(reuseBackend);
    } catch (error) {
      this.log.error({ err: error }, 'internal error releasing the backend');
    }
    this.heldPool?.letGo();
    this.conn.end(last);
  }

  private clearStartupTimer(): void {
    if (this.startupTimer !== null) clearTimeout(this.startupTimer);
    this.startupTimer = null;
  }
}
