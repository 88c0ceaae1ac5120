import type net from 'node:net';
import tls from 'node:tls';
import { writeBatch } from '../protocol/write-batch.js';

/** How long a closed session's last bytes may take to reach a client that has stopped reading. */
const CLOSE_FLUSH_MS = 5_000;

/** What the connection tells its owner (the session): one object, no closure per connection. */
export interface ClientConnectionHandler {
  onClientData(chunk: Buffer): void;
  onClientGone(): void;
  onClientError(error: Error): void;
  onBytesOut(n: number): void;
  /** A watched write found the client not keeping up (see `write`). */
  onClientSlow(): void;
}

/**
 * The socket's listeners are shared by every connection and find theirs through this property,
 * so an idle client costs no closures (10,000 idle clients are a sizing case).
 */
const OWNER = Symbol('pgfence.clientConnection');
type OwnedSocket = net.Socket & { [OWNER]?: ClientConnectionHandler };

function onSocketData(this: OwnedSocket, chunk: Buffer): void {
  this[OWNER]?.onClientData(chunk);
}
function onSocketError(this: OwnedSocket, error: Error): void {
  this[OWNER]?.onClientError(error);
}
function onSocketClose(this: OwnedSocket): void {
  this[OWNER]?.onClientGone();
}

/**
 * The client's socket: TLS upgrade, batched writes with backpressure, and close. Knows nothing
 * of the protocol beyond the bytes it is given.
 */
export class ClientConnection {
  private encryptedNow = false;
  private awaitingDrain = false;
  private onDrain: (() => void) | null = null;
  private ending = false;

  constructor(
    private socket: net.Socket,
    private readonly handler: ClientConnectionHandler,
  ) {
    socket.setNoDelay(true);
    this.listen(socket);
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get encrypted(): boolean {
    return this.encryptedNow;
  }

  /** Written data waits for the client to read it. */
  get writableNeedDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  private listen(socket: OwnedSocket): void {
    socket[OWNER] = this.handler;
    socket.on('data', onSocketData);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
  }

  /** Answers SSLRequest with 'S' and goes on inside TLS on the same socket. */
  upgradeToTls(context: tls.SecureContext): void {
    const raw: OwnedSocket = this.socket;
    raw.removeListener('data', onSocketData);
    raw.write('S');
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
    this.socket = secure;
    this.encryptedNow = true;
    secure.setNoDelay(true);
    this.listen(secure);
  }

  /**
   * Writes messages as one batch. With `watchSlow`, a client that does not keep up is reported to
   * the handler (`onClientSlow`: pause the backend), and `onceDrained` callbacks then wait for it.
   */
  write(parts: readonly Buffer[], watchSlow = false): void {
    if (parts.length === 0 || this.socket.destroyed) return;
    this.handler.onBytesOut(writeBatch(this.socket, parts));
    if (watchSlow && this.socket.writableNeedDrain) this.handler.onClientSlow();
  }

  /** Runs `callback` at the next drain of the client socket; one pending callback at most (the latest). */
  onceDrained(callback: () => void): void {
    this.onDrain = callback;
    if (this.awaitingDrain) return;
    this.awaitingDrain = true;
    this.socket.once('drain', () => {
      this.awaitingDrain = false;
      const run = this.onDrain;
      this.onDrain = null;
      run?.();
    });
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Sends the last bytes (if any) and closes; a client that never reads is cut off after a while. */
  end(last?: Buffer): void {
    if (this.ending) return;
    this.ending = true;
    const socket = this.socket;
    if (last !== undefined && !socket.destroyed) socket.write(last);
    socket.end();
    socket.destroySoon();
    const giveUp = setTimeout(() => socket.destroy(), CLOSE_FLUSH_MS);
    giveUp.unref();
    socket.once('close', () => clearTimeout(giveUp));
  }
}
