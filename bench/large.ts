/**
 * npm run bench:large: the large-result section of `npm run bench` alone, in about a minute. MB/s of
 * a 2,000,000-row COPY TO STDOUT and SELECT through direct Postgres, pgfence session and transaction
 * mode, and PgBouncer, read by a raw socket client in a child process. BENCH_LARGE_ROWS (default
 * 2000000) and BENCH_LARGE_ROUNDS (default 3). No pgbench tables are made. See bench/README.md.
 */
import { openWorkspace, type Workspace } from './workspace.js';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { machine, pgfenceRevision } from './environment.js';
import { largeOptions, largeTarget, measureLargeResults } from './large-measure.js';
import { type LargeReport, largeNotes, largeTable, largeTargetLines, writeLargeReport } from './large-report.js';
import { findPgbouncer } from './pgbouncer.js';
import { DIRECT } from './report.js';
import { prepareDatabase } from './setup.js';
import { directTarget, pgbouncerTarget, pgfenceTargets } from './targets.js';

const say = (line: string): void => console.log(line);

async function main(): Promise<void> {
  const started = Date.now();
  const opts = largeOptions();
  const notes: string[] = [];
  const note = (line: string): void => {
    notes.push(line);
    say(`  note: ${line}`);
  };
  const ws = await openWorkspace('pgfence-bench-large-', say);
  workspace = ws;
  const { tmp, targets } = ws;

  try {
    say(`pgfence large-result throughput: ${opts.rows} rows (BENCH_LARGE_ROWS), ${opts.rounds} rounds (BENCH_LARGE_ROUNDS), ${os.cpus().length} cores`);
    say('starting the embedded Postgres …');
    const db = (ws.db = await prepareDatabase(tmp, null));
    const secret = randomBytes(32).toString('hex');
    targets.push(directTarget(db), ...(await pgfenceTargets(db, secret, tmp, note)));
    const bouncer = await findPgbouncer(note);
    const pgbouncer = bouncer === null ? null : pgbouncerTarget(db, bouncer, tmp, false);
    if (pgbouncer !== null) targets.push(pgbouncer);

    const large = await measureLargeResults(targets.map(largeTarget), { direct: DIRECT, pgbouncer: pgbouncer?.name ?? null }, opts, (line) => say(`  ${line}`));
    const report: LargeReport = {
      startedAt: new Date(started).toISOString(),
      environment: {
        machine: machine(),
        node: process.version,
        postgres: `${db.serverVersion} (embedded)`,
        pgbouncer: bouncer?.version ?? 'not available',
        pgfence: await pgfenceRevision(),
      },
      large,
      notes: [...notes, ...largeNotes(large), 'pgfence runs in the benchmark process (pino silent), pool size 16 in both modes; PgBouncer in transaction mode, pool size 16, as in `npm run bench`.'],
      durationSeconds: (Date.now() - started) / 1000,
    };
    const file = await writeLargeReport(report);
    say('');
    say(largeTable(large));
    say('');
    for (const line of largeTargetLines(large)) say(line);
    say(`\nwritten: ${path.relative(process.cwd(), file)} (.json beside it, and bench/results/latest-large.md); ${Math.round(report.durationSeconds)} s in all`);
  } finally {
    await ws.cleanup();
  }
}

let workspace: Workspace | null = null;
main().catch((error: unknown) => {
  if (workspace?.interrupted === true) return;
  console.error(`bench:large failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
