/**
 * npm run bench:guard: statements per second of the SQL guard on the legitimate corpus, on a cache
 * miss and on a cache hit, against the targets (hit under 5 µs, miss under 150 µs, at the median).
 * No Postgres, a few seconds. BENCH_GUARD_ROUNDS (default 20) sets the rounds of each miss; hits
 * get ten times as many. See bench/README.md.
 */
import path from 'node:path';
import { benchmarkGuard, guardOptions, guardTable, slowestTable, targetLines, writeGuardReport } from './guard-report.js';

async function main(): Promise<void> {
  const opts = guardOptions();
  console.log(`guard throughput on the legitimate corpus: ${opts.missRounds} rounds per miss, ${opts.hitRounds} per hit (BENCH_GUARD_ROUNDS) …`);
  const report = await benchmarkGuard(opts);
  const file = await writeGuardReport(report);
  console.log('');
  console.log(guardTable(report.rows));
  console.log('');
  console.log('slowest five texts on a miss (median µs of each text):');
  console.log(slowestTable(report.slowest));
  console.log('');
  for (const line of targetLines(report)) console.log(line);
  console.log(`\nwritten: ${path.relative(process.cwd(), file)} (.json beside it, and bench/results/latest-guard.md); ${report.durationSeconds.toFixed(1)} s`);
}

main().catch((error: unknown) => {
  console.error(`bench:guard failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
