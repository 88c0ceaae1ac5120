import { spawn } from 'node:child_process';
import { LifecycleError } from './context.js';

/** One client tool run: its executable, arguments and libpq environment. */
export interface ToolRun {
  /** How errors name it: `pg_dump`, `pg_restore`. */
  name: string;
  path: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** What a tool printed on stderr is kept up to this much (its last lines matter less than its first). */
const STDERR_BYTES = 16 * 1024;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  spawnError?: Error;
}

/**
 * `producer | consumer` without a shell (pg_dump's stdout into pg_restore's stdin), so the copy
 * is restored while it is dumped. Resolves with the bytes that went through; rejects with a
 * LifecycleError naming the tool that failed, the consumer first (a consumer that stops breaks
 * the producer's pipe, which says less). Both are killed after `timeoutMs`.
 */
export function pipeTools(producer: ToolRun, consumer: ToolRun, timeoutMs: number): Promise<number> {
  const from = spawn(producer.path, producer.args, { env: producer.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const into = spawn(consumer.path, consumer.args, { env: consumer.env, stdio: ['pipe', 'ignore', 'pipe'] });
  let bytes = 0;
  from.stdout.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  // A consumer gone early: the producer's writes fail (EPIPE) and it exits non-zero.
  into.stdin.on('error', () => undefined);
  from.stdout.pipe(into.stdin);
  const timer = setTimeout(() => {
    from.kill('SIGKILL');
    into.kill('SIGKILL');
  }, timeoutMs);
  timer.unref();
  return Promise.all([exited(from), exited(into)]).then(([dumped, restored]) => {
    clearTimeout(timer);
    if (!succeeded(restored)) throw new LifecycleError('failed', `${consumer.name} failed: ${reason(restored)}`);
    if (!succeeded(dumped)) throw new LifecycleError('failed', `${producer.name} failed: ${reason(dumped)}`);
    return bytes;
  });
}

function exited(child: ReturnType<typeof spawn>): Promise<Exit> {
  return new Promise((resolve) => {
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < STDERR_BYTES) stderr += chunk.toString('utf8');
    });
    let spawnError: Error | undefined;
    child.on('error', (error) => {
      spawnError = error;
    });
    child.on('close', (code, signal) => resolve({ code, signal, stderr: stderr.slice(0, STDERR_BYTES).trim(), spawnError }));
  });
}

function succeeded(exit: Exit): boolean {
  return exit.code === 0 && exit.spawnError === undefined;
}

function reason(exit: Exit): string {
  if (exit.spawnError !== undefined) return exit.spawnError.message;
  if (exit.stderr !== '') return exit.stderr;
  return exit.signal !== null ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}
