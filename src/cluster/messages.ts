import type { ShowItem } from '../admin/console-commands.js';
import type { Config } from '../config/schema.js';
import type { CancelKey } from './cancel-key.js';

/**
 * The IPC between the primary and its workers (node:cluster, `serialization: 'advanced'`, so
 * Dates and Maps cross as they are). Every message is a plain object with a `t` tag.
 */

/** What the primary asks of every worker, for the admin console, a reload or a scrape. */
export type WorkerOp =
  | { kind: 'show'; item: ShowItem }
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'reconnect' }
  | { kind: 'kill-tenant'; tenant: string }
  | { kind: 'apply-config'; config: Config }
  | { kind: 'metrics' }
  | { kind: 'ready' };

/** What a worker's console asks the primary for: an op on every worker, or an instance-wide action. */
export type InstanceOp = { kind: 'all'; op: WorkerOp } | { kind: 'reload' } | { kind: 'shutdown' };

/** An error that crossed the IPC: `config` marks a configuration error, shown to the operator as it is. */
export interface RemoteError {
  message: string;
  config: boolean;
}

export type ToWorker =
  | { t: 'start'; index: number; count: number; config: Config }
  | { t: 'cancel'; key: CancelKey }
  | { t: 'login-failed'; address: string }
  | { t: 'ask'; id: number; op: WorkerOp }
  | { t: 'reply'; id: number; answers: unknown[] }
  | { t: 'reply'; id: number; error: RemoteError }
  | { t: 'drain' };

export type ToPrimary =
  | { t: 'ready' }
  | { t: 'listening'; port: number; host: string }
  | { t: 'failed'; error: string }
  | { t: 'cancel'; worker: number; key: CancelKey }
  | { t: 'login-failed'; address: string }
  | { t: 'answer'; id: number; value: unknown }
  | { t: 'answer'; id: number; error: RemoteError }
  | { t: 'request'; id: number; op: InstanceOp };

/** A message of ours (anything else on the channel, such as prom-client's or Node's own, is ignored). */
export function isMessage<M extends { t: string }>(value: unknown): value is M {
  return typeof value === 'object' && value !== null && typeof (value as { t?: unknown }).t === 'string';
}
