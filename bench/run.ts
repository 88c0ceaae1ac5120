/**
 * npm run bench: the guard throughput (as bench/guard.ts, a few seconds, no Postgres), then pgfence
 * (built into dist/ and run as its own process) against direct Postgres and PgBouncer on one
 * embedded Postgres: throughput, the proxy's CPU per transaction and latency over interleaved
 * rounds, large results, and idle memory. See bench/README.md for what each row means.
 *
 * BENCH_SECONDS (default 10) sets the length of every pgbench run; BENCH_ROUNDS (default 3) the
 * interleaved rounds; BENCH_WORKLOADS and BENCH_TARGETS (regular expressions) pick rows;
 * BENCH_SECTIONS (default guard,throughput,large,memory) the sections; BENCH_IDLE_CLIENTS (default
 * 10000) the memory test's clients; BENCH_GUARD_ROUNDS, BENCH_LARGE_ROWS and BENCH_LARGE_ROUNDS as
 * in bench:guard and bench:large.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { machine, pgfenceRevision, positiveInt } from './environment.js';
import { benchmarkGuard, type GuardReport, guardOptions, guardTable, targetLines, writeGuardReport } from './guard-report.js';
import { type LargeResults, largeOptions, largeTarget, measureLargeResults } from './large-measure.js';
import { largeNotes, largeTable, largeTargetLines } from './large-report.js';
import { idleClientsAllowed, measureIdleMemory, type MemoryResult } from './memory.js';
import { buildPgfence, REPO, startPgfenceProcess } from './pgfence.js';
import { findPgbouncer, type PgbouncerBinary, startPgbouncer } from './pgbouncer.js';
import { run, stopGroup, which } from './proc.js';
import { type AddedLatency, DIRECT, memoryLines, NODE_CANNED_SERVER, PGBOUNCER_NO_RESET, type Report, resultsTable, writeReport } from './report.js';
import { type BenchDatabase, prepareDatabase, roleOf, TENANTS } from './setup.js';
import { cannedServerTarget, directTarget, nodeRelayTarget, startCannedServer, pgbouncerPlainAuthTarget, pgbouncerTarget, pgfenceTargets, type Workload } from './targets.js';
import { measureThroughput, type Row, spread } from './throughput.js';
import { openWorkspace, type Workspace } from './workspace.js';

const SECONDS = positiveInt('BENCH_SECONDS', 10);
const ROUNDS = positiveInt('BENCH_ROUNDS', 3);
const IDLE_CLIENTS = positiveInt('BENCH_IDLE_CLIENTS', 10_000);
const WARM_UP_SECONDS = 2;
const GUARD = guardOptions();
const LARGE = largeOptions();
const SELECT_ONE = 'SELECT 1, one client';
const SECTIONS = new Set((process.env['BENCH_SECTIONS'] ?? 'guard,throughput,large,memory').split(',').map((s) => s.trim()));
const pattern = (name: string): RegExp | null => {
  const raw = process.env[name];
  return raw === undefined || raw === '' ? null : new RegExp(raw, 'i');
};

function workloads(selectOneFile: string): Workload[] {
  const select = ['-S'];
  const mixed = ['-b', 'tpcb-like'];
  const protocols = ['simple', 'extended', 'prepared'] as const;
  return [
    { name: SELECT_ONE, script: ['-f', selectOneFile], protocol: 'extended', tenants: 1, clients: 1 },
    ...protocols.map((protocol): Workload => ({ name: `select-only, 1 tenant × 16, ${protocol}`, script: select, protocol, tenants: 1, clients: 16 })),
    ...protocols.map((protocol): Workload => ({ name: `select-only, 8 tenants × 8, ${protocol}`, script: select, protocol, tenants: 8, clients: 8 })),
    { name: 'tpcb-like, 1 tenant × 16, extended', script: mixed, protocol: 'extended', tenants: 1, clients: 16 },
    { name: 'tpcb-like, 8 tenants × 8, extended', script: mixed, protocol: 'extended', tenants: 8, clients: 8 },
    { name: 'new connection per transaction (-C), select-only, 8 clients', script: select, protocol: 'extended', tenants: 1, clients: 8, connectEach: true },
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
    say(`pgfence benchmark: ${SECONDS} s per run (BENCH_SECONDS), ${ROUNDS} rounds (BENCH_ROUNDS), ${os.cpus().length} cores`);
    let guard: GuardReport | null = null;
    if (SECTIONS.has('guard')) {
      say('guard throughput on the legitimate corpus (before Postgres starts, so nothing else runs) …');
      try {
        guard = await benchmarkGuard(GUARD);
        await writeGuardReport(guard);
        for (const line of targetLines(guard)) say(`  ${line}`);
      } catch (error) {
        note(`guard throughput failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    say('starting the embedded Postgres and running pgbench -i -s 1 for t1..t8 …');
    const db = (ws.db = await prepareDatabase(tmp, pgbench));
    const secret = randomBytes(32).toString('hex');

    say('building pgfence (dist/) …');
    targets.push(directTarget(db), nodeRelayTarget(db), cannedServerTarget(), ...(await pgfenceTargets(db, secret, tmp, note)));
    const bouncer = await findPgbouncer(note);
    const noReset = bouncer === null ? null : pgbouncerTarget(db, bouncer, tmp, false);
    if (bouncer !== null && noReset !== null) targets.push(noReset, pgbouncerTarget(db, bouncer, tmp, true), pgbouncerPlainAuthTarget(db, bouncer, tmp));

    const targetFilter = pattern('BENCH_TARGETS');
    const workloadFilter = pattern('BENCH_WORKLOADS');
    const measured = targets.filter((t) => t.name === DIRECT || targetFilter === null || targetFilter.test(t.name));
    const plan = workloads(selectOneFile).filter((w) => workloadFilter === null || workloadFilter.test(w.name));

    let rows: Row[] = [];
    if (SECTIONS.has('throughput')) {
      say(`throughput: ${plan.length} workloads × ${measured.length} targets × ${ROUNDS} rounds …`);
      rows = await measureThroughput(db, pgbench, measured, plan, { rounds: ROUNDS, seconds: SECONDS, warmUpSeconds: WARM_UP_SECONDS, logDir }, say);
    }
    const addedLatency = selectOneLatency(rows);

    let large: LargeResults | null = null;
    if (SECTIONS.has('large')) {
      say(`large results: ${LARGE.rows} rows (BENCH_LARGE_ROWS), ${LARGE.rounds} rounds (BENCH_LARGE_ROUNDS) …`);
      // PgBouncer once: with one statement per connection, the reset query changes nothing in the stream.
      const largeTargets = measured.filter((t) => (!t.name.startsWith('PgBouncer') || t === noReset) && t.name !== NODE_CANNED_SERVER);
      try {
        large = await measureLargeResults(largeTargets.map(largeTarget), { direct: DIRECT, pgbouncer: noReset?.name ?? null }, LARGE, (line) => say(`  ${line}`));
      } catch (error) {
        note(`large-result section failed: ${error instanceof Error ? error.message : String(error)}`);
      } finally {
        for (const target of largeTargets) await target.close();
      }
    }

    const memory: MemoryResult[] = [];
    if (SECTIONS.has('memory')) {
      const clients = idleClientsAllowed(IDLE_CLIENTS, note);
      say(`memory: ${clients} idle clients on pgfence (transaction mode), PgBouncer and the Node canned server …`);
      try {
        memory.push(await pgfenceMemory(db, secret, tmp, clients));
        if (bouncer !== null) memory.push(await pgbouncerMemory(db, bouncer, tmp, clients));
        memory.push(await cannedServerMemory(clients));
      } catch (error) {
        note(`memory test failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }

    notes.push(
      'pgfence runs as users run it: `node dist/cli.js serve --config FILE`, built from this tree at the start, log level silent, its own process.',
      'Backends: pgfence transaction mode shares 16 among all tenants; PgBouncer cannot move a backend between tenants, so it has one pool per tenant sized to share out the same 16 (16 for one tenant, 2 each for 8); pgfence session mode binds a backend to each client for its lifetime, so its pool is max(16, clients).',
      'PgBouncer logs in as role bench_tN whose default search_path is tenant_tN, public (one database entry per tenant); direct and pgfence log in as postgres.',
      'PgBouncer no-reset does not isolate sessions: a backend goes from one client to the next of the same tenant with whatever the last one left; its fair pair is pgfence reset: auto (DISCARD ALL only when a backend changes tenant or was left dirty). reset-always runs DISCARD ALL after every transaction; its fair pair is pgfence reset: always.',
      'Node canned server (bench/canned-server.ts), in the -C row and the memory table only, is not a proxy either: it answers the protocol with canned messages, with no backend, no token check, no pool and no fence. Its CPU per connection and its memory per idle client are what Node alone costs for the same exchange.',
      'Node TCP relay (bench/tcp-relay.ts) is not a proxy to compare with: it copies bytes between each client and its own Postgres connection with net.Socket, with no protocol, pool or fence. Its CPU per transaction is the floor any proxy on Node sockets stands on; compare it with pgfence session mode (also one backend per client).',
      '-M prepared rows do not run on PgBouncer 1.18, which keeps no prepared statements in transaction mode.',
      `For each workload the targets start fresh with a ${WARM_UP_SECONDS} s select-only warm-up, then run in turn, the start order rotating each round. Before every run the used tenants get VACUUM of pgbench_branches and pgbench_tellers, TRUNCATE pgbench_history and a CHECKPOINT (what pgbench does without -n).`,
      'The embedded Postgres runs with fsync=off and max_connections=400; pgbench runs with -n, one thread per 8 clients (two for 16), and -l per-transaction logs.',
      ...(large === null ? [] : largeNotes(large)),
    );
    const report: Report = {
      startedAt: new Date(started).toISOString(),
      seconds: SECONDS,
      rounds: ROUNDS,
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
    for (const line of memoryLines(memory)) say(line);
    say(`\nwritten: ${path.relative(process.cwd(), file)} (.json beside it, and bench/results/latest.md); ${Math.round(report.durationSeconds)} s in all`);
  } finally {
    await ws.cleanup();
  }
}

async function pgfenceMemory(db: BenchDatabase, secret: string, dir: string, clients: number): Promise<MemoryResult> {
  const build = await buildPgfence(REPO);
  const running = await startPgfenceProcess(build, { backendUrl: db.pg.url, secret, mode: 'transaction', poolSize: 16 }, dir);
  try {
    return await measureIdleMemory(
      {
        name: 'pgfence transaction',
        pgid: running.pgid,
        port: running.port,
        login: (i) => {
          const e = running.endpoint(TENANTS[i % TENANTS.length] as string);
          return { user: e.user, database: e.dbname, password: e.env['PGPASSWORD'] ?? '' };
        },
      },
      clients,
    );
  } finally {
    await running.close();
  }
}

/** The Node canned server's idle clients: the floor of a Node server's memory per connection. */
async function cannedServerMemory(clients: number): Promise<MemoryResult> {
  const running = await startCannedServer();
  try {
    return await measureIdleMemory({ name: NODE_CANNED_SERVER, pgid: running.pgid, port: running.port, login: () => ({ user: 'bench', database: 'bench', password: 'canned' }) }, clients);
  } finally {
    await stopGroup(running.pgid, 5_000);
  }
}

/** PgBouncer with auth_type trust here, so that the raw idle clients need no SCRAM; its server logins are unchanged. */
async function pgbouncerMemory(db: BenchDatabase, binary: PgbouncerBinary, dir: string, clients: number): Promise<MemoryResult> {
  const running = await startPgbouncer({
    binary,
    dir: path.join(dir, 'pgbouncer-memory'),
    backendPort: db.pg.port,
    rolePassword: db.rolePassword,
    resetAlways: false,
    poolSize: 2,
    authType: 'trust',
    maxClients: clients + 1_000,
  });
  try {
    const port = running.endpoint(TENANTS[0]).port;
    return await measureIdleMemory(
      { name: PGBOUNCER_NO_RESET, pgid: running.pgid, port, login: (i) => ({ user: roleOf(TENANTS[i % TENANTS.length] as string), database: TENANTS[i % TENANTS.length] as string, password: '' }) },
      clients,
    );
  } finally {
    await running.close();
  }
}

/** Median p50 of the one-client SELECT 1 rows minus direct's, in microseconds. */
function selectOneLatency(rows: readonly Row[]): AddedLatency[] {
  const ones = rows.filter((r) => r.workload === SELECT_ONE && r.errors.length === 0 && r.p50Ms !== null);
  const direct = ones.find((r) => r.target === DIRECT)?.p50Ms?.median;
  return ones.map((r) => {
    const p50Us = (spread(r.samples.map((s) => s.p50Ms))?.median ?? NaN) * 1000;
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
