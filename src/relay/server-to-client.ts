import type { QueryTimer } from '../admin/index.js';
import type { PreparedStatements } from '../backend/prepared-statements.js';
import { clientNotification } from '../frontend/channels.js';
import * as build from '../protocol/build.js';
import { Backend as B } from '../protocol/codes.js';
import { errorFields, parameterStatus } from '../protocol/decode.js';
import { Route } from '../protocol/scanner.js';
import type { ReplyTracker } from './reply-tracker.js';

/** What the relay checks replies against while a backend serves the client. */
export interface ServerBinding {
  /** The search_path the pin set (reported by Postgres 18+); a different report trips the wire. */
  searchPath: string;
  /** is_superuser as the pin left it (SET ROLE is not reported itself, but this is). */
  superuser: string | undefined;
  /** The pool's own user: a different session_authorization trips the wire. */
  user: string;
  /** A search_path the client may set instead of the pin's (only its own and shared schemas). */
  allowsSearchPath(value: string): boolean;
  /** The backend's reported parameters, kept current: read when a re-pin completes. */
  params: ReadonlyMap<string, string>;
  backendPid: number;
  statements: PreparedStatements;
}

/**
 * Server → client, for one client: routes each server message by its type, and looks only at
 * ReadyForQuery, ErrorResponse, ParameterStatus and NotificationResponse. Everything else leaves
 * as ranges of the received chunk (`forward`), apart from the replies to pgfence's own messages,
 * which the tracker says to drop. Collects what the client gets until `take`.
 */
export class ServerToClient {
  private out: Buffer[] = [];
  private binding: ServerBinding | null = null;
  /** An error came back since the binding began. */
  failed = false;
  /** The server reported a parameter change (a SET the guard could not see, or one it did). */
  changedParameters = false;
  /** Set when a report broke the pin: the client must be closed and the backend with it. */
  breach: string | null = null;
  /** Command tags are read (the binding has effects that a ROLLBACK would undo). */
  watchCompletions = false;
  /** A ROLLBACK completed since the binding began: what the transaction did to the session is undone. */
  rolledBack = false;
  /** Re-pins pgfence sent after a client's RESET ALL / DISCARD ALL and not yet answered. */
  private repins = 0;

  constructor(
    private readonly tracker: ReplyTracker,
    private readonly tenantId: string,
    /** The client's process id (its BackendKeyData), which its notifications carry. */
    private readonly client: { readonly clientPid: number },
    private readonly timer: QueryTimer,
    /** Session pooling; in transaction pooling the shared listener delivers notifications instead. */
    private readonly notificationsFromBackend: boolean,
  ) {}

  startBinding(binding: ServerBinding): void {
    this.binding = binding;
    this.failed = false;
    this.changedParameters = false;
    this.watchCompletions = false;
    this.rolledBack = false;
    this.repins = 0;
  }

  /** The pin has run: is_superuser as it left it is the one to hold from now on. */
  pinned(superuser: string | undefined): void {
    if (this.binding !== null) this.binding.superuser = superuser;
  }

  /** A client statement that resets the session is on its way, with pgfence's re-pin after it. */
  expectRepin(): void {
    this.repins++;
  }

  route(type: number): Route {
    // Everything the re-pin's own query answers stays here (its rows, its CommandComplete).
    if (this.tracker.answeringOwnQuery && type !== B.ReadyForQuery && type !== B.ErrorResponse && type !== B.ParameterStatus) return Route.Drop;
    switch (type) {
      case B.ReadyForQuery:
      case B.ErrorResponse:
      case B.ParameterStatus:
        return Route.Inspect;
      case B.NotificationResponse:
        return this.notificationsFromBackend ? Route.Inspect : Route.Drop;
      case B.CommandComplete:
        if (this.tracker.onReply(type)) return Route.Drop;
        return this.watchCompletions ? Route.Inspect : Route.Forward;
      case B.ParseComplete:
      case B.BindComplete:
      case B.CloseComplete:
      case B.NoData:
      case B.ParameterDescription:
      case B.RowDescription:
      case B.EmptyQueryResponse:
      case B.PortalSuspended:
        return this.tracker.onReply(type) ? Route.Drop : Route.Forward;
      default:
        return Route.Forward;
    }
  }

  forward(bytes: Buffer): void {
    this.push(bytes);
  }

  /**
   * Adds to what the client gets, joined to the previous part when it directly follows it in the
   * same chunk: one buffer per chunk is one write() instead of a writev of many.
   */
  private push(bytes: Buffer): void {
    const out = this.out;
    const last = out[out.length - 1];
    if (last !== undefined && last.buffer === bytes.buffer && last.byteOffset + last.length === bytes.byteOffset) {
      out[out.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + bytes.length);
    } else {
      out.push(bytes);
    }
  }

  inspect(message: Buffer): void {
    switch (message[0]) {
      case B.ReadyForQuery:
        if (this.tracker.onReady()) {
          this.repinDone();
          return;
        }
        this.timer.answered(message[5]);
        this.push(message);
        return;
      case B.ErrorResponse:
        if (this.tracker.answeringOwnQuery) {
          this.repinFailed(message);
          return;
        }
        this.push(this.onError(message));
        return;
      case B.ParameterStatus: {
        const breach = this.checkPin(message);
        if (breach !== null) {
          this.breach = breach;
          return;
        }
        this.changedParameters = true;
        this.push(message);
        return;
      }
      case B.CommandComplete:
        // ROLLBACK, ROLLBACK TO SAVEPOINT, and COMMIT of a failed transaction all say ROLLBACK.
        if (message.length === 14 && message.toString('latin1', 5, 13) === 'ROLLBACK') this.rolledBack = true;
        this.push(message);
        return;
      case B.NotificationResponse: {
        const mine = clientNotification(message, this.tenantId, this.binding?.backendPid ?? 0, this.client.clientPid);
        if (mine !== null) this.out.push(mine);
        return;
      }
      default:
        this.out.push(message);
    }
  }

  /** What the client gets for the chunks relayed since the last call. */
  take(): Buffer[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  private onError(message: Buffer): Buffer {
    this.failed = true;
    const placement = this.tracker.onError();
    for (const name of placement.unprepared) this.binding?.statements.forget(name);
    for (const name of placement.stillPrepared) this.binding?.statements.evictLater(name);
    const standIn = placement.standIn;
    if (standIn === null) return message;
    // The stand-in's own error says which portal was missing: anything else is passed on as is.
    const fields = errorFields(message);
    if (fields.get('C') !== '34000' || !(fields.get('M') ?? '').includes(standIn.marker)) return message;
    return build.errorResponse(standIn.error);
  }

  /**
   * The re-pin failed. In a transaction that had already failed (25P02) the reset itself did not
   * happen either, and the pin stands; anything else leaves the session in doubt.
   */
  private repinFailed(message: Buffer): void {
    if (errorFields(message).get('C') !== '25P02') this.breach = 'pin';
  }

  /** The re-pin is answered: the backend must now report exactly the pin again. */
  private repinDone(): void {
    this.repins = Math.max(0, this.repins - 1);
    const binding = this.binding;
    if (this.repins > 0 || binding === null || this.breach !== null) return;
    const searchPath = binding.params.get('search_path');
    if (searchPath !== undefined && searchPath !== binding.searchPath) this.breach = 'search_path';
    else if (binding.params.get('session_authorization') !== binding.user) this.breach = 'session_authorization';
    else if (binding.superuser !== undefined && binding.params.get('is_superuser') !== binding.superuser) this.breach = 'role';
  }

  /**
   * Tripwire behind the guard: a reported change to the pinned identity. Between a client's
   * RESET ALL / DISCARD ALL and pgfence's re-pin right behind it, reports are the reset's and the
   * pin's own, and the pin is checked once the re-pin is answered.
   */
  private checkPin(message: Buffer): string | null {
    const binding = this.binding;
    if (binding === null || this.repins > 0) return null;
    const [name, value] = parameterStatus(message);
    if (name === 'session_authorization' && value !== binding.user) return 'session_authorization';
    if (name === 'search_path' && value !== binding.searchPath && !binding.allowsSearchPath(value)) return 'search_path';
    if (name === 'is_superuser' && binding.superuser !== undefined && value !== binding.superuser) return 'role';
    return null;
  }
}
