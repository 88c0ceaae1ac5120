import { Backend as B } from '../protocol/codes.js';

/** A message pgfence sent to the backend in the extended protocol, whose reply it must place. */
export type Expected = 'parse' | 'bind' | 'close' | 'describe' | 'execute' | 'sync' | 'query';

interface Entry {
  kind: Expected;
  /** The message was pgfence's own (an injected Parse or Close): its reply is not the client's. */
  drop: boolean;
}

/**
 * Replies come back in the order messages were sent, and after an error the server skips to the
 * next Sync; so a queue of what was sent tells which reply answers which message. Used in
 * transaction pooling, where pgfence injects messages the client never sent.
 */
export class ResponseTracker {
  private queue: Entry[] = [];
  private head = 0;

  get idle(): boolean {
    return this.head === this.queue.length;
  }

  expect(kind: Expected, drop = false): void {
    this.queue.push({ kind, drop });
  }

  clear(): void {
    this.queue = [];
    this.head = 0;
  }

  /** Accounts for one backend message; true when it answers pgfence's own message and must not reach the client. */
  onBackendMessage(type: number): boolean {
    const head = this.queue[this.head];
    switch (type) {
      case B.ParseComplete:
      case B.BindComplete:
      case B.CloseComplete:
      case B.NoData:
        return this.shift()?.drop ?? false;
      case B.ParameterDescription:
        return head?.drop ?? false;
      case B.RowDescription:
        // After Describe it ends that Describe; in a simple query it just heads the rows.
        return head?.kind === 'describe' ? (this.shift()?.drop ?? false) : false;
      case B.CommandComplete:
      case B.EmptyQueryResponse:
      case B.PortalSuspended:
        if (head?.kind === 'execute') this.shift();
        return false;
      case B.ErrorResponse:
        if (head?.kind !== 'query') while (this.queue[this.head] !== undefined && this.queue[this.head]?.kind !== 'sync') this.head++;
        this.compact();
        return false;
      case B.ReadyForQuery:
        while (this.queue[this.head] !== undefined) {
          const entry = this.shift() as Entry;
          if (entry.kind === 'sync' || entry.kind === 'query') break;
        }
        return false;
      default:
        return false;
    }
  }

  private shift(): Entry | undefined {
    const entry = this.queue[this.head];
    if (entry !== undefined) this.head++;
    this.compact();
    return entry;
  }

  private compact(): void {
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
