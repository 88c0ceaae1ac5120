import { randomInt } from 'node:crypto';

/**
 * The layout of the BackendKeyData pgfence gives its clients, so that a CancelRequest reaching
 * any process of any peered instance can be routed to the process that owns the session:
 *
 *   processId  (int32): 0 | worker index (7 bits) | random (24 bits)
 *   secretKey  (int32): peer id (14 bits) | random (18 bits)
 *
 * The process id stays positive, as Postgres's own process ids are (clients print it, and
 * NotificationResponse carries it). The worker index is 0 with `workers: 1`; the peer id is 0
 * without peering. 42 bits of the key are random: an attacker who wants to cancel some query has
 * to guess a live (processId, secretKey) pair, one chance in 2^42 / live sessions per attempt,
 * about the odds Postgres's own 32-bit secret with a guessable pid gives.
 */

export const WORKER_BITS = 7;
export const MAX_WORKERS = 2 ** WORKER_BITS;
export const PEER_BITS = 14;
/** Peer ids run from 1 to this (PgBouncer's peer_id has the same range). */
export const MAX_PEER_ID = 2 ** PEER_BITS - 1;

const PROCESS_RANDOM_BITS = 31 - WORKER_BITS;
const SECRET_RANDOM_BITS = 32 - PEER_BITS;

/** Which process issued a key: the instance (peer id, 0 without peering) and its worker. */
export interface KeyOwner {
  peer: number;
  worker: number;
}

export interface CancelKey {
  processId: number;
  secretKey: number;
}

/** The owner encoded in a key (any two int32s: what a client sends is not trusted to be ours). */
export function keyOwner(processId: number, secretKey: number): KeyOwner {
  return {
    worker: (processId >>> PROCESS_RANDOM_BITS) & (MAX_WORKERS - 1),
    peer: (secretKey >>> SECRET_RANDOM_BITS) & MAX_PEER_ID,
  };
}

/** A fresh key owned by `owner`; the random part of the process id is never 0. */
export function newCancelKey(owner: KeyOwner): CancelKey {
  if (!Number.isInteger(owner.worker) || owner.worker < 0 || owner.worker >= MAX_WORKERS) throw new RangeError(`worker index must be 0..${MAX_WORKERS - 1}`);
  if (!Number.isInteger(owner.peer) || owner.peer < 0 || owner.peer > MAX_PEER_ID) throw new RangeError(`peer id must be 0..${MAX_PEER_ID}`);
  const processId = ((owner.worker << PROCESS_RANDOM_BITS) | randomInt(1, 2 ** PROCESS_RANDOM_BITS)) >>> 0;
  // As an int32, the way the wire (and the cancel packet parser) reads it back.
  const secretKey = ((owner.peer << SECRET_RANDOM_BITS) | randomInt(0, 2 ** SECRET_RANDOM_BITS)) | 0;
  return { processId, secretKey };
}
