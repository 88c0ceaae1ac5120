import { randomInt } from 'node:crypto';

export interface Cancellable {
  cancel(): void;
}

/** Maps the BackendKeyData pgfence issued to a client back to that client's session. */
export class CancelRegistry {
  private readonly sessions = new Map<number, { secretKey: number; session: Cancellable }>();

  issue(session: Cancellable): { processId: number; secretKey: number } {
    let processId: number;
    do processId = randomInt(1, 2 ** 31 - 1);
    while (this.sessions.has(processId));
    const secretKey = randomInt(0, 2 ** 31 - 1);
    this.sessions.set(processId, { secretKey, session });
    return { processId, secretKey };
  }

  forget(processId: number): void {
    this.sessions.delete(processId);
  }

  /** Cancels the matching session's running query; a wrong key does nothing, as in Postgres. */
  cancel(processId: number, secretKey: number): boolean {
    const entry = this.sessions.get(processId);
    if (entry === undefined || entry.secretKey !== secretKey) return false;
    entry.session.cancel();
    return true;
  }
}
