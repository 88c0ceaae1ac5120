import net from 'node:net';
import tls from 'node:tls';
import { serialize } from 'pg-protocol';
import { Parser } from 'pg-protocol/dist/parser.js';
import type { BackendMessage } from 'pg-protocol/dist/messages.js';
import { Backend as B, type TransactionStatus } from '../protocol/codes.js';
import { errorFields, parameterStatus } from '../protocol/decode.js';
import { MessageScanner, Route, type ScanSink } from '../protocol/scanner.js';
import { PreparedStatements } from './prepared-statements.js';
import { md5PasswordResponse, ScramClient } from './scram.js';
import { backendTlsOptions } from './tls-options.js';

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

/** An error the backend reported (ErrorResponse), with its SQLSTATE. */
export class BackendError extends Error {
  constructor(
    message: string,
    readonly sqlstate: string | undefined,
  ) {
    super(message);
    this.name = 'BackendError';
  }
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
export class BackendConnection {
  readonly id = nextBackendId++;
  readonly params = new Map<string, string>();
  processId = 0;
  secretKey = 0;
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
  /** Something of the current chunk reached the sink: it gets a flush at the end. */
  private delivered = false;
  /** Routes the stream: own bookkeeping first (status, parameters, internal queries), then the sink. */
  private readonly stream: ScanSink;

  private constructor(
    readonly target: BackendTarget,
    private readonly socket: net.Socket,
    options: BackendOptions,
  ) {
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
  }

  static connect(target: BackendTarget, options: BackendOptions): Promise<BackendConnection> {
    return new Promise((resolve, reject) => {
      const raw = net.connect({ host: target.host, port: target.port });
      raw.setNoDelay(true);
      raw.setKeepAlive(true, 30_000);
      let socket: net.Socket = raw;
      const timer = setTimeout(() => fail(new Error(`backend handshake timed out after ${options.connectTimeoutMs} ms`)), options.connectTimeoutMs);
      const fail = (error: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        raw.destroy();
        reject(error);
      };
      raw.once('error', fail);
      raw.once('close', () => fail(new Error('backend closed the connection during the handshake')));
      const startup = (final: net.Socket): void => {
        socket = final;
        const conn = new BackendConnection(target, final, options);
        const handshake = new Handshake(conn, final, target, () => {
          clearTimeout(timer);
          for (const s of new Set([raw, final])) {
            s.removeAllListeners('error');
            s.removeAllListeners('close');
            s.removeAllListeners('data');
          }
          conn.startRelay();
          resolve(conn);
        }, fail);
        final.on('data', (chunk: Buffer) => handshake.onData(chunk));
        final.write(serialize.startup({ user: target.user, database: target.database, application_name: 'pgfence', client_encoding: 'UTF8' }));
      };
      raw.once('connect', () => {
        if (target.sslmode === 'disable') startup(raw);
        else negotiateTls(raw, target, startup, fail);
      });
    });
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
    await this.runInternal(discard ? ['DISCARD ALL', pinSql] : [pinSql], timeoutMs);
    this.tenant = tenant;
    this.settings = settingsKey;
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
    this.socket.cork();
    try {
      for (const part of parts) this.socket.write(part);
    } finally {
      this.socket.uncork();
    }
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
    if (this.ended) return Promise.reject(new Error('backend connection is closed'));
    if (this.internal !== null) return Promise.reject(new Error('an internal query is already running'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.internal = null;
        reject(new Error(`internal query timed out after ${timeoutMs} ms`));
        this.destroy(new Error('internal query timed out'));
      }, timeoutMs);
      this.internal = { remaining: queries.length, resolve, reject, error: undefined, timer };
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

  private startRelay(): void {
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (error) => this.finish(error));
    this.socket.on('close', () => this.finish(undefined));
  }

  private finish(error: Error | undefined): void {
    this.ended = true;
    const internal = this.internal;
    this.internal = null;
    if (internal !== null) {
      clearTimeout(internal.timer);
      internal.reject(error ?? new Error('backend connection closed'));
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
    if (this.internal !== null) return type === B.ErrorResponse ? Route.Inspect : Route.Drop;
    return this.sink?.route(type) ?? Route.Drop;
  }

  private inspect(message: Buffer): void {
    const type = message[0] as number;
    if (type === B.ReadyForQuery) this.status = message[5] === 0x54 ? 'T' : message[5] === 0x45 ? 'E' : 'I';
    else if (type === B.ParameterStatus) {
      const [name, value] = parameterStatus(message);
      this.params.set(name, value);
    }
    const internal = this.internal;
    if (internal === null) {
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

/** SSLRequest, then TLS on the same socket when the server answers 'S' (libpq's sslmode rules). */
function negotiateTls(
  raw: net.Socket,
  target: BackendTarget,
  proceed: (socket: net.Socket) => void,
  fail: (error: Error) => void,
): void {
  raw.write(serialize.requestSsl());
  raw.once('data', (answer: Buffer) => {
    if (answer[0] === 0x4e /* N */) {
      if (target.sslmode === 'prefer') proceed(raw);
      else fail(new Error(`the backend does not offer TLS (backend.sslmode is ${target.sslmode})`));
      return;
    }
    if (answer[0] !== 0x53 /* S */ || answer.length > 1) {
      fail(new Error('unexpected answer to SSLRequest from the backend'));
      return;
    }
    let secure: tls.TLSSocket;
    try {
      secure = tls.connect({ ...backendTlsOptions(target), socket: raw });
    } catch (error) {
      fail(error as Error);
      return;
    }
    secure.setNoDelay(true);
    secure.once('error', fail);
    secure.once('secureConnect', () => proceed(secure));
  });
}

/** The startup exchange with the server, decoded with pg-protocol's parser. */
class Handshake {
  private readonly parser = new Parser();
  private scram: ScramClient | null = null;
  /** Messages that arrived while a SCRAM proof was being computed: handled, in order, once it is sent. */
  private held: BackendMessage[] | null = null;

  constructor(
    private readonly conn: BackendConnection,
    private readonly socket: net.Socket,
    private readonly target: BackendTarget,
    private readonly done: () => void,
    private readonly fail: (error: Error) => void,
  ) {}

  onData(chunk: Buffer): void {
    try {
      this.parser.parse(chunk, (msg) => this.receive(msg));
    } catch (error) {
      this.fail(error as Error);
    }
  }

  private receive(msg: BackendMessage): void {
    if (this.held !== null) this.held.push(msg);
    else this.onMessage(msg);
  }

  /** Computes the proof off the event loop, holding later messages until it is sent. */
  private continueScram(scram: ScramClient, serverFirst: string): void {
    this.held = [];
    scram.finalResponse(serverFirst).then(
      (response) => {
        if (this.socket.destroyed) return; // failed or timed out meanwhile
        this.socket.write(serialize.sendSCRAMClientFinalMessage(response));
        const held = this.held ?? [];
        this.held = null;
        try {
          for (const msg of held) this.receive(msg);
        } catch (error) {
          this.fail(error as Error);
        }
      },
      (error: unknown) => this.fail(error as Error),
    );
  }

  private password(): string {
    if (this.target.password === undefined) throw new Error('the backend asks for a password and none is configured');
    return this.target.password;
  }

  private onMessage(msg: BackendMessage): void {
    const m = msg as BackendMessage & Record<string, unknown>;
    switch (msg.name) {
      case 'authenticationOk':
        return;
      case 'authenticationCleartextPassword':
        this.socket.write(serialize.password(this.password()));
        return;
      case 'authenticationMD5Password':
        this.socket.write(serialize.password(md5PasswordResponse(this.target.user, this.password(), m['salt'] as Buffer)));
        return;
      case 'authenticationSASL':
        this.scram = new ScramClient(m['mechanisms'] as string[], this.password());
        this.socket.write(serialize.sendSASLInitialResponseMessage(this.scram.mechanism, this.scram.initialResponse()));
        return;
      case 'authenticationSASLContinue':
        if (this.scram === null) throw new Error('unexpected SASL continue');
        this.continueScram(this.scram, m['data'] as string);
        return;
      case 'authenticationSASLFinal':
        if (this.scram === null) throw new Error('unexpected SASL final');
        this.scram.verifyServerFinal(m['data'] as string);
        return;
      case 'parameterStatus':
        this.conn.params.set(m['parameterName'] as string, m['parameterValue'] as string);
        return;
      case 'backendKeyData':
        this.conn.processId = m['processID'] as number;
        this.conn.secretKey = m['secretKey'] as number;
        return;
      case 'readyForQuery':
        this.done();
        return;
      case 'error': {
        const err = msg as unknown as { message: string; code?: string };
        this.fail(new BackendError(err.message, err.code));
        return;
      }
      case 'notice':
        return;
      default:
        throw new Error(`unexpected message during backend handshake: ${msg.name}`);
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
