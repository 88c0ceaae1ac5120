import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { type AdminServer, startAdminServer } from '../admin/http.js';
import type { ReadinessVerdict } from '../admin/readiness.js';
import { ConfigError } from '../config/errors.js';
import { planReload } from '../config/reload.js';
import type { Config } from '../config/schema.js';
import { isMessage, type InstanceOp, type RemoteError, type ToPrimary, type ToWorker, type WorkerOp } from './messages.js';
import { shareProblem, workersFor } from './shares.js';

/**
 * The primary process of `workers: N` (node:cluster). It accepts nothing itself: node:cluster's
 * round-robin scheduling (its default everywhere but Windows) accepts each connection here and
 * hands it to the next worker, so the workers share one port evenly. The primary
 *
 *   - forks N workers and gives each its index and the configuration;
 *   - restarts a worker that dies (100 ms, doubling to 10 s while it keeps dying within 10 s of
 *     starting); the dead worker's clients lose their connection, the others never notice;
 *   - passes a CancelRequest that reached the wrong worker on to the one that owns the key;
 *   - fans the admin console's commands out to every worker and returns their answers;
 *   - serves the admin endpoint: /metrics sums every worker's metrics (prom-client's
 *     AggregatorRegistry), /readyz is ready while any worker is (listening, its backend reachable);
 *   - on SIGHUP rereads the file and hands the result to every worker; on SIGTERM/SIGINT (or
 *     SHUTDOWN in the console) tells every worker to drain, and exits once they have.
 */

/** Restart delays: from this, doubling while a worker dies soon after starting, up to the maximum. */
const FIRST_RESTART_MS = 100;
const MAX_RESTART_MS = 10_000;
/** A worker that served this long before dying is restarted after FIRST_RESTART_MS again. */
const STABLE_MS = 10_000;
/** How long the primary waits for every worker's answer to a console command or a scrape (PAUSE: no limit). */
const ANSWER_TIMEOUT_MS = 10_000;

type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

interface Slot {
  readonly index: number;
  worker: Worker | null;
  listening: boolean;
  listeningAt: number;
  restartMs: number;
  restartTimer: NodeJS.Timeout | null;
}

interface Fanout {
  waiting: Set<number>;
  answers: Map<number, unknown>;
  resolve(answers: unknown[]): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | null;
}

function remoteError(error: unknown): RemoteError {
  return { message: error instanceof Error ? error.message : String(error), config: error instanceof ConfigError };
}

export interface PrimaryOptions {
  /** Rereads the configuration file (SIGHUP, RELOAD in the console). */
  loadConfig: () => Promise<Config>;
}

/** Runs the primary until the instance has stopped; resolves with the exit code. */
export async function runPrimary(initial: Config, log: Logger, options: PrimaryOptions): Promise<number> {
  let config = initial;
  const count = workersFor(config);
  cluster.setupPrimary({ serialization: 'advanced' });
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({ index, worker: null, listening: false, listeningAt: 0, restartMs: FIRST_RESTART_MS, restartTimer: null }));
  const fanouts = new Map<number, Fanout>();
  let nextFanout = 1;
  let closing: Promise<void> | null = null;
  let admin: AdminServer | null = null;

  // The primary's own metrics, summed with the workers' on scrape.
  const registry = new Registry();
  const restarts = new Counter({ name: 'pgfence_worker_restarts_total', help: 'Worker processes restarted after they died.', registers: [registry] });
  new Gauge({
    name: 'pgfence_workers',
    help: 'Worker processes serving clients now (workers: N).',
    registers: [registry],
    collect() {
      this.set(slots.filter((s) => s.listening).length);
    },
  });
  collectDefaultMetrics({ register: registry });

  let startup: { resolve(): void; reject(error: Error): void } | null = null;
  const started = new Promise<void>((resolve, reject) => (startup = { resolve, reject }));

  function sendTo(slot: Slot, message: ToWorker): void {
    if (slot.worker?.isConnected() === true) slot.worker.send(message);
  }

  function fork(slot: Slot): void {
    slot.restartTimer = null;
    const worker = cluster.fork();
    slot.worker = worker;
    worker.on('message', (message: unknown) => {
      if (isMessage<ToPrimary>(message)) onMessage(slot, worker, message);
    });
    worker.on('exit', (code, signal) => onExit(slot, worker, code, signal));
    // A worker that fails before its channel opens reports through 'exit'.
    worker.on('error', (error) => log.warn({ worker: slot.index, err: error.message }, 'worker channel error'));
  }

  function onMessage(slot: Slot, worker: Worker, message: ToPrimary): void {
    if (slot.worker !== worker) return;
    switch (message.t) {
      case 'ready':
        sendTo(slot, { t: 'start', index: slot.index, count, config });
        return;
      case 'listening':
        slot.listening = true;
        slot.listeningAt = Date.now();
        log.info({ worker: slot.index, pid: worker.process.pid }, 'worker listening');
        if (slots.every((s) => s.listening)) {
          startup?.resolve();
          startup = null;
          log.info({ host: message.host, port: message.port, workers: count }, 'pgfence listening with workers');
        }
        return;
      case 'failed':
        // The worker has logged why.
        startup?.reject(new Error(message.error));
        startup = null;
        return;
      case 'cancel': {
        const owner = slots[message.worker];
        if (owner === undefined || !owner.listening) {
          log.debug({ worker: message.worker }, 'CancelRequest for a worker that is not running: dropped');
          return;
        }
        sendTo(owner, { t: 'cancel', key: message.key });
        return;
      }
      case 'login-failed':
        for (const other of slots) if (other !== slot && other.listening) sendTo(other, message);
        return;
      case 'answer': {
        const fanout = fanouts.get(message.id);
        if (fanout === undefined) return;
        if ('error' in message) {
          settle(message.id, new Error(message.error.message));
          return;
        }
        fanout.answers.set(slot.index, message.value);
        fanout.waiting.delete(slot.index);
        settle(message.id);
        return;
      }
      case 'request': {
        const id = message.id;
        instanceOp(message.op).then(
          (answers) => sendTo(slot, { t: 'reply', id, answers }),
          (error: unknown) => sendTo(slot, { t: 'reply', id, error: remoteError(error) }),
        );
        return;
      }
    }
  }

  function settle(id: number, error?: Error): void {
    const fanout = fanouts.get(id);
    if (fanout === undefined || (error === undefined && fanout.waiting.size > 0)) return;
    fanouts.delete(id);
    if (fanout.timer !== null) clearTimeout(fanout.timer);
    if (error !== undefined) fanout.reject(error);
    else fanout.resolve([...fanout.answers].sort(([a], [b]) => a - b).map(([, answer]) => answer));
  }

  /** Asks every serving worker; resolves with their answers in worker order (workers that die meanwhile are left out). */
  function askAll(op: WorkerOp): Promise<unknown[]> {
    return new Promise((resolve, reject) => {
      const id = nextFanout++;
      const serving = slots.filter((s) => s.listening);
      const fanout: Fanout = { waiting: new Set(serving.map((s) => s.index)), answers: new Map(), resolve, reject, timer: null };
      if (op.kind !== 'pause') {
        fanout.timer = setTimeout(() => settle(id, new Error(`worker(s) ${[...fanout.waiting].join(', ')} did not answer within ${ANSWER_TIMEOUT_MS} ms`)), ANSWER_TIMEOUT_MS);
      }
      fanouts.set(id, fanout);
      for (const slot of serving) sendTo(slot, { t: 'ask', id, op });
      settle(id);
    });
  }

  async function instanceOp(op: InstanceOp): Promise<unknown[]> {
    switch (op.kind) {
      case 'all':
        return askAll(op.op);
      case 'reload':
        return [await reload()];
      case 'shutdown':
        log.info('SHUTDOWN from the admin console');
        // After the answer has gone back to the console.
        setImmediate(requestStop);
        return [];
    }
  }

  async function reload(): Promise<{ applied: string[]; notApplied: string[] }> {
    const next = await options.loadConfig();
    const plan = planReload(config, next);
    const problem = shareProblem(plan.effective, count);
    if (problem !== null) throw new ConfigError('the configuration file', [{ key: 'pool', message: problem }]);
    const answers = await askAll({ kind: 'apply-config', config: next });
    // Workers restarted from now on start with what the running ones run.
    config = plan.effective;
    log.level = config.log.level;
    return (answers[0] as { applied: string[]; notApplied: string[] } | undefined) ?? { applied: plan.applied, notApplied: plan.notApplied };
  }

  function onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    const served = slot.listening ? Date.now() - slot.listeningAt : 0;
    slot.worker = null;
    slot.listening = false;
    for (const [id, fanout] of fanouts) {
      fanout.waiting.delete(slot.index);
      settle(id);
    }
    if (closing !== null) return;
    if (startup !== null) {
      startup.reject(new Error(`worker ${slot.index} exited (${signal ?? code}) before it listened`));
      startup = null;
      return;
    }
    slot.restartMs = served >= STABLE_MS ? FIRST_RESTART_MS : Math.min(slot.restartMs * 2, MAX_RESTART_MS);
    const delay = served >= STABLE_MS ? FIRST_RESTART_MS : slot.restartMs;
    log.warn({ worker: slot.index, pid: worker.process.pid, code, signal, restartInMs: delay }, 'worker died; its clients lost their connections; restarting it');
    restarts.inc();
    slot.restartTimer = setTimeout(() => fork(slot), delay);
  }

  function shutdown(): Promise<void> {
    closing ??= (async () => {
      log.info('shutting down: no new connections, waiting for running transactions');
      await admin?.close();
      const exited = slots.map((slot) => {
        if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
        const worker = slot.worker;
        if (worker === null) return Promise.resolve();
        return new Promise<void>((resolve) => {
          worker.once('exit', () => resolve());
          sendTo(slot, { t: 'drain' });
        });
      });
      // A worker that does not stop after its drain time is ended.
      const deadline = setTimeout(() => {
        for (const slot of slots) slot.worker?.process.kill('SIGKILL');
      }, config.listen.shutdownTimeoutMs + 5_000);
      await Promise.all(exited);
      clearTimeout(deadline);
      log.info('pgfence stopped');
    })();
    return closing;
  }

  /**
   * Connections go only to live workers, so the instance is ready when one of them is (its
   * backend probe included); one restarting worker leaves it ready.
   */
  async function instanceReadiness(): Promise<ReadinessVerdict> {
    if (closing !== null) return { ready: false, reason: 'not ready: draining (pgfence is shutting down)' };
    if (!slots.some((s) => s.listening)) return { ready: false, reason: 'not ready: no worker is listening for clients' };
    const verdicts = (await askAll({ kind: 'ready' })) as ReadinessVerdict[];
    return verdicts.find((v) => v.ready) ?? verdicts[0] ?? { ready: false, reason: 'not ready: no worker answered' };
  }

  let requestStop: () => void = () => undefined;
  const stopRequested = new Promise<void>((resolve) => {
    requestStop = resolve;
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  const onHangup = (): void => {
    reload().then(
      (result) => log.info(result, 'configuration reloaded in every worker'),
      (error: unknown) => log.error({ err: error instanceof Error ? error.message : String(error) }, 'reload failed; keeping the running configuration'),
    );
  };
  process.on('SIGHUP', onHangup);

  log.info({ workers: count }, 'starting workers');
  for (const slot of slots) fork(slot);
  try {
    await Promise.race([started, stopRequested]);
  } catch (error) {
    await shutdown();
    throw error;
  }
  if (config.admin.enabled) {
    admin = await startAdminServer(
      config.admin,
      {
        metrics: {
          contentType: registry.contentType,
          render: async () => {
            const workers = (await askAll({ kind: 'metrics' })) as MetricsJson[];
            const own = await registry.getMetricsAsJSON();
            return AggregatorRegistry.aggregate([...workers, own]).metrics();
          },
        },
        ready: () => instanceReadiness(),
      },
      log.child({ component: 'admin' }),
    );
  }
  await stopRequested;
  process.off('SIGHUP', onHangup);
  await shutdown();
  return 0;
}
