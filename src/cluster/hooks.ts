import type { Logger } from 'pino';
import type { ConsoleContext } from '../admin/console.js';
import type { Metrics } from '../admin/metrics.js';
import type { Config } from '../config/schema.js';
import { CancelRegistry } from '../frontend/cancel-registry.js';
import type { CancelKey } from './cancel-key.js';
import { PeerForwarder } from './peers.js';

/** What a worker of `workers: N` (cluster/worker.ts) changes in the pgfence it starts (server.ts). */
export interface WorkerHooks {
  /** This worker's index, 0..count-1: its shares of the pool and the owner written into its cancel keys. */
  index: number;
  count: number;
  /** Hands a cancel key that another worker issued to the primary, which passes it on. */
  toWorker(worker: number, key: CancelKey): void;
  /** Tells the other workers of a failed login (the auth throttle counts per instance). */
  loginFailed(address: string): void;
  /** Set by the server: counts a failed login another worker saw. */
  onLoginFailedElsewhere: ((address: string) => void) | null;
  /** This worker's console, made to answer for the whole instance. */
  console(local: ConsoleContext): ConsoleContext;
}

/**
 * The cancel registry of one process: keys carry this instance's peer id and this worker's index,
 * and keys that another worker or peer issued are passed on to it.
 */
export function cancelRegistry(config: Config, metrics: Metrics, log: Logger, worker?: WorkerHooks): CancelRegistry {
  const peers = config.peers.length > 0 ? new PeerForwarder(config.peerId, config.peers, config.backend.connectTimeoutMs, log.child({ component: 'peers' })) : null;
  return new CancelRegistry({
    self: { peer: config.peerId, worker: worker?.index ?? 0 },
    ...(worker === undefined ? {} : { toWorker: (index: number, key: CancelKey) => worker.toWorker(index, key) }),
    ...(peers === null ? {} : { toPeer: (peer: number, key: CancelKey) => peers.forward(peer, key) }),
    counted: (route) => metrics.cancelRequest(route),
  });
}
