import { type Measurement, runPgbench } from './pgbench.js';
import { type BenchDatabase, TENANTS } from './setup.js';
import { POOL_SIZE, type Target, type Workload } from './targets.js';

/** One pgbench run of one target in one round. */
export interface Sample extends Measurement {
  round: number;
  /** CPU time (ms) of the proxy's processes over the run; null for direct Postgres. */
  proxyCpuMs: number | null;
  /** Its user-space part (the rest is kernel time). */
  proxyUserCpuMs: number | null;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** One target × workload over every round. */
export interface Row {
  target: string;
  workload: string;
  clients: number;
  /** Backends the target may use, as configured ("—" for direct). */
  pool: string;
  samples: Sample[];
  tps: Spread | null;
  /** The proxy's CPU µs per transaction (per connection in a -C row). */
  cpuUsPerTxn: Spread | null;
  /** The user-space part of cpuUsPerTxn. */
  userCpuUsPerTxn: Spread | null;
  p50Ms: Spread | null;
  p99Ms: Spread | null;
  /** Errors of any round: a row with errors is not comparable. */
  errors: string[];
}

export interface ThroughputOptions {
  rounds: number;
  seconds: number;
  warmUpSeconds: number;
  logDir: string;
}

export function spread(values: readonly number[]): Spread | null {
  const finite = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (finite.length === 0) return null;
  const mid = finite.length >> 1;
  const median = finite.length % 2 === 1 ? (finite[mid] as number) : ((finite[mid - 1] as number) + (finite[mid] as number)) / 2;
  return { median, min: finite[0] as number, max: finite[finite.length - 1] as number };
}

/**
 * Every workload on every target that supports it, interleaved: for each workload the targets are
 * started (with that workload's pool sizes) and warmed up, then run one after the other for
 * `rounds` rounds, the start order rotating each round, so that a slow spell of the shared machine
 * falls on all of them alike. Targets are stopped after each workload, which frees their backends.
 */
export async function measureThroughput(
  db: BenchDatabase,
  pgbench: string,
  targets: readonly Target[],
  workloads: readonly Workload[],
  opts: ThroughputOptions,
  say: (line: string) => void,
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const w of workloads) {
    const active = targets.filter((t) => t.supports(w));
    const tenants = TENANTS.slice(0, w.tenants);
    const ready = new Map<Target, Awaited<ReturnType<Target['ready']>>>();
    const samples = new Map<Target, Sample[]>();
    const failures = new Map<Target, string>();
    for (const target of active) {
      try {
        const r = await target.ready(w);
        ready.set(target, r);
        samples.set(target, []);
        const warm = { name: slug(`${target.name}-${w.name}-warmup`), script: ['-S'], protocol: 'extended' as const, clients: POOL_SIZE, seconds: opts.warmUpSeconds, logDir: opts.logDir };
        await runPgbench(pgbench, { ...warm, endpoints: [r.endpoint(TENANTS[0])] });
      } catch (error) {
        failures.set(target, error instanceof Error ? error.message : String(error));
      }
    }
    const runnable = active.filter((t) => ready.has(t));
    for (let round = 0; round < opts.rounds; round++) {
      const order = runnable.map((_, i) => runnable[(i + round) % runnable.length] as Target);
      for (const target of order) {
        const r = ready.get(target);
        if (r === undefined) continue;
        await db.tidy(tenants);
        const cpuBefore = target.cpu();
        const m = await runPgbench(pgbench, {
          name: slug(`${target.name}-${w.name}-${round}`),
          script: w.script,
          protocol: w.protocol,
          connectEach: w.connectEach,
          clients: w.clients,
          endpoints: tenants.map((t) => r.endpoint(t)),
          seconds: opts.seconds,
          logDir: opts.logDir,
        });
        const cpuAfter = target.cpu();
        const used = cpuBefore === null || cpuAfter === null ? null : { userMs: cpuAfter.userMs - cpuBefore.userMs, systemMs: cpuAfter.systemMs - cpuBefore.systemMs };
        const proxyCpuMs = used === null ? null : used.userMs + used.systemMs;
        const proxyUserCpuMs = used?.userMs ?? null;
        samples.get(target)?.push({ ...m, round, proxyCpuMs, proxyUserCpuMs });
        const cpu = proxyCpuMs === null || m.transactions === 0 ? '' : `  proxy ${((proxyCpuMs * 1000) / m.transactions).toFixed(1)} µs/txn`;
        say(`  [${round + 1}/${opts.rounds}] ${w.name.padEnd(40)} ${target.name.padEnd(30)} ${m.tps.toFixed(0).padStart(7)} tps  p50 ${m.p50Ms.toFixed(3)} ms${cpu}${m.errors.length > 0 ? `  ERROR ${m.errors[0]}` : ''}`);
      }
    }
    for (const target of active) {
      const list = samples.get(target) ?? [];
      const failure = failures.get(target);
      rows.push(summarise(target, w, list, failure === undefined ? [] : [failure]));
      await target.close();
    }
  }
  return rows;
}

function summarise(target: Target, w: Workload, samples: Sample[], extraErrors: string[]): Row {
  const ok = samples.filter((s) => s.errors.length === 0);
  const perTxn = (ms: number | null, transactions: number): number[] => (ms === null || transactions === 0 ? [] : [(ms * 1000) / transactions]);
  return {
    target: target.name,
    workload: w.name,
    clients: w.tenants * w.clients,
    pool: target.pool(w),
    samples,
    tps: spread(ok.map((s) => s.tps)),
    cpuUsPerTxn: spread(ok.flatMap((s) => perTxn(s.proxyCpuMs, s.transactions))),
    userCpuUsPerTxn: spread(ok.flatMap((s) => perTxn(s.proxyUserCpuMs, s.transactions))),
    p50Ms: spread(ok.map((s) => s.p50Ms)),
    p99Ms: spread(ok.map((s) => s.p99Ms)),
    errors: [...extraErrors, ...samples.flatMap((s) => s.errors)],
  };
}

const slug = (text: string): string => text.replace(/[^a-zA-Z0-9]+/g, '_');
