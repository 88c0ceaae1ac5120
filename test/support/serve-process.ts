import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';

/** A log record of the pgfence command (pino JSON lines). */
export type LogRecord = Record<string, unknown> & { msg?: string };

/** `pgfence serve` as users run it, in a child process (with its workers), and its JSON log. */
export class ServeProcess {
  readonly records: LogRecord[] = [];
  /** Everything it wrote to stdout and stderr. */
  output = '';
  private buffered = '';
  private readonly waiters = new Set<() => void>();
  exitCode: number | null = null;
  readonly exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcessByStdio<null, Readable, Readable>,
    readonly dir: string,
    readonly file: string,
  ) {
    const take = (chunk: Buffer): void => {
      this.output += chunk.toString();
      this.buffered += chunk.toString();
      const lines = this.buffered.split('\n');
      this.buffered = lines.pop() ?? '';
      for (const line of lines) {
        try {
          this.records.push(JSON.parse(line) as LogRecord);
        } catch {
          this.records.push({ msg: line });
        }
      }
      for (const wake of [...this.waiters]) wake();
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    this.exited = once(child, 'exit').then(([code]) => {
      this.exitCode = code as number | null;
      for (const wake of [...this.waiters]) wake();
      return this.exitCode;
    });
  }

  /**
   * Writes `yaml` to a fresh directory and runs `pgfence serve` on it (`env` adds to the
   * environment); `pgfence` is the command that runs pgfence (default: src/cli.ts through tsx).
   */
  static async start(yaml: string, env: Record<string, string>, pgfence: readonly string[] = [process.execPath, '--import', 'tsx', 'src/cli.ts']): Promise<ServeProcess> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-serve-'));
    const file = path.join(dir, 'pgfence.yaml');
    await writeFile(file, yaml);
    const [command, ...args] = pgfence as [string, ...string[]];
    const child = spawn(command, [...args, 'serve', '--config', file], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new ServeProcess(child, dir, file);
  }

  /** The `n`-th record (1-based) that `match` accepts, once it has been written; rejects if pgfence exits first. */
  logged(match: (r: LogRecord) => boolean, n = 1): Promise<LogRecord> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.records.filter(match);
        if (found.length >= n) {
          this.waiters.delete(check);
          resolve(found[n - 1] as LogRecord);
        } else if (this.exitCode !== null || this.child.exitCode !== null) {
          this.waiters.delete(check);
          reject(new Error(`pgfence exited before the expected log line:\n${this.records.map((r) => JSON.stringify(r)).join('\n')}`));
        }
      };
      this.waiters.add(check);
      check();
    });
  }

  count(match: (r: LogRecord) => boolean): number {
    return this.records.filter(match).length;
  }

  async stop(): Promise<void> {
    if (this.exitCode === null && this.child.exitCode === null) this.child.kill('SIGKILL');
    await this.exited;
    await rm(this.dir, { recursive: true, force: true });
  }
}
