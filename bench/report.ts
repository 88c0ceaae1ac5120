import { type GuardReport, guardSections } from './guard-report.js';
import type { LargeResults } from './large-measure.js';
import { largeSection } from './large-report.js';
import type { MemoryResult } from './memory.js';
import { resultStamp, writeResults } from './result-files.js';
import type { Row, Spread } from './throughput.js';

export const DIRECT = 'direct';
export const PGBOUNCER_RESET = 'PgBouncer reset-always';
export const PGBOUNCER_NO_RESET = 'PgBouncer no-reset';
export const PGBOUNCER_PLAIN_AUTH = 'PgBouncer no-reset, plain auth';
export const NODE_RELAY = 'Node TCP relay';
export const NODE_CANNED_SERVER = 'Node canned server';

export interface AddedLatency {
  target: string;
  p50Us: number;
  addedUs: number;
}

export interface Report {
  startedAt: string;
  seconds: number;
  rounds: number;
  environment: Record<string, string>;
  rows: Row[];
  addedLatency: AddedLatency[];
  /** MB/s of a large COPY and SELECT per target (null when the section failed or was not run; see notes). */
  large: LargeResults | null;
  /** Idle memory per client of each measured proxy. */
  memory: MemoryResult[];
  /** The guard throughput, measured first (null when it failed or was not run; see notes). */
  guard: GuardReport | null;
  notes: string[];
  durationSeconds: number;
}

const fixed = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');
const withSpread = (s: Spread | null, digits: number): string => (s === null ? '—' : `${fixed(s.median, digits)} (${fixed(s.min, digits)}–${fixed(s.max, digits)})`);

/**
 * The target a pgfence target is fairly compared with: equal isolation and equal backends.
 * pgfence transaction (reset: auto, no DISCARD ALL within a tenant) pairs with PgBouncer without a
 * reset query; reset: always with PgBouncer's DISCARD ALL on every release; a baseline build
 * with the same target of this build.
 */
export function fairPair(target: string, workload: string): string | null {
  if (target.endsWith(' (baseline)')) return null;
  if (workload.includes('(-C)')) return target.startsWith('pgfence transaction') && !target.includes('reset-always') ? PGBOUNCER_PLAIN_AUTH : null;
  if (target.startsWith('pgfence transaction reset-always')) return PGBOUNCER_RESET;
  if (target.startsWith('pgfence transaction')) return PGBOUNCER_NO_RESET;
  return null;
}

function find(rows: readonly Row[], workload: string, target: string | null): Row | undefined {
  return target === null ? undefined : rows.find((r) => r.workload === workload && r.target === target);
}

/** a / b of two medians, "—" when either row is missing or has errors. */
function ratio(a: Row | undefined, b: Row | undefined, pick: (r: Row) => Spread | null): string {
  if (a === undefined || b === undefined || a.errors.length > 0 || b.errors.length > 0) return '—';
  const x = pick(a)?.median;
  const y = pick(b)?.median;
  return x === undefined || y === undefined || y === 0 ? '—' : `${fixed(x / y, 2)}×`;
}

export function resultsTable(rows: readonly Row[]): string {
  const hasBaseline = rows.some((r) => r.target.endsWith(' (baseline)'));
  const lines = [
    '| workload | target | clients | backends | TPS median (min–max) | proxy CPU µs/txn median (min–max) | of it user µs | p50 ms | p99 ms | TPS vs direct | fair pair | TPS vs pair | CPU vs pair |' +
      (hasBaseline ? ' TPS vs baseline | CPU vs baseline |' : ''),
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |' + (hasBaseline ? ' ---: | ---: |' : ''),
  ];
  for (const row of rows) {
    const error = row.errors.length > 0 ? ` (error: ${row.errors[0]?.replace(/\|/g, '/').replace(/\n/g, ' ').slice(0, 160)})` : '';
    const pair = fairPair(row.target, row.workload);
    const pairRow = find(rows, row.workload, pair);
    const baseline = find(rows, row.workload, row.target.endsWith(' (baseline)') ? null : `${row.target} (baseline)`);
    const tps = (r: Row): Spread | null => r.tps;
    const cpu = (r: Row): Spread | null => r.cpuUsPerTxn;
    lines.push(
      `| ${row.workload} | ${row.target}${error} | ${row.clients} | ${row.pool} | ${withSpread(row.tps, 0)} | ${withSpread(row.cpuUsPerTxn, 1)} | ${row.userCpuUsPerTxn === null ? '—' : fixed(row.userCpuUsPerTxn.median, 1)} | ` +
        `${withSpread(row.p50Ms, 3)} | ${row.p99Ms === null ? '—' : fixed(row.p99Ms.median, 3)} | ${ratio(row, find(rows, row.workload, DIRECT), tps)} | ` +
        `${pairRow === undefined ? '' : pair} | ${ratio(row, pairRow, tps)} | ${ratio(row, pairRow, cpu)} |` +
        (hasBaseline ? ` ${ratio(row, baseline, tps)} | ${ratio(row, baseline, cpu)} |` : ''),
    );
  }
  return lines.join('\n');
}

export function memoryLines(results: readonly MemoryResult[]): string[] {
  if (results.length === 0) return ['not measured (see notes)'];
  return [
    '| proxy | idle clients | VmRSS before kB | VmRSS after kB | kB per client |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...results.map((m) => `| ${m.target} | ${m.connections} | ${m.rssBeforeKb} | ${m.rssAfterKb} | **${fixed(m.kbPerConnection, 2)}** |`),
  ];
}

export function renderMarkdown(report: Report): string {
  const env = Object.entries(report.environment).map(([k, v]) => `- ${k}: ${v}`);
  const added = [
    '| target | p50 µs (median over rounds) | added over direct, µs |',
    '| --- | ---: | ---: |',
    ...report.addedLatency.map((a) => `| ${a.target} | ${fixed(a.p50Us, 0)} | ${fixed(a.addedUs, 0)} |`),
  ];
  return [
    `# pgfence benchmark, ${report.startedAt}`,
    '',
    `${report.seconds} s per run, ${report.rounds} interleaved rounds; the whole run took ${Math.round(report.durationSeconds)} s.`,
    'Postgres, pgbench, pgfence and PgBouncer share this machine, so only ratios within one run mean anything;',
    "the proxy's CPU µs per transaction (from /proc of its processes) travels to other machines better than TPS.",
    '',
    ...env,
    '',
    '## Throughput, proxy CPU and latency',
    '',
    resultsTable(report.rows),
    '',
    'TPS is pgbench\'s "without initial connection time" (with -C: "including reconnection times"), summed over the',
    'processes of a run; medians and min–max are over the rounds; p50 and p99 are over every transaction of a run,',
    "from pgbench's per-transaction logs (`-l`). Proxy CPU is user + system time of the proxy's process group over the",
    'run divided by the transactions in the logs (for -C rows: per connection). Ratios divide medians. Fair pairs have',
    'equal isolation and equal backends: pgfence transaction (reset: auto) with PgBouncer no-reset, pgfence',
    'transaction reset-always with PgBouncer reset-always; in the -C row, pgfence transaction with PgBouncer taking the',
    'password in clear (`auth_type = plain`), as pgfence takes the JWT, since SCRAM dominates a scram-sha-256 login.',
    '',
    '## Added latency, one client, `SELECT 1` (median p50 of the target minus median p50 direct)',
    '',
    ...added,
    '',
    '## Large results: MB/s of a big COPY TO STDOUT and SELECT',
    '',
    ...(report.large === null ? ['not measured (see notes)', ''] : largeSection(report.large)),
    '## Memory per idle client',
    '',
    ...memoryLines(report.memory),
    '',
    '## Guard throughput, legitimate corpus (no Postgres; also bench/results/<stamp>-guard.md)',
    '',
    ...(report.guard === null ? ['not measured (see notes)', ''] : guardSections(report.guard, '###')),
    '## Notes',
    '',
    ...report.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
}

/** Writes bench/results/<stamp>.md and .json and bench/results/latest.md; returns the .md path. */
export function writeReport(report: Report): Promise<string> {
  return writeResults(resultStamp(report.startedAt), renderMarkdown(report), report, 'latest.md');
}
