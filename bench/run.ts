/**
 * npm run bench: the guard throughput (as bench/guard.ts, a few seconds, no Postgres), then
 * pgfence against direct Postgres and PgBouncer, on one embedded Postgres, in one invocation. See
 * bench/README.md for what each row means. BENCH_SECONDS (default 10) sets the length of every
 * pgbench run; BENCH_IDLE_CLIENTS (default 10000) the memory test's clients; BENCH_GUARD_ROUNDS
 * (default 20) the guard's rounds per miss; BENCH_LARGE_ROWS (default 2000000) and
 * BENCH_LARGE_ROUNDS (default 3) the large-result section (also alone: npm run bench:large).
 */
import { openWorkspace, type Workspace } from './workspace.js';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { machine, pgfenceRevision, positiveInt } from './environment.js';
import { benchmarkGuard, type GuardReport, guardOptions, guardTable, targetLines, writeGuardReport } from './guard-report.js';
import { type LargeResults, largeOptions, largeTarget, measureLargeResults } from './large-measure.js';
import { largeNotes, largeTable, largeTargetLines } from './large-report.js';
import { type MemoryResult, measureMemory } from './memory.js';
import { type Measurement, runPgbench } from './pgbench.js';
import { findPgbouncer } from './pgbouncer.js';
import { run, which } from './proc.js';
import { type AddedLatency, DIRECT, type Report, type Row, resultsTable, writeReport } from './report.js';
import { type BenchDatabase, TENANTS, prepareDatabase } from './setup.js';
import { POOL_SIZE, type Target, type Workload, directTarget, pgbouncerTarget, pgfenceTargets } from './targets.js';

const SECONDS = positiveInt('BENCH_SECONDS', 10);
const IDLE_CLIENTS = positiveInt('BENCH_IDLE_CLIENTS', 10_000);
const GUARD = guardOptions();
const LARGE = largeOptions();
const WARM_UP_SECONDS = 2;
const SELECT_ONE = 'SELECT 1, one client';

function workloads(selectOneFile: string): Workload[] {
  const select = ['-S'];
  const mixed = ['-b', 'tpcb-like'];
  return [
    { name: SELECT_ONE, script: ['-f', selectOneFile], protocol: 'extended', tenants: 1, clients: 1 },
    { name: 'select-only, 1 tenant', script: select, protocol: 'extended', tenants: 1, clients: POOL_SIZE },
    { name: 'tpcb-like, 1 tenant', script: mixed, protocol: 'extended', tenants: 1, clients: POOL_SIZE },
    { name: 'select-only, 1 tenant, -M prepared', script: select, protocol: 'prepared', tenants: 1, clients: POOL_SIZE, sessionOnly: true },
    { name: 'tpcb-like, 1 tenant, -M prepared', script: mixed, protocol: 'prepared', tenants: 1, clients: POOL_SIZE, sessionOnly: true },
    { name: 'select-only, 8 tenants × 8', script: select, protocol: 'extended', tenants: 8, clients: 8 },
    { name: 'tpcb-like, 8 tenants × 8', script: mixed, protocol: 'extended', tenants: 8, clients: 8 },
  ];
}

const say = (line: string): void => console.log(line);

async function main(): Promise<void> {
  const started = Date.now();
  const notes: string[] = [];
  const note = (line: string): void => {
    notes.push(line);
    say(`  note: ${line}`);
  };
  const pgbench = await which('pgbench');
  if (pgbench === null) throw new Error('pgbench is not on PATH (Debian: apt-get install postgresql-client)');

  const ws = await openWorkspace('pgfence-bench-', say);
  workspace = ws;
  const { tmp, targets } = ws;
  const logDir = path.join(tmp, 'logs');
  await mkdir(logDir);
  const selectOneFile = path.join(tmp, 'select1.sql');
  await writeFile(selectOneFile, 'SELECT 1;\n');


  try {
    say(`pgfence benchmark: ${SECONDS} s per run (BENCH_SECONDS), ${os.cpus().length} cores`);
    say('guard throughput on the legitimate corpus (before Postgres starts, so nothing else runs) …');
    let guard: GuardReport | null = null;
    try {
      guard = await benchmarkGuard(GUARD);
      await writeGuardReport(guard);
      for (const line of targetLines(guard)) say(`  ${line}`);
    } catch (error) {
      note(`guard throughput failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    say('starting the embedded Postgres and running pgbench -i -s 1 for t1..t8 …');
    const db = (ws.db = await prepareDatabase(tmp, pgbench));
    const secret = randomBytes(32).toString('hex');

    targets.push(directTarget(db), ...(await pgfenceTargets(db, secret, note)));
    const bouncer = await findPgbouncer(note);
    const noReset = bouncer === null ? null : pgbouncerTarget(db, bouncer, tmp, false);
    if (bouncer !== null && noReset !== null) targets.push(pgbouncerTarget(db, bouncer, tmp, true), noReset);

    const plan = workloads(selectOneFile);
    const rows: Row[] = [];
    for (const target of targets) {
      for (const w of plan) {
        if (w.sessionOnly === true && !target.keepsSessions) continue;
        const row = await runOne(db, pgbench, logDir, target, w);
        rows.push(row);
        const m = row.result;
        say(
          `  ${target.name.padEnd(24)} ${w.name.padEnd(36)} ` +
            (m === null ? `skipped: ${row.note ?? ''}` : `${m.tps.toFixed(0).padStart(7)} tps  mean ${m.meanMs.toFixed(3)} ms  p99 ${m.p99Ms.toFixed(3)} ms${m.errors.length > 0 ? `  ERROR ${m.errors[0]}` : ''}`),
        );
      }
      await target.close(); // frees its backends before the next target
    }
    const order = (r: Row): number => plan.findIndex((w) => w.name === r.workload) * 100 + targets.findIndex((t) => t.name === r.target);
    rows.sort((a, b) => order(a) - order(b));

    const addedLatency = selectOneLatency(rows);

    say(`large results: ${LARGE.rows} rows (BENCH_LARGE_ROWS), ${LARGE.rounds} rounds (BENCH_LARGE_ROUNDS) …`);
    // PgBouncer once: with one statement per connection, the reset query changes nothing in the stream.
    const largeTargets = targets.filter((t) => !t.name.startsWith('PgBouncer') || t === noReset);
    let large: LargeResults | null = null;
    try {
      large = await measureLargeResults(largeTargets.map(largeTarget), { direct: DIRECT, pgbouncer: noReset?.name ?? null }, LARGE, (line) => say(`  ${line}`));
    } catch (error) {
      note(`large-result section failed: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      for (const target of largeTargets) await target.close();
    }

    say(`memory: pgfence in a child process with ${IDLE_CLIENTS} idle clients …`);
    let memory: MemoryResult | null = null;
    try {
      memory = await measureMemory({ backendUrl: db.pg.url, secret }, tmp, IDLE_CLIENTS, note);
    } catch (error) {
      note(`memory test failed: ${error instanceof Error ? error.message : String(error)}`);
    }

    notes.push(
      'pgfence session mode binds a backend to each client for its lifetime, so its pool is max(16, clients): 64 in the 8-tenant rows (otherwise 48 clients would wait for a backend for the whole run); pgfence transaction mode shares 16 backends among all tenants.',
      'PgBouncer cannot move a backend between tenants, so it has one pool per tenant (a database entry logging in as role bench_tN whose default search_path is tenant_tN, public; these roles are not superusers, direct and pgfence log in as postgres); default_pool_size 16 is per pool, so the 8-tenant rows may use up to 8 × 8 = 64 backends.',
      'PgBouncer no-reset does not isolate sessions: a backend goes from one client to the next of the same tenant with whatever the last one left. reset-always runs DISCARD ALL after every transaction, the isolation pgfence gives.',
      '-M prepared rows run only on targets that keep a session (direct, pgfence session); PgBouncer 1.18 cannot keep prepared statements in transaction mode.',
      `Each target gets a ${WARM_UP_SECONDS} s select-only warm-up when it (re)starts. Before every run the used tenants get VACUUM of pgbench_branches and pgbench_tellers, TRUNCATE pgbench_history and a CHECKPOINT (what pgbench does without -n).`,
      'The embedded Postgres runs with fsync=off and max_connections=200; pgbench runs with -n, one thread per 8 clients (two for 16), and -l per-transaction logs.',
      ...(large === null ? [] : largeNotes(large)),
    );
    const report: Report = {
      startedAt: new Date(started).toISOString(),
      seconds: SECONDS,
      environment: await environment(db, bouncer?.version ?? 'not available', pgbench),
      rows,
      addedLatency,
      large,
      memory,
      guard,
      notes,
      durationSeconds: (Date.now() - started) / 1000,
    };
    const file = await writeReport(report);
    say('');
    say(resultsTable(rows));
    say('');
    if (large !== null) say(`large results (${large.rows} rows, ${large.rounds} rounds):\n${largeTable(large)}\n${largeTargetLines(large).join('\n')}\n`);
    if (guard !== null) say(`guard throughput (legitimate corpus):\n${guardTable(guard.rows)}\n`);
    for (const a of addedLatency) say(`added latency (SELECT 1, one client, p50): ${a.target}: ${a.addedUs.toFixed(0)} µs over direct (p50 ${a.p50Us.toFixed(0)} µs)`);
    if (memory !== null) {
      say(`memory: ${memory.connections} idle clients (${memory.mode} mode): VmRSS ${memory.rssBeforeKb} → ${memory.rssAfterKb} kB, ${memory.kbPerConnection.toFixed(1)} kB per client`);
    }
    say(`\nwritten: ${path.relative(process.cwd(), file)} (.json beside it, and bench/results/latest.md); ${Math.round(report.durationSeconds)} s in all`);
  } finally {
    await ws.cleanup();
  }
}

async function runOne(db: BenchDatabase, pgbench: string, logDir: string, target: Target, w: Workload): Promise<Row> {
  const base = { target: target.name, workload: w.name, clients: w.tenants * w.clients, pool: target.pool(w) };
  let ready;
  try {
    ready = await target.ready(w);
  } catch (error) {
    return { ...base, result: null, note: error instanceof Error ? error.message : String(error) };
  }
  const tenants = TENANTS.slice(0, w.tenants);
  const name = `${target.name}-${w.name}`.replace(/[^a-zA-Z0-9]+/g, '_');
  if (ready.fresh) {
    const warm = { name: `${name}-warmup`, script: ['-S'], protocol: 'extended' as const, clients: POOL_SIZE, seconds: WARM_UP_SECONDS, logDir };
    await runPgbench(pgbench, { ...warm, endpoints: [ready.endpoint(TENANTS[0])] });
  }
  await db.tidy(tenants);
  const result: Measurement = await runPgbench(pgbench, {
    name,
    script: w.script,
    protocol: w.protocol,
    clients: w.clients,
    endpoints: tenants.map((t) => ready.endpoint(t)),
    seconds: SECONDS,
    logDir,
  });
  return { ...base, result };
}

/** p50 of the one-client SELECT 1 run of each target minus direct's, in microseconds. */
function selectOneLatency(rows: readonly Row[]): AddedLatency[] {
  const ones = rows.filter((r) => r.workload === SELECT_ONE && r.result !== null && r.result.errors.length === 0);
  const direct = ones.find((r) => r.target === DIRECT)?.result?.p50Ms;
  return ones.map((r) => {
    const p50Us = (r.result?.p50Ms ?? NaN) * 1000;
    return { target: r.target, p50Us, addedUs: direct === undefined ? NaN : p50Us - direct * 1000 };
  });
}

async function environment(db: BenchDatabase, pgbouncer: string, pgbench: string): Promise<Record<string, string>> {
  const pgbenchVersion = await run(pgbench, ['--version'], { timeoutMs: 10_000 });
  return {
    machine: machine(),
    node: process.version,
    postgres: `${db.serverVersion} (embedded)`,
    pgbench: pgbenchVersion.stdout.trim(),
    pgbouncer,
    pgfence: await pgfenceRevision(),
  };
}

let workspace: Workspace | null = null;
main().catch((error: unknown) => {
  if (workspace?.interrupted === true) return;
  console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
