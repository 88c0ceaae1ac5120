import net from 'node:net';
import { serialize } from 'pg-protocol';
import { parameterStatus as parameterStatusMessage } from '../protocol/build.js';
import { Backend as B, type TransactionStatus } from '../protocol/codes.js';
import { errorFields, parameterStatus } from '../protocol/decode.js';
import { MessageScanner, Route, type ScanSink } from '../protocol/scanner.js';
import { BackendClosedError, BackendError } from './errors.js';
import { openServerSession, type ServerSession } from './handshake.js';
import { PreparedStatements } from './prepared-statements.js';
import { writeBatch } from '../protocol/write-batch.js';

export interface BackendTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string | undefined;
  sslmode: 'disable' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
  /** PEM text or a file path; the system store when absent. */
  sslRootCert: string | undefined;
}

export interface BackendOptions {
  connectTimeoutMs: number;
  maxMessageBytes: number;
  /** Most protocol statements pgfence keeps prepared on one server session (transaction pooling). */
  maxPreparedStatements: number;
}

/**
 * Who receives a bound backend's messages: the relay of the client it serves. It routes each
 * message by its type (see protocol/scanner.ts); `flush` ends every chunk received.
 */
export interface BackendSink extends Omit<ScanSink, 'open'> {
  flush(): void;
  onBackendClosed(error: Error | undefined): void;
}

interface InternalQuery {
  /** ReadyForQuery messages still to come, one per Query sent. */
  remaining: number;
  resolve(): void;
  reject(error: Error): void;
  error: BackendError | undefined;
  timer: NodeJS.Timeout;
}

let nextBackendId = 1;

/**
 * One server connection: its handshake, its reported parameters and transaction status, and the
 * byte relay to whichever client session is bound to it. Pool bookkeeping lives in pool/.
 */
export { BackendClosedError, BackendError };

export class BackendConnection {
  readonly id = nextBackendId++;
  /** What the server reported with ParameterStatus, kept current (only `inspect` writes it: the greeting cache depends on that). */
  private readonly paramValues: Map<string, string>;
  readonly processId: number;
  readonly secretKey: number;
  /** Set while a CancelRequest for this backend is on its way: it must not serve anyone else yet. */
  cancelling: Promise<void> | null = null;
  /** Names of the statements pgfence prepared on this server session (transaction pooling). */
  readonly statements: PreparedStatements;
  lastUsed = 0;
  /** Called once when the connection ends, whoever ended it. */
  onClose: ((error: Error | undefined) => void) | null = null;

  private status: TransactionStatus = 'I';
  private ended = false;
  /** Tenant whose pin is in force, null after a reset. */
  private tenant: string | null = null;
  /** The session settings applied with the pin (see frontend/pin.ts), null after a reset. */
  private settings: string | null = null;
  /** Session state beyond the pin was left behind: reset before anyone else uses it. */
  private leftovers = false;
  private sink: BackendSink | null = null;
  private internal: InternalQuery | null = null;
  private readonly scanner: MessageScanner;
  /** A listener connection (see listener.ts): notifications reach the sink at all times. */
  private listening = false;
  /** Something of the current chunk reached the sink: it gets a flush at the end. */
  private delivered = false;
  /** Routes the stream: own bookkeeping first (status, parameters, internal queries), then the sink. */
  private readonly stream: ScanSink;
  /** `params` as ParameterStatus messages, made once and again after a change (every client is greeted with them). */
  private paramsMessages: Buffer | null = null;

  private readonly socket: net.Socket;

  private constructor(
    readonly target: BackendTarget,
    session: ServerSession,
    options: BackendOptions,
  ) {
    this.socket = session.socket;
    this.paramValues = session.params;
    this.processId = session.processId;
    this.secretKey = session.secretKey;
    this.scanner = new MessageScanner(options.maxMessageBytes);
    this.statements = new PreparedStatements(options.maxPreparedStatements);
    const connection = this; // eslint-disable-line @typescript-eslint/no-this-alias -- the getter below needs it
    this.stream = {
      route: (type) => this.route(type),
      inspect: (message) => this.inspect(message),
      forward: (bytes) => {
        if (this.sink === null) return;
        this.delivered = true;
        this.sink.forward(bytes);
      },
      get open() {
        return !connection.ended;
      },
    };
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (error) => this.finish(error));
    this.socket.on('close', () => this.finish(undefined));
  }

  /** Connects and authenticates (backend/handshake.ts); resolves with the connection ready for queries. */
  static async connect(target: BackendTarget, options: BackendOptions): Promise<BackendConnection> {
    const session = await openServerSession(target, options.connectTimeoutMs);
    return new BackendConnection(target, session, options);
  }

  get params(): ReadonlyMap<string, string> {
    return this.paramValues;
  }

  /** The ParameterStatus messages a client served by this backend is greeted with: `params` as they stand. */
  parameterStatusMessages(): Buffer {
    return (this.paramsMessages ??= Buffer.concat([...this.paramValues].map(([name, value]) => parameterStatusMessage(name, value))));
  }

  /** Transaction status from the last ReadyForQuery. */
  get txnStatus(): TransactionStatus {
    return this.status;
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Tenant whose pin is in force; null when unpinned (new or reset). */
  get pinnedTenant(): string | null {
    return this.tenant;
  }

  /** Something beyond the pin and the client's settings was left in the session. */
  get dirty(): boolean {
    return this.leftovers;
  }

  /** Pinned to `tenant` with exactly these settings and nothing left behind: usable without a reset. */
  holdsPin(tenant: string, settingsKey: string): boolean {
    return this.tenant === tenant && !this.leftovers && this.settings === settingsKey;
  }

  /** Whoever used it left session state the pin does not cover: reset before the next use. */
  markDirty(): void {
    this.leftovers = true;
  }

  /**
   * Pins the session to a tenant with a client's settings, after DISCARD ALL whenever anything
   * could be left in it (another pin, other settings, dirt): one write, one wait.
   */
  async pin(tenant: string, settingsKey: string, pinSql: string, timeoutMs: number): Promise<void> {
    const discard = this.tenant !== null || this.leftovers;
    this.forgetSession();
    try {
      await this.runInternal(discard ? ['DISCARD ALL', pinSql] : [pinSql], timeoutMs);
    } catch (error) {
      this.leftovers = true; // whatever part of it ran: reset before anyone uses it
      throw error;
    }
    this.tenant = tenant;
    this.settings = settingsKey;
  }

  /** DISCARD ALL and a fresh pin in one write, one wait, whatever the session held. */
  async resetAndPin(tenant: string, settingsKey: string, pinSql: string, timeoutMs: number): Promise<void> {
    this.markDirty();
    await this.pin(tenant, settingsKey, pinSql, timeoutMs);
  }

  /** DISCARD ALL: no pin, no settings, no prepared statements, nothing left behind. */
  async reset(timeoutMs: number): Promise<void> {
    this.forgetSession();
    await this.runInternal('DISCARD ALL', timeoutMs);
  }

  /** What pgfence knew of the session is gone (about to be discarded, or failed to be). */
  private forgetSession(): void {
    this.tenant = null;
    this.settings = null;
    this.leftovers = false;
    this.statements.clear();
  }

  /** Sends a CancelRequest for whatever this backend runs now; reuse waits until it is delivered. */
  cancel(): void {
    if (this.ended || this.cancelling !== null) return;
    this.cancelling = sendCancel(this.target, this.processId, this.secretKey).finally(() => {
      this.cancelling = null;
    });
  }

  /** Hands this backend's messages to a client session. */
  bind(sink: BackendSink): void {
    if (this.sink !== null) throw new Error(`backend ${this.id} is already bound`);
    this.sink = sink;
  }

  /** Hands this connection's notifications to `sink` for good, even while pgfence's own queries run. */
  bindListener(sink: BackendSink): void {
    this.bind(sink);
    this.listening = true;
  }

  unbind(): void {
    this.sink = null;
    // A holder that paused reading for its own slow client must not hand on a paused backend:
    // its next holder (any tenant) would never hear from it.
    this.socket.resume();
  }

  get bound(): boolean {
    return this.sink !== null;
  }

  /** Writes several messages as one TCP write. */
  writeAll(parts: readonly Buffer[]): void {
    if (this.ended || parts.length === 0) return;
    writeBatch(this.socket, parts);
  }

  get needsDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  onceDrained(callback: () => void): void {
    this.socket.once('drain', callback);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /**
   * Runs pgfence's own SQL (pin, reset) as simple queries whose results never reach a client,
   * all in one write (DISCARD ALL must be a Query of its own: a multi-statement Query is one
   * transaction). Resolves at the last ReadyForQuery; rejects with the first backend error, on
   * timeout, or if the connection ends.
   */
  runInternal(sql: string | readonly string[], timeoutMs: number): Promise<void> {
    const queries = typeof sql === 'string' ? [sql] : sql;
    if (this.ended) return Promise.reject(new BackendClosedError('backend connection is closed'));
    if (this.internal !== null) return Promise.reject(new Error('an internal query is already running'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.internal = null;
        reject(new Error(`internal query timed out after ${timeoutMs} ms`));
        this.destroy(new Error('internal query timed out'));
      }, timeoutMs);
      this.internal = { remaining: queries.length, resolve, reject, error: undefined, timer };
      this.statements.unnamedLeft = false; // a simple Query drops the unnamed statement
      this.writeAll(queries.map((q) => serialize.query(q)));
    });
  }

  /** Closes the connection; the backend ends its session. Idempotent. */
  destroy(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.socket.destroyed) {
      this.socket.end(serialize.end());
      this.socket.destroySoon();
    }
    this.finish(error);
  }

  private finish(error: Error | undefined): void {
    this.ended = true;
    const internal = this.internal;
    this.internal = null;
    if (internal !== null) {
      clearTimeout(internal.timer);
      internal.reject(new BackendClosedError(error === undefined ? undefined : `backend connection closed: ${error.message}`));
    }
    const sink = this.sink;
    this.sink = null;
    const onClose = this.onClose;
    this.onClose = null;
    sink?.onBackendClosed(error);
    onClose?.(error);
  }

  private onData(chunk: Buffer): void {
    try {
      this.scanner.push(chunk, this.stream);
    } catch (error) {
      this.destroy(error as Error);
      return;
    }
    if (this.delivered) {
      this.delivered = false;
      this.sink?.flush();
    }
  }

  private route(type: number): Route {
    if (type === B.ReadyForQuery || type === B.ParameterStatus) return Route.Inspect;
    if (this.internal !== null && !(type === B.NotificationResponse && this.listening)) return type === B.ErrorResponse ? Route.Inspect : Route.Drop;
    return this.sink?.route(type) ?? Route.Drop;
  }

  private inspect(message: Buffer): void {
    const type = message[0] as number;
    if (type === B.ReadyForQuery) this.status = message[5] === 0x54 ? 'T' : message[5] === 0x45 ? 'E' : 'I';
    else if (type === B.ParameterStatus) {
      const [name, value] = parameterStatus(message);
      if (this.paramValues.get(name) !== value) {
        this.paramValues.set(name, value);
        this.paramsMessages = null;
      }
    }
    const internal = this.internal;
    if (internal === null || (type === B.NotificationResponse && this.listening)) {
      if (this.sink === null) return;
      this.delivered = true;
      this.sink.inspect(message);
      return;
    }
    if (type === B.ErrorResponse) {
      const fields = errorFields(message);
      internal.error ??= new BackendError(fields.get('M') ?? 'backend error', fields.get('C'));
    } else if (type === B.ReadyForQuery && --internal.remaining === 0) {
      clearTimeout(internal.timer);
      this.internal = null;
      if (internal.error !== undefined) internal.reject(internal.error);
      else internal.resolve();
    }
  }
}

/**
 * Sends a CancelRequest on a fresh connection. Resolves when the server closes that connection,
 * which it does after it has signalled the backend: until then the backend must not be reused.
 */
export function sendCancel(target: BackendTarget, processId: number, secretKey: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port });
    socket.once('connect', () => socket.end(serialize.cancel(processId, secretKey)));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => resolve());
    socket.setTimeout(5_000, () => socket.destroy());
  });
}
