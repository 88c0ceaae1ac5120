import type { LargeResults, LargeRow } from './large-measure.js';
import { resultStamp, writeResults } from './result-files.js';

/** The target for a large result: pgfence at least 0.8× direct and not below PgBouncer. */
export const VS_DIRECT_TARGET = 0.8;
export const VS_PGBOUNCER_TARGET = 1;

/** `npm run bench:large` on its own. */
export interface LargeReport {
  startedAt: string;
  environment: Record<string, string>;
  large: LargeResults;
  notes: string[];
  durationSeconds: number;
}

const fixed = (n: number | null, digits: number): string => (n !== null && Number.isFinite(n) ? n.toFixed(digits) : '—');
const times = (n: number | null): string => (n === null ? '—' : `${fixed(n, 2)}×`);
const isPgfence = (row: LargeRow): boolean => row.target.startsWith('pgfence');

export function largeTable(large: LargeResults): string {
  const lines = [
    `| query | target | MB per query | median MB/s | min–max MB/s | vs direct | vs ${large.pgbouncer ?? 'PgBouncer'} | proxy CPU ms/MB | reader CPU ms/MB |`,
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of large.results) {
    const failed = r.error === null ? '' : ` (error: ${r.error.replace(/\|/g, '/').replace(/\n/g, ' ')})`;
    const runs = r.samples.length === large.rounds ? '' : ` (${r.samples.length} of ${large.rounds} rounds)`;
    lines.push(
      `| ${r.query} | ${r.target}${failed}${runs} | ${fixed(r.bytes / 1e6, 1)} | ${fixed(r.medianMBps, 1)} | ${fixed(r.minMBps, 1)}–${fixed(r.maxMBps, 1)} | ` +
        `${times(r.vsDirect)} | ${times(r.vsPgbouncer)} | ${fixed(r.proxyCpuMsPerMb, 2)} | ${fixed(r.readerCpuMsPerMb, 2)} |`,
    );
  }
  return lines.join('\n');
}

/** Each pgfence row against the target, one line each. */
export function largeTargetLines(large: LargeResults): string[] {
  return large.results.filter(isPgfence).map((r) => {
    const direct = r.vsDirect === null ? 'no direct median' : `${times(r.vsDirect)} direct (≥ ${VS_DIRECT_TARGET}×: ${r.vsDirect >= VS_DIRECT_TARGET ? 'pass' : 'FAIL'})`;
    const bouncer =
      large.pgbouncer === null || r.vsPgbouncer === null
        ? 'no PgBouncer median'
        : `${times(r.vsPgbouncer)} ${large.pgbouncer} (≥ ${VS_PGBOUNCER_TARGET}×: ${r.vsPgbouncer >= VS_PGBOUNCER_TARGET ? 'pass' : 'FAIL'})`;
    return `${r.query}, ${r.target}: ${direct}, ${bouncer}`;
  });
}

/** How the section was measured, for the notes of either report. */
export function largeNotes(large: LargeResults): string[] {
  return [
    `Large results: \`COPY (SELECT g, repeat('x',100) FROM generate_series(1,${large.rows}) g) TO STDOUT\` and the same SELECT as a simple Query, as tenant t1, one connection per query. ` +
      'The client is a raw protocol socket reader in a child process (bench/large-reader.ts) that frames messages by length and never decodes a row; it checks that the DataRow/CopyData count equals the rows. ' +
      'MB/s = bytes received from sending the Query to the end of ReadyForQuery / 1e6 / the seconds between them, timed in the reader.',
    `Every target × query is warmed up once with ${large.warmUpRows} rows, then ${large.rounds} rounds run every query through every target, the start target rotating by one each round; median and min–max are over the rounds, ratios divide medians.`,
    'proxy CPU is the user + system time of the proxy\'s process group (pgfence, or PgBouncer) between telling the (already authenticated) reader to send the Query and its answer, from /proc; none for direct. Postgres\'s own CPU is not measured. reader CPU is the reader process over its timed span.',
    `${large.pgbouncer ?? 'PgBouncer'} only: with one statement per connection the reset query makes no difference to the stream.`,
  ];
}

/** The large-result section without a title: the table, then the target lines. */
export function largeSection(large: LargeResults): string[] {
  return [
    `${large.rows} rows, ${large.rounds} rounds (BENCH_LARGE_ROWS, BENCH_LARGE_ROUNDS); MB = 1e6 bytes received by the client. Target: pgfence at least ${VS_DIRECT_TARGET}× direct and not below PgBouncer.`,
    '',
    largeTable(large),
    '',
    ...largeTargetLines(large).map((line) => `- ${line}`),
    '',
  ];
}

export function renderLargeMarkdown(report: LargeReport): string {
  return [
    `# pgfence large-result throughput, ${report.startedAt}`,
    '',
    `The whole run took ${Math.round(report.durationSeconds)} s. Postgres, the reader, pgfence and PgBouncer share this machine, so only ratios within one run mean anything.`,
    '',
    ...Object.entries(report.environment).map(([k, v]) => `- ${k}: ${v}`),
    '',
    ...largeSection(report.large),
    '## Notes',
    '',
    ...report.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
}

/** Writes bench/results/<stamp>-large.md and .json and bench/results/latest-large.md; returns the .md path. */
export function writeLargeReport(report: LargeReport): Promise<string> {
  return writeResults(`${resultStamp(report.startedAt)}-large`, renderLargeMarkdown(report), report, 'latest-large.md');
}
