import type { Logger } from 'pino';
import type { ConsoleContext } from '../admin/console.js';
import { ConfigError } from '../config/errors.js';
import type { Config } from '../config/schema.js';
import { createLogger } from '../log.js';
import { type RunningPgfence, startPgfence } from '../server.js';
import type { CancelKey } from './cancel-key.js';
import { consoleSnapshot, type ConsoleSnapshot, mergeSnapshots } from './console-merge.js';
import type { WorkerHooks } from './hooks.js';
import { type InstanceOp, isMessage, type RemoteError, type ToPrimary, type ToWorker, type WorkerOp } from './messages.js';

/**
 * One worker process of `workers: N`: a whole pgfence (server.ts) on the port the primary shares
 * out, with its share of the pool. It takes its configuration from the primary (so a restarted
 * worker runs what the others run), answers the primary's questions for the admin console and
 * /metrics, and stops when the primary says so (or the primary goes away).
 */

function send(message: ToPrimary): void {
  // The channel is gone only when the primary is; 'disconnect' then drains this worker.
  if (process.connected) process.send?.(message);
}

function remoteError(error: unknown): RemoteError {
  return { message: error instanceof Error ? error.message : String(error), config: error instanceof ConfigError };
}

/** An error from the primary, as the console shows it: a configuration error keeps its text. */
function localError(error: RemoteError): Error {
  return error.config ? new ConfigError('the configuration file', [{ message: error.message }]) : new Error(error.message);
}

/** The console of this worker, answering for every worker through the primary. */
function instanceConsole(local: ConsoleContext, request: (op: InstanceOp) => Promise<unknown[]>): ConsoleContext {
  const all = (op: WorkerOp): Promise<unknown[]> => request({ kind: 'all', op });
  const sum = (answers: unknown[]): number => answers.reduce<number>((n, a) => n + (typeof a === 'number' ? a : 0), 0);
  return {
    ...local,
    gather: async (item) => mergeSnapshots((await all({ kind: 'show', item })) as ConsoleSnapshot[]),
    reload: async () => (await request({ kind: 'reload' }))[0] as { applied: string[]; notApplied: string[] },
    pause: async () => void (await all({ kind: 'pause' })),
    resume: async () => void (await all({ kind: 'resume' })),
    reconnect: async () => sum(await all({ kind: 'reconnect' })),
    killTenant: async (tenant) => sum(await all({ kind: 'kill-tenant', tenant })),
    shutdown: () => void request({ kind: 'shutdown' }).catch((error: unknown) => local.onError?.('SHUTDOWN', error)),
  };
}

/** Runs this process as a worker until it is told to stop; resolves with the exit code. */
export async function runWorker(): Promise<number> {
  let running: RunningPgfence | null = null;
  let local: ConsoleContext | null = null;
  let index = -1;
  let log: Logger | null = null;
  let hooks: WorkerHooks | null = null;
  let nextRequest = 1;
  const requests = new Map<number, { resolve(answers: unknown[]): void; reject(error: Error): void }>();
  let stopping: Promise<void> | null = null;
  let started: (start: { index: number; count: number; config: Config }) => void = () => undefined;
  const start = new Promise<{ index: number; count: number; config: Config }>((resolve) => (started = resolve));
  let finished: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finished = resolve));

  const request = (op: InstanceOp): Promise<unknown[]> =>
    new Promise((resolve, reject) => {
      const id = nextRequest++;
      requests.set(id, { resolve, reject });
      send({ t: 'request', id, op });
    });

  const stop = (why: string): void => {
    stopping ??= (async () => {
      log?.info({ why }, 'worker draining');
      await running?.close();
      for (const pending of requests.values()) pending.reject(new Error('the worker is stopping'));
      finished(0);
    })();
  };

  async function answer(op: WorkerOp): Promise<unknown> {
    if (running === null || local === null) throw new Error('the worker is not serving yet');
    switch (op.kind) {
      case 'show':
        return consoleSnapshot(op.item, local, index);
      case 'pause':
        await local.pause();
        return null;
      case 'resume':
        await local.resume();
        return null;
      case 'reconnect':
        return local.reconnect();
      case 'kill-tenant':
        return local.killTenant(op.tenant);
      case 'apply-config':
        return running.reload(op.config);
      case 'metrics':
        return running.metrics.registry.getMetricsAsJSON();
      case 'ready':
        return running.ready();
    }
  }

  process.on('message', (message: unknown) => {
    if (!isMessage<ToWorker>(message)) return;
    switch (message.t) {
      case 'start':
        started(message);
        return;
      case 'cancel':
        running?.cancels.cancelHere(message.key.processId, message.key.secretKey);
        return;
      case 'login-failed':
        hooks?.onLoginFailedElsewhere?.(message.address);
        return;
      case 'ask': {
        const id = message.id;
        answer(message.op).then(
          (value) => send({ t: 'answer', id, value }),
          (error: unknown) => send({ t: 'answer', id, error: remoteError(error) }),
        );
        return;
      }
      case 'reply': {
        const pending = requests.get(message.id);
        requests.delete(message.id);
        if ('error' in message) pending?.reject(localError(message.error));
        else pending?.resolve(message.answers);
        return;
      }
      case 'drain':
        stop('the primary is shutting down');
        return;
    }
  });
  // The primary owns reloads (SIGHUP) and shutdown: a signal sent to the whole process group
  // (Ctrl-C) also reaches it, and it drains every worker.
  process.on('SIGHUP', () => log?.debug('SIGHUP ignored in a worker: the primary reloads every worker'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('disconnect', () => stop('the primary went away'));
  send({ t: 'ready' });

  const first = await Promise.race([start, done.then(() => null)]);
  if (first === null) return done;
  const { index: given, count, config } = first;
  index = given;
  log = createLogger(config.log.level).child({ worker: index });
  hooks = {
    index,
    count,
    toWorker: (worker: number, key: CancelKey) => send({ t: 'cancel', worker, key }),
    loginFailed: (address: string) => send({ t: 'login-failed', address }),
    onLoginFailedElsewhere: null,
    console: (context) => {
      local = context;
      return instanceConsole(context, request);
    },
  };
  try {
    running = await startPgfence(config, log, { worker: hooks });
  } catch (error) {
    log.error({ err: error instanceof Error ? error.message : String(error) }, 'worker could not start');
    send({ t: 'failed', error: error instanceof Error ? error.message : String(error) });
    return 1;
  }
  if (stopping !== null) await running.close();
  else send({ t: 'listening', port: running.port, host: running.host });
  return done;
}
