import { type GuardReport, guardSections } from './guard-report.js';
import type { LargeResults } from './large-measure.js';
import { largeSection } from './large-report.js';
import type { MemoryResult } from './memory.js';
import type { Measurement } from './pgbench.js';
import { resultStamp, writeResults } from './result-files.js';

export const DIRECT = 'direct';
export const PGBOUNCER_RESET = 'PgBouncer reset-always';

/** One target × workload. */
export interface Row {
  target: string;
  workload: string;
  /** Clients in all (processes × clients each). */
  clients: number;
  /** Backends the target may use, as configured ("—" for direct). */
  pool: string;
  result: Measurement | null;
  /** Why there is no result, or what to know about it. */
  note?: string;
}

export interface AddedLatency {
  target: string;
  p50Us: number;
  addedUs: number;
}

export interface Report {
  startedAt: string;
  seconds: number;
  environment: Record<string, string>;
  rows: Row[];
  addedLatency: AddedLatency[];
  /** MB/s of a large COPY and SELECT per target (null when the section failed; see notes). */
  large: LargeResults | null;
  memory: MemoryResult | null;
  /** The guard throughput, measured first (null when it failed; see notes). */
  guard: GuardReport | null;
  notes: string[];
  durationSeconds: number;
}

const fixed = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');

/** TPS of this row over the TPS of `target` for the same workload. */
function ratio(rows: readonly Row[], row: Row, target: string): string {
  const base = rows.find((r) => r.workload === row.workload && r.target === target);
  if (base?.result == null || row.result === null || base.result.errors.length > 0 || row.result.errors.length > 0) return '—';
  return base.result.tps > 0 ? `${fixed(row.result.tps / base.result.tps, 2)}×` : '—';
}

export function resultsTable(rows: readonly Row[]): string {
  const lines = [
    '| workload | target | clients | pool | TPS | mean ms | p99 ms | TPS vs direct | TPS vs PgBouncer reset-always |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    const m = row.result;
    const failed = m !== null && m.errors.length > 0 ? ` (error: ${m.errors[0]?.replace(/\|/g, '/').replace(/\n/g, ' ')})` : '';
    const note = row.note !== undefined ? ` (${row.note})` : '';
    lines.push(
      `| ${row.workload} | ${row.target}${note}${failed} | ${row.clients} | ${row.pool} | ${m === null ? '—' : fixed(m.tps, 0)} | ` +
        `${m === null ? '—' : fixed(m.meanMs, 3)} | ${m === null ? '—' : fixed(m.p99Ms, 3)} | ${ratio(rows, row, DIRECT)} | ${ratio(rows, row, PGBOUNCER_RESET)} |`,
    );
  }
  return lines.join('\n');
}

export function renderMarkdown(report: Report): string {
  const env = Object.entries(report.environment).map(([k, v]) => `- ${k}: ${v}`);
  const added = [
    '| target | p50 µs | added over direct, µs |',
    '| --- | ---: | ---: |',
    ...report.addedLatency.map((a) => `| ${a.target} | ${fixed(a.p50Us, 0)} | ${fixed(a.addedUs, 0)} |`),
  ];
  const m = report.memory;
  const memory =
    m === null
      ? ['not measured (see notes)']
      : [
          `pgfence in a child process, pool.mode ${m.mode}, pool size ${m.poolSize}: ${m.connections} authenticated idle clients`,
          `took VmRSS from ${m.rssBeforeKb} kB to ${m.rssAfterKb} kB: **${fixed(m.kbPerConnection, 1)} kB per client connection**.`,
        ];
  return [
    `# pgfence benchmark, ${report.startedAt}`,
    '',
    `${report.seconds} s per run; the whole run took ${Math.round(report.durationSeconds)} s.`,
    'Postgres, pgbench, pgfence and PgBouncer share this machine, so only ratios within one run mean anything.',
    '',
    ...env,
    '',
    '## Throughput and latency',
    '',
    resultsTable(report.rows),
    '',
    'TPS is pgbench\'s "without initial connection time", summed over the processes of a run; mean and p99 are',
    'over every transaction of the run, from pgbench\'s per-transaction logs (`-l`). Ratios divide TPS.',
    '',
    '## Added latency, one client, `SELECT 1` (p50 of the target minus p50 direct)',
    '',
    ...added,
    '',
    '## Large results: MB/s of a big COPY TO STDOUT and SELECT',
    '',
    ...(report.large === null ? ['not measured (see notes)', ''] : largeSection(report.large)),
    '## Memory per idle client',
    '',
    ...memory,
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
