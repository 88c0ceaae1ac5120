import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { cleanEnv, run, tail } from './proc.js';

/** Where one pgbench process connects, and the environment it needs (PGPASSWORD, PGOPTIONS). */
export interface Endpoint {
  host: string;
  port: number;
  user: string;
  dbname: string;
  env: Record<string, string>;
}

export interface PgbenchRun {
  /** Unique per run: the per-transaction logs are named after it. */
  name: string;
  /** The script options: ['-S'], ['-b', 'tpcb-like'] or ['-f', file]. */
  script: readonly string[];
  protocol: 'simple' | 'extended' | 'prepared';
  /** pgbench -C: a new connection per transaction. */
  connectEach?: boolean;
  /** Clients of each pgbench process. */
  clients: number;
  /** One pgbench process per endpoint, all started together. */
  endpoints: readonly Endpoint[];
  seconds: number;
  logDir: string;
}

export interface Measurement {
  /** Sum over the processes of pgbench's "tps = … (without initial connection time)". */
  tps: number;
  /** Transactions in the per-transaction logs. */
  transactions: number;
  failed: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  /** pgbench errors; a measurement with errors is not comparable. */
  errors: string[];
}

/**
 * Runs pgbench (-n, no vacuum; -l, one log line per transaction) once per endpoint in parallel and
 * sums their TPS; latencies are read from the logs' third column (microseconds from the start of
 * the transaction to its end), so mean and percentiles cover every transaction of every process.
 */
export async function runPgbench(pgbench: string, spec: PgbenchRun): Promise<Measurement> {
  const jobs = spec.endpoints.length === 1 ? Math.min(2, spec.clients) : 1;
  const processes = spec.endpoints.map((endpoint, i) => {
    const prefix = path.join(spec.logDir, `${spec.name}-${i}`);
    const args = [
      '-n', '-M', spec.protocol, ...spec.script, ...(spec.connectEach === true ? ['-C'] : []),
      '-c', String(spec.clients), '-j', String(jobs), '-T', String(spec.seconds),
      '-l', `--log-prefix=${prefix}`,
      '-h', endpoint.host, '-p', String(endpoint.port), '-U', endpoint.user, endpoint.dbname,
    ];
    return run(pgbench, args, { env: cleanEnv(endpoint.env), timeoutMs: (spec.seconds + 90) * 1000 });
  });
  const results = await Promise.all(processes);

  const errors: string[] = [];
  let tps = 0;
  let failed = 0;
  for (const result of results) {
    const tpsMatch = /tps = ([\d.]+) \((?:without initial connection time|including reconnection times)\)/.exec(result.stdout);
    const failedMatch = /number of failed transactions: (\d+)/.exec(result.stdout);
    failed += Number(failedMatch?.[1] ?? 0);
    if (result.code !== 0 || tpsMatch === null) {
      errors.push(result.timedOut ? 'pgbench timed out' : `pgbench exited ${result.code ?? result.signal}: ${tail(result.stderr, 4)}`);
    }
    tps += Number(tpsMatch?.[1] ?? 0);
  }
  const latencies = await readLatencies(spec.logDir, spec.name);
  return { tps, failed, errors, transactions: latencies.length, ...summarize(latencies) };
}

/** Latencies (µs) of the successful transactions in the logs of one run; the logs are removed. */
async function readLatencies(dir: string, name: string): Promise<Float64Array> {
  const files = (await readdir(dir)).filter((f) => f.startsWith(`${name}-`));
  const values: number[] = [];
  for (const file of files) {
    const text = await readFile(path.join(dir, file), 'utf8');
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end === -1) end = text.length;
      // client_id transaction_no time script_no time_epoch time_us [...]; time is "failed" for a failure
      const fields = text.slice(start, end).split(' ');
      const micros = Number(fields[2]);
      if (fields.length >= 6 && Number.isFinite(micros)) values.push(micros);
      start = end + 1;
    }
    await rm(path.join(dir, file), { force: true });
  }
  return Float64Array.from(values).sort();
}

function summarize(sorted: Float64Array): { meanMs: number; p50Ms: number; p99Ms: number } {
  if (sorted.length === 0) return { meanMs: NaN, p50Ms: NaN, p99Ms: NaN };
  let sum = 0;
  for (const v of sorted) sum += v;
  return { meanMs: sum / sorted.length / 1000, p50Ms: percentile(sorted, 0.5) / 1000, p99Ms: percentile(sorted, 0.99) / 1000 };
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, q: number): number {
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? NaN;
}
