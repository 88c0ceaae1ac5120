/**
 * npm run bench:profile: pgfence (from dist/, as users run it) under one pgbench workload with
 * `node --cpu-prof`, then the functions with the most self time. The workload comes from
 * PROFILE_ARGS (pgbench options, default "-S -M extended -c 16 -j 2"), PROFILE_TENANTS (default 1),
 * PROFILE_MODE (transaction), PROFILE_RESET (auto) and PROFILE_SECONDS (10). The profile is kept
 * as bench/results/profile-<stamp>.cpuprofile (open it in Chrome DevTools). PROFILE_STRACE=1
 * counts pgfence's system calls per transaction with `strace -c -f` instead.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { positiveInt } from './environment.js';
import { buildPgfence, REPO, startPgfenceProcess } from './pgfence.js';
import { cleanEnv, run, which } from './proc.js';
import { groupCpuMs } from './process-usage.js';
import { prepareDatabase, TENANTS } from './setup.js';
import { openWorkspace, type Workspace } from './workspace.js';

const SECONDS = positiveInt('PROFILE_SECONDS', 10);
const TENANT_COUNT = positiveInt('PROFILE_TENANTS', 1);
const ARGS = (process.env['PROFILE_ARGS'] ?? '-S -M extended -c 16 -j 2').split(/\s+/).filter((a) => a !== '');
const MODE = process.env['PROFILE_MODE'] === 'session' ? 'session' : 'transaction';
const RESET = process.env['PROFILE_RESET'] === 'always' ? 'always' : 'auto';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

async function main(): Promise<void> {
  const pgbench = await which('pgbench');
  if (pgbench === null) throw new Error('pgbench is not on PATH');
  const ws = await openWorkspace('pgfence-profile-', console.log);
  workspace = ws;
  try {
    const db = (ws.db = await prepareDatabase(ws.tmp, pgbench));
    const build = await buildPgfence(REPO);
    const profDir = path.join(ws.tmp, 'prof');
    await mkdir(profDir);
    const poolSize = MODE === 'session' ? 64 : 16;
    const sampling = process.env['PROFILE_STRACE'] === '1' || process.env['PROFILE_PERF'] === '1';
    const nodeArgs = process.env['PROFILE_PERF'] === '1' ? ['--perf-basic-prof'] : sampling ? [] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`];
    const running = await startPgfenceProcess(build, { backendUrl: db.pg.url, secret: randomBytes(32).toString('hex'), mode: MODE, poolSize, reset: RESET }, ws.tmp, nodeArgs);
    const perfFile = path.join(ws.tmp, 'perf.data');
    const strace =
      process.env['PROFILE_STRACE'] === '1'
        ? spawn('strace', ['-c', '-f', '-p', String(running.pgid)], { stdio: ['ignore', 'ignore', 'pipe'] })
        : process.env['PROFILE_PERF'] === '1'
          ? spawn('perf', ['record', '-F', '999', '-g', '-o', perfFile, '-p', String(running.pgid)], { stdio: ['ignore', 'ignore', 'pipe'] })
          : null;
    let straceOut = '';
    strace?.stderr.on('data', (chunk: Buffer) => (straceOut += chunk.toString('utf8')));
    if (strace !== null) await new Promise((resolve) => setTimeout(resolve, 500));
    const cpuBefore = groupCpuMs(running.pgid);
    const results = await Promise.all(
      TENANTS.slice(0, TENANT_COUNT).map((tenant) => {
        const e = running.endpoint(tenant);
        return run(pgbench, ['-n', ...ARGS, '-T', String(SECONDS), '-h', e.host, '-p', String(e.port), '-U', e.user, e.dbname], { env: cleanEnv(e.env), timeoutMs: (SECONDS + 60) * 1000 });
      }),
    );
    const cpuMs = groupCpuMs(running.pgid) - cpuBefore;
    let transactions = 0;
    for (const r of results) {
      const m = /number of transactions actually processed: (\d+)/.exec(r.stdout);
      if (r.code !== 0 || m === null) throw new Error(`pgbench failed: ${r.stderr}`);
      transactions += Number(m[1]);
    }
    if (strace !== null) {
      const done = new Promise((resolve) => strace.once('close', resolve));
      strace.kill('SIGINT');
      await done;
      await running.close();
      if (process.env['PROFILE_PERF'] === '1') {
        const report = await run('perf', ['report', '-i', perfFile, '--no-children', '--sort', process.env['PROFILE_SORT'] ?? 'dso,sym', '--stdio', '-g', 'none', '--percent-limit', process.env['PROFILE_LIMIT'] ?? '0.7'], { timeoutMs: 120_000 });
        console.log(report.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('#')).slice(0, 60).join('\n'));
        straceOut = '';
      }
      console.log(`${transactions} transactions, proxy CPU ${((cpuMs * 1000) / transactions).toFixed(1)} µs/txn (under ${process.env['PROFILE_PERF'] === '1' ? 'perf' : 'strace'})`);
      for (const line of straceOut.split('\n')) {
        const f = line.trim().split(/\s+/);
        const calls = Number(f[3]);
        if (Number.isFinite(calls) && calls > 0 && f.length >= 5) console.log(`  ${(calls / transactions).toFixed(2).padStart(7)} per txn  ${f[f.length - 1]}`);
      }
      return;
    }
    await running.close();
    const file = (await readdir(profDir)).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) throw new Error('no .cpuprofile was written');
    const stamp = new Date().toISOString().slice(0, 16).replace(/:/g, '-');
    const kept = path.join(REPO, 'bench/results', `profile-${stamp}.cpuprofile`);
    await copyFile(path.join(profDir, file), kept);
    console.log(`pgbench ${ARGS.join(' ')} × ${TENANT_COUNT} tenant(s), ${MODE} mode, reset ${RESET}: ${transactions} transactions, proxy CPU ${((cpuMs * 1000) / transactions).toFixed(1)} µs/txn`);
    summarise(JSON.parse(await readFile(kept, 'utf8')) as CpuProfile, transactions);
    console.log(`profile: ${path.relative(process.cwd(), kept)}`);
  } finally {
    await ws.cleanup();
  }
}

/** Self time per function (µs per transaction), the top 40, and per source (ours, node_modules, node internals). */
function summarise(profile: CpuProfile, transactions: number): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const bySource = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const dt = profile.timeDeltas[i] ?? 0;
    if (node === undefined) return;
    const f = node.callFrame;
    const where = f.url === '' ? '' : `${f.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
    const key = `${f.functionName || '(anonymous)'} ${where}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    const source = f.url.includes('/dist/') ? 'pgfence (dist/)' : f.url.includes('node_modules') ? 'node_modules' : f.url.startsWith('node:') ? 'node internals' : f.functionName.startsWith('(') ? f.functionName : 'native / other';
    bySource.set(source, (bySource.get(source) ?? 0) + dt);
    total += dt;
  });
  const per = (us: number): string => `${(us / transactions).toFixed(2).padStart(7)} µs/txn  ${((100 * us) / total).toFixed(1).padStart(5)} %`;
  console.log('\nby source (self time):');
  for (const [k, v] of [...bySource].sort((a, b) => b[1] - a[1])) console.log(`  ${per(v)}  ${k}`);
  console.log('\ntop functions (self time):');
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`  ${per(v)}  ${k}`);
}

let workspace: Workspace | null = null;
main().catch((error: unknown) => {
  if (workspace?.interrupted === true) return;
  console.error(`bench:profile failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
