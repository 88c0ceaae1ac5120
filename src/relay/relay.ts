import type { QueryTimer } from '../admin/index.js';
import type { BackendConnection, BackendSink } from '../backend/connection.js';
import type { FramedMessage } from '../protocol/framer.js';
import type { Route } from '../protocol/scanner.js';
import { ClientToServer, type ClientToServerHost, type Relayed } from './client-to-server.js';
import { ReplyTracker } from './reply-tracker.js';
import { type ServerBinding, ServerToClient } from './server-to-client.js';
import type { StatementInspector } from './statement-inspector.js';
import type { ClientStatements } from './statements.js';

/** The client side of a relay: where replies go and who hears of the backend's fate. */
export interface RelayHost {
  writeClient(parts: readonly Buffer[]): void;
  /** A server report broke the pin: close the client, and the backend with it. */
  onBreach(what: string): void;
  /** What the client gets for a chunk from the server (the backend may now be idle). */
  onServerBatch(out: readonly Buffer[]): void;
  onBackendLost(error: Error | undefined): void;
  /** The client's process id (BackendKeyData; 0 before it is told one). */
  readonly clientPid: number;
  /** The statement that pins a reset session again (the tenant and the client's startup settings). */
  repinSql(): string;
}

/**
 * Joins one client to the backend it holds: client messages go through ClientToServer, server
 * bytes through ServerToClient, both sharing the tracker that places each reply. Attached to a
 * backend per binding (once in session mode, per transaction in transaction mode).
 */
export class Relay implements BackendSink, ClientToServerHost {
  private readonly tracker = new ReplyTracker();
  readonly toServer: ClientToServer;
  readonly toClient: ServerToClient;
  private bound: BackendConnection | null = null;

  constructor(
    private readonly host: RelayHost,
    opts: {
      sessionId: number;
      tenantId: string;
      inspector: StatementInspector;
      statements: ClientStatements | null;
      timer: QueryTimer;
      /** Session pooling: notifications come from the client's own backend. */
      notificationsFromBackend: boolean;
    },
  ) {
    this.toServer = new ClientToServer(opts.sessionId, opts.tenantId, this.tracker, opts.inspector, opts.statements, opts.timer, this);
    this.toClient = new ServerToClient(this.tracker, opts.tenantId, host, opts.timer, opts.notificationsFromBackend);
  }

  repinSql(): string {
    return this.host.repinSql();
  }

  repinSent(): void {
    this.toClient.expectRepin();
  }

  effectsSent(): void {
    this.toClient.watchCompletions = true;
  }

  get backend(): BackendConnection | null {
    return this.bound;
  }

  attach(backend: BackendConnection, binding: ServerBinding): void {
    this.bound = backend;
    this.tracker.clear();
    this.toServer.startBinding();
    this.toClient.startBinding(binding);
  }

  /** Lets go of the backend (the caller gives it back to the pool). */
  detach(): BackendConnection | null {
    const backend = this.bound;
    this.bound = null;
    return backend;
  }

  /** The backend has answered everything sent and is outside any transaction: it may go back. */
  get idle(): boolean {
    const backend = this.bound;
    return backend !== null && backend.txnStatus === 'I' && this.tracker.idle && !this.toServer.midBatch;
  }

  /** The server has a statement of this client's to answer (cancel has something to hit). */
  get busy(): boolean {
    return this.bound !== null && !this.tracker.idle;
  }

  /** Relays a batch to the bound backend in one write. */
  send(messages: readonly FramedMessage[]): Relayed {
    const backend = this.bound;
    if (backend === null) throw new Error('no backend is bound');
    const out: Buffer[] = [];
    const result = this.toServer.relay(messages, backend.statements, out);
    backend.writeAll(out);
    return result;
  }

  route(type: number): Route {
    return this.toClient.route(type);
  }

  forward(bytes: Buffer): void {
    this.toClient.forward(bytes);
  }

  inspect(message: Buffer): void {
    this.toClient.inspect(message);
    const breach = this.toClient.breach;
    if (breach !== null) {
      this.host.writeClient(this.toClient.take());
      this.host.onBreach(breach);
    }
  }

  flush(): void {
    this.host.onServerBatch(this.toClient.take());
  }

  onBackendClosed(error: Error | undefined): void {
    this.host.onBackendLost(error);
  }
}
