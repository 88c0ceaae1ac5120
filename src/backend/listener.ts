import type { Logger } from 'pino';
import { Backend as B } from '../protocol/codes.js';
import { readCString } from '../protocol/decode.js';
import { Route } from '../protocol/scanner.js';
import { quoteIdent } from '../tenancy/index.js';
import { BackendConnection, type BackendOptions, type BackendTarget } from './connection.js';

/** A notification as the server sent it: the channel (server name), the sender's pid, the message. */
export interface Notification {
  channel: string;
  message: Buffer;
}

export type NotificationHandler = (notification: Notification) => void;

/** Longest wait between reconnect attempts of the listener connection. */
const MAX_RETRY_MS = 5_000;

/**
 * Transaction pooling's LISTEN: one server connection to one database (src/placement/listeners.ts
 * keeps one per backend target and tenant database in use) that LISTENs on every channel some
 * client listens on there, and hands each notification to the clients of that channel.
 * Clients never hold a backend between transactions, so their own LISTEN cannot outlive one.
 * Commands to the server go one at a time, in order; a lost connection is reopened and every
 * channel listened to again (notifications sent while it was down are lost, as on Postgres when
 * a listening session ends).
 */
export class ChannelListener {
  private readonly handlers = new Map<string, Set<NotificationHandler>>();
  private connection: BackendConnection | null = null;
  private connecting: Promise<BackendConnection> | null = null;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private retryMs = 100;

  constructor(
    /** Read at every (re)connect: a reload may change where the target is. */
    private readonly target: () => BackendTarget,
    private readonly options: () => BackendOptions & { resetTimeoutMs: number },
    private readonly log: Logger,
  ) {}

  /** Channels listened on now, for the console and tests. */
  get channels(): readonly string[] {
    return [...this.handlers.keys()];
  }

  /**
   * Starts delivering `channel`'s notifications to `handler`; LISTENs on the server for the first
   * one. Resolves once the server listens (or the attempt failed and was logged).
   */
  subscribe(channel: string, handler: NotificationHandler): Promise<void> {
    let set = this.handlers.get(channel);
    const first = set === undefined;
    if (set === undefined) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    set.add(handler);
    return first ? this.command(`LISTEN ${quoteIdent(channel)}`) : this.chain;
  }

  unsubscribe(channel: string, handler: NotificationHandler): void {
    const set = this.handlers.get(channel);
    if (set === undefined || !set.delete(handler) || set.size > 0) return;
    this.handlers.delete(channel);
    void this.command(`UNLISTEN ${quoteIdent(channel)}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.handlers.clear();
    this.connection?.destroy();
    this.connection = null;
  }

  /** Closes once the commands queued so far (the last UNLISTENs) have run. */
  async closeWhenDone(): Promise<void> {
    this.closed = true;
    await this.chain;
    await this.close();
  }

  /** The target's settings changed: reconnect (to where it is now) and listen again on every channel. */
  reopen(): void {
    this.connection?.destroy();
  }

  /** Queues a LISTEN/UNLISTEN; failures are logged (the next reconnect listens again on what is wanted). */
  private command(sql: string): Promise<void> {
    this.chain = this.chain
      .then(async () => {
        const connection = await this.connected();
        await connection.runInternal(sql, this.options().resetTimeoutMs);
      })
      .catch((error: unknown) => {
        this.log.warn({ err: error, sql }, 'listener command failed');
      });
    return this.chain;
  }

  private connected(): Promise<BackendConnection> {
    if (this.connection !== null && !this.connection.closed) return Promise.resolve(this.connection);
    this.connecting ??= this.open().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async open(): Promise<BackendConnection> {
    if (this.closed) throw new Error('listener is closed');
    const connection = await BackendConnection.connect(this.target(), this.options());
    this.connection = connection;
    this.retryMs = 100;
    connection.bindListener({
      route: (type) => (type === B.NotificationResponse ? Route.Inspect : Route.Drop),
      inspect: (message) => this.deliver(message),
      forward: () => undefined,
      flush: () => undefined,
      onBackendClosed: (error) => this.lost(error),
    });
    return connection;
  }

  private deliver(message: Buffer): void {
    if (message[0] !== B.NotificationResponse) return;
    const [channel] = readCString(message, 9);
    for (const handler of this.handlers.get(channel) ?? []) handler({ channel, message });
  }

  /** The connection ended: reopen it and listen again on every channel still wanted. */
  private lost(error: Error | undefined): void {
    this.connection = null;
    if (this.closed) return;
    this.log.warn({ err: error }, 'listener connection lost; reconnecting');
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
    const timer = setTimeout(() => {
      if (this.closed || this.handlers.size === 0) return;
      for (const channel of this.handlers.keys()) void this.command(`LISTEN ${quoteIdent(channel)}`);
    }, wait);
    timer.unref();
  }
}
