import type { ErrorFields } from '../protocol/build.js';
import { Backend as B } from '../protocol/codes.js';

/** A message sent to the server whose reply must be placed. */
export const enum Sent {
  Parse = 0,
  Bind = 1,
  Close = 2,
  Describe = 3,
  Execute = 4,
  Sync = 5,
  Query = 6,
}

/** An Execute of a portal that cannot exist, sent in place of a refused message; its error is swapped. */
export interface StandIn {
  readonly marker: string;
  readonly error: ErrorFields;
}

/** What an ErrorResponse answered. */
export interface ErrorPlacement {
  /** The error is a stand-in's: send this instead. */
  standIn: StandIn | null;
  /** Server statements whose Parse failed or was skipped: the server does not hold them. */
  unprepared: string[];
  /** Server statements whose eviction (Close) was skipped: the server still holds them. */
  stillPrepared: string[];
}

/**
 * Replies come back in the order messages were sent, and after an error in the extended protocol
 * the server skips to the next Sync; so a queue of what was sent says which reply answers which
 * message. pgfence injects messages the client never sent (a Close, a Parse on another backend)
 * and stand-ins for refused ones: their replies are dropped or swapped here, and the relay knows
 * the server has answered everything when the queue is empty.
 */
export class ReplyTracker {
  private kinds: Sent[] = [];
  /** Parallel to kinds: the reply is pgfence's own and must not reach the client. */
  private drops: boolean[] = [];
  /** Parallel to kinds: the stand-in of an Execute, or the server name a Parse prepares or a Close evicts. */
  private notes: Array<StandIn | string | undefined> = [];
  private head = 0;

  /** Every message sent has been answered. */
  get idle(): boolean {
    return this.head === this.kinds.length;
  }

  expect(kind: Sent, drop = false, note?: StandIn | string): void {
    this.kinds.push(kind);
    this.drops.push(drop);
    this.notes.push(note);
  }

  clear(): void {
    this.kinds = [];
    this.drops = [];
    this.notes = [];
    this.head = 0;
  }

  /**
   * Accounts for one server message other than ErrorResponse and ReadyForQuery; true when it
   * answers pgfence's own message and must not reach the client.
   */
  onReply(type: number): boolean {
    const head = this.kinds[this.head];
    switch (type) {
      case B.ParseComplete:
      case B.BindComplete:
      case B.CloseComplete:
      case B.NoData:
        return this.shift();
      case B.ParameterDescription:
        return head !== undefined && (this.drops[this.head] as boolean);
      case B.RowDescription:
        // After Describe it ends that Describe; in a query or an Execute it just heads the rows.
        return head === Sent.Describe ? this.shift() : false;
      case B.CommandComplete:
      case B.EmptyQueryResponse:
      case B.PortalSuspended:
        if (head === Sent.Execute) this.shift();
        return false;
      default:
        return false;
    }
  }

  /** An ErrorResponse: what it answered, and the messages the server now skips up to the next Sync. */
  onError(): ErrorPlacement {
    const placement: ErrorPlacement = { standIn: null, unprepared: [], stillPrepared: [] };
    const head = this.kinds[this.head];
    if (head === undefined || head === Sent.Query) return placement;
    const note = this.notes[this.head];
    if (head === Sent.Execute && typeof note === 'object') placement.standIn = note;
    while (this.head < this.kinds.length && this.kinds[this.head] !== Sent.Sync) {
      const skipped = this.notes[this.head];
      if (typeof skipped === 'string') {
        if (this.kinds[this.head] === Sent.Parse) placement.unprepared.push(skipped);
        else if (this.kinds[this.head] === Sent.Close) placement.stillPrepared.push(skipped);
      }
      this.head++;
    }
    this.compact();
    return placement;
  }

  /** A ReadyForQuery ends the oldest Sync or Query still open; true when that was pgfence's own. */
  onReady(): boolean {
    let own = false;
    while (this.head < this.kinds.length) {
      const kind = this.kinds[this.head];
      own = this.drops[this.head] as boolean;
      this.head++;
      if (kind === Sent.Sync || kind === Sent.Query) break;
    }
    this.compact();
    return own;
  }

  /** The oldest open message is a Query of pgfence's own: every reply up to its ReadyForQuery is too. */
  get answeringOwnQuery(): boolean {
    return this.kinds[this.head] === Sent.Query && this.drops[this.head] === true;
  }

  private shift(): boolean {
    if (this.head === this.kinds.length) return false;
    const drop = this.drops[this.head] as boolean;
    this.head++;
    this.compact();
    return drop;
  }

  private compact(): void {
    if (this.head === this.kinds.length) {
      this.kinds.length = 0;
      this.drops.length = 0;
      this.notes.length = 0;
      this.head = 0;
    } else if (this.head > 1024) {
      this.kinds = this.kinds.slice(this.head);
      this.drops = this.drops.slice(this.head);
      this.notes = this.notes.slice(this.head);
      this.head = 0;
    }
  }
}
