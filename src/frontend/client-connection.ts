import type net from 'node:net';
import tls from 'node:tls';
import { writeBatch } from '../protocol/write-batch.js';

/** How long a closed session's last bytes may take to reach a client that has stopped reading. */
const CLOSE_FLUSH_MS = 5_000;

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
    private readonly handlers: { data(chunk: Buffer): void; closed(): void; error(error: Error): void; bytesOut(n: number): void },
  ) {
    socket.setNoDelay(true);
    this.listen(socket);
  }

  readonly peer = (): string => `${this.socket.remoteAddress}:${this.socket.remotePort}`;

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

  private listen(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.handlers.data(chunk));
    socket.on('error', (error) => this.handlers.error(error));
    socket.on('close', () => this.handlers.closed());
  }

  /** Answers SSLRequest with 'S' and goes on inside TLS on the same socket. */
  upgradeToTls(context: tls.SecureContext): void {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.write('S');
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
    this.socket = secure;
    this.encryptedNow = true;
    secure.setNoDelay(true);
    this.listen(secure);
  }

  /**
   * Writes messages as one batch. When the client does not keep up, `whenSlow` runs once (pause
   * the backend), and `onceDrained` callbacks then wait for the client.
   */
  write(parts: readonly Buffer[], whenSlow?: () => void): void {
    if (parts.length === 0 || this.socket.destroyed) return;
    this.handlers.bytesOut(writeBatch(this.socket, parts));
    if (this.socket.writableNeedDrain && whenSlow !== undefined) whenSlow();
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
