import { type CancelKey, keyOwner, type KeyOwner, newCancelKey } from '../cluster/cancel-key.js';

export interface Cancellable {
  cancel(): void;
}

/**
 * Where a CancelRequest went: `local` matched a session of this process, `miss` was a key of this
 * process that matches no session (finished, or a wrong secret), `worker` and `peer` were passed on
 * to the process that owns the key, `unroutable` named a peer or worker nobody here knows.
 */
export type CancelRoute = 'local' | 'miss' | 'worker' | 'peer' | 'unroutable';

/** How keys that another process issued are passed on (see cluster/cancel-key.ts). */
export interface CancelRoutes {
  /** The owner this process writes into the keys it issues. */
  self: KeyOwner;
  /** Another worker of this instance owns the key (`workers: N`): hand it over through the primary. */
  toWorker?: (worker: number, key: CancelKey) => void;
  /** Another pgfence instance owns the key (`peers`): send it there; false when no peer has that id. */
  toPeer?: (peer: number, key: CancelKey) => boolean;
  /** Told of every CancelRequest's route, for the metrics. */
  counted?: (route: CancelRoute) => void;
}

/** Maps the BackendKeyData pgfence issued to a client back to that client's session. */
export class CancelRegistry {
  private readonly sessions = new Map<number, { secretKey: number; session: Cancellable }>();

  constructor(private readonly routes: CancelRoutes = { self: { peer: 0, worker: 0 } }) {}

  issue(session: Cancellable): CancelKey {
    let key: CancelKey;
    do key = newCancelKey(this.routes.self);
    while (this.sessions.has(key.processId));
    this.sessions.set(key.processId, { secretKey: key.secretKey, session });
    return key;
  }

  forget(processId: number): void {
    this.sessions.delete(processId);
  }

  /**
   * A CancelRequest from a client: cancels the matching session's running query, or passes the key
   * on to the process that issued it. A wrong key does nothing, as in Postgres.
   */
  cancel(processId: number, secretKey: number): CancelRoute {
    const route = this.route(processId, secretKey);
    this.routes.counted?.(route);
    return route;
  }

  /** A key another worker passed on: this process owns it, so it is never passed on again. */
  cancelHere(processId: number, secretKey: number): CancelRoute {
    const route = this.local(processId, secretKey);
    this.routes.counted?.(route);
    return route;
  }

  private route(processId: number, secretKey: number): CancelRoute {
    const owner = keyOwner(processId, secretKey);
    const self = this.routes.self;
    if (owner.peer !== self.peer) {
      // Peer 0 is an instance without peering: only ever this one.
      if (owner.peer === 0 || this.routes.toPeer === undefined) return 'unroutable';
      return this.routes.toPeer(owner.peer, { processId, secretKey }) ? 'peer' : 'unroutable';
    }
    if (owner.worker !== self.worker) {
      if (this.routes.toWorker === undefined) return 'unroutable';
      this.routes.toWorker(owner.worker, { processId, secretKey });
      return 'worker';
    }
    return this.local(processId, secretKey);
  }

  private local(processId: number, secretKey: number): CancelRoute {
    const entry = this.sessions.get(processId);
    if (entry === undefined || entry.secretKey !== secretKey) return 'miss';
    entry.session.cancel();
    return 'local';
  }
}
