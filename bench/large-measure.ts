import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { positiveInt } from './environment.js';
import type { ReaderAnswer, ReaderResult } from './large-reader.js';
import type { Endpoint } from './pgbench.js';
import { TENANTS } from './setup.js';
import type { Target, Workload } from './targets.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
/** A connection, or one query, that takes longer than this fails the sample. */
const ANSWER_TIMEOUT_MS = 300_000;

export interface LargeOptions {
  /** Rows of generate_series (BENCH_LARGE_ROWS). */
  rows: number;
  /** Timed rounds of every target × query (BENCH_LARGE_ROUNDS). */
  rounds: number;
}

export function largeOptions(): LargeOptions {
  return { rows: positiveInt('BENCH_LARGE_ROWS', 2_000_000), rounds: positiveInt('BENCH_LARGE_ROUNDS', 3) };
}

export type LargeQueryName = 'COPY TO STDOUT' | 'SELECT';

export interface LargeQuery {
  name: LargeQueryName;
  sql: string;
}

export function largeQueries(rows: number): LargeQuery[] {
  const select = `SELECT g, repeat('x',100) FROM generate_series(1,${rows}) g`;
  return [
    { name: 'COPY TO STDOUT', sql: `COPY (${select}) TO STDOUT` },
    { name: 'SELECT', sql: select },
  ];
}

/** A target of the large-result section: where the reader connects (as tenant t1). */
export interface LargeTarget {
  name: string;
  endpoint(): Promise<Endpoint>;
  /** CPU ms the proxy's processes have used so far; null for direct Postgres. */
  proxyCpuMs(): number | null;
}

/** What a benchmark target is asked to be ready for: one client of tenant t1. */
const ONE_CLIENT: Workload = { name: 'large result', script: [], protocol: 'extended', tenants: 1, clients: 1 };

/** A benchmark target as the large-result section uses it: one client of tenant t1. */
export function largeTarget(target: Target): LargeTarget {
  return {
    name: target.name,
    endpoint: async () => (await target.ready(ONE_CLIENT)).endpoint(TENANTS[0]),
    proxyCpuMs: () => {
      const cpu = target.cpu();
      return cpu === null ? null : cpu.userMs + cpu.systemMs;
    },
  };
}

export interface LargeSample {
  round: number;
  bytes: number;
  rows: number;
  seconds: number;
  mbPerSecond: number;
  /** CPU time (user + system) of the proxy's processes from "go" to the answer; NaN for direct Postgres. */
  proxyCpuMs: number;
  /** CPU time of the reader process over its timed span. */
  readerCpuMs: number;
}

export interface LargeRow {
  query: LargeQueryName;
  target: string;
  samples: LargeSample[];
  /** Median, min and max MB/s over the rounds (MB = 1e6 bytes received by the client). */
  medianMBps: number;
  minMBps: number;
  maxMBps: number;
  /** Bytes one query delivered to the client (the median over rounds; they are all equal when the proxy forwards as is). */
  bytes: number;
  /** Median over rounds of benchmark-process CPU ms per MB. */
  proxyCpuMsPerMb: number;
  /** Median over rounds of reader-process CPU ms per MB. */
  readerCpuMsPerMb: number;
  /** Median MB/s over that of direct, and of PgBouncer, for the same query; null when either is missing. */
  vsDirect: number | null;
  vsPgbouncer: number | null;
  /** The first failure of this target × query; its failed rounds are not in `samples`. */
  error: string | null;
}

export interface LargeResults {
  rows: number;
  rounds: number;
  warmUpRows: number;
  direct: string;
  pgbouncer: string | null;
  results: LargeRow[];
}

const median = (values: readonly number[]): number => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/**
 * MB/s of a large result through each target. The reader runs in a child process (bench/large-reader.ts),
 * so the CPU time this process spends between "go" and the answer is pgfence's (it runs here) plus
 * an idle event loop. Each target × query is warmed up once with a tenth of the rows, then every
 * round runs every query through every target, the targets in an order rotated by one each round.
 */
export async function measureLargeResults(
  targets: readonly LargeTarget[],
  names: { direct: string; pgbouncer: string | null },
  opts: LargeOptions,
  progress: (line: string) => void,
): Promise<LargeResults> {
  const queries = largeQueries(opts.rows);
  const warmUpRows = Math.max(1, Math.round(opts.rows / 10));
  const warmUps = largeQueries(warmUpRows);
  const samples = new Map<string, LargeSample[]>();
  const errors = new Map<string, string>();
  const key = (query: LargeQueryName, target: string): string => `${query}\0${target}`;

  const reader = await ReaderProcess.start();
  try {
    for (const target of targets) {
      for (const [i, query] of warmUps.entries()) {
        const run = await reader.run(target, query.sql, warmUpRows);
        if ('error' in run) errors.set(key(queries[i]?.name ?? query.name, target.name), `warm-up: ${run.error}`);
      }
    }
    for (let round = 0; round < opts.rounds; round++) {
      const order = targets.map((_, i) => targets[(i + round) % targets.length] as LargeTarget);
      for (const query of queries) {
        for (const target of order) {
          const k = key(query.name, target.name);
          const run = await reader.run(target, query.sql, opts.rows);
          if ('error' in run) {
            if (!errors.has(k)) errors.set(k, run.error);
            progress(`round ${round + 1}: ${query.name.padEnd(15)} ${target.name.padEnd(22)} failed: ${run.error}`);
            continue;
          }
          const sample: LargeSample = {
            round: round + 1,
            bytes: run.bytes,
            rows: run.rows,
            seconds: run.seconds,
            mbPerSecond: run.bytes / 1e6 / run.seconds,
            proxyCpuMs: run.proxyCpuMs,
            readerCpuMs: run.cpuMs,
          };
          samples.set(k, [...(samples.get(k) ?? []), sample]);
          progress(
            `round ${round + 1}: ${query.name.padEnd(15)} ${target.name.padEnd(22)} ${sample.mbPerSecond.toFixed(1).padStart(7)} MB/s ` +
              `(${(run.bytes / 1e6).toFixed(1)} MB in ${run.seconds.toFixed(2)} s; proxy CPU ${run.proxyCpuMs.toFixed(0)} ms, reader CPU ${run.cpuMs.toFixed(0)} ms)`,
          );
        }
      }
    }
  } finally {
    await reader.close();
  }

  const results: LargeRow[] = [];
  for (const query of queries) {
    for (const target of targets) {
      const k = key(query.name, target.name);
      const list = samples.get(k) ?? [];
      const mbps = list.map((s) => s.mbPerSecond);
      const perMb = (cpu: (s: LargeSample) => number): number => median(list.map((s) => cpu(s) / (s.bytes / 1e6)));
      results.push({
        query: query.name,
        target: target.name,
        samples: list,
        medianMBps: median(mbps),
        minMBps: list.length === 0 ? NaN : Math.min(...mbps),
        maxMBps: list.length === 0 ? NaN : Math.max(...mbps),
        bytes: median(list.map((s) => s.bytes)),
        proxyCpuMsPerMb: perMb((s) => s.proxyCpuMs),
        readerCpuMsPerMb: perMb((s) => s.readerCpuMs),
        vsDirect: null,
        vsPgbouncer: null,
        error: errors.get(k) ?? null,
      });
    }
  }
  const ratio = (row: LargeRow, base: string | null): number | null => {
    const other = results.find((r) => r.query === row.query && r.target === base);
    if (other === undefined || !(other.medianMBps > 0) || !Number.isFinite(row.medianMBps)) return null;
    return row.medianMBps / other.medianMBps;
  };
  for (const row of results) {
    row.vsDirect = ratio(row, names.direct);
    row.vsPgbouncer = ratio(row, names.pgbouncer);
  }
  return { rows: opts.rows, rounds: opts.rounds, warmUpRows, direct: names.direct, pgbouncer: names.pgbouncer, results };
}

type RunAnswer = (ReaderResult & { proxyCpuMs: number }) | { error: string };

/** The reader child process and its line protocol (see bench/large-reader.ts). */
class ReaderProcess {
  private readonly answers: string[] = [];
  private waiter: (() => void) | null = null;
  private exited = false;
  private stderr = '';

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: Interface,
  ) {
    lines.on('line', (line) => {
      this.answers.push(line);
      this.wake();
    });
    child.stderr.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString('utf8')).slice(-4_000)));
    child.once('exit', () => {
      this.exited = true;
      this.wake();
    });
  }

  static start(): Promise<ReaderProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'bench/large-reader.ts')], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.on('error', () => undefined);
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve(new ReaderProcess(child, createInterface({ input: child.stdout }))));
    });
  }

  /** Connects to the target as tenant t1, then times one query; the process's CPU is read around the query only. */
  async run(target: LargeTarget, sql: string, expectedRows: number): Promise<RunAnswer> {
    let endpoint: Endpoint;
    try {
      endpoint = await target.endpoint();
    } catch (error) {
      return { error: `target did not start: ${error instanceof Error ? error.message : String(error)}` };
    }
    this.send(JSON.stringify({ endpoint, sql }));
    const ready = await this.answer();
    if ('error' in ready) return ready;
    const cpuBefore = target.proxyCpuMs();
    this.send('go');
    const result = await this.answer();
    const cpuAfter = target.proxyCpuMs();
    if ('error' in result) return result;
    if (!('bytes' in result)) return { error: 'the reader answered "ready" to "go"' };
    if (result.rows !== expectedRows) return { error: `${result.rows} rows (DataRow/CopyData messages), expected ${expectedRows}` };
    return { ...result, proxyCpuMs: cpuBefore === null || cpuAfter === null ? NaN : cpuAfter - cpuBefore };
  }

  private send(line: string): void {
    if (!this.exited) this.child.stdin.write(line + '\n');
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }

  private async answer(): Promise<ReaderAnswer> {
    const deadline = Date.now() + ANSWER_TIMEOUT_MS;
    while (this.answers.length === 0) {
      if (this.exited) return { error: `the reader process exited: ${this.stderr.trim() || 'no output'}` };
      const left = deadline - Date.now();
      if (left <= 0) {
        this.child.kill('SIGKILL');
        return { error: `no answer from the reader within ${ANSWER_TIMEOUT_MS / 1000} s` };
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return JSON.parse(this.answers.shift() as string) as ReaderAnswer;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    this.lines.close();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}
