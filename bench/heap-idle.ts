/**
 * npm run bench:heap: what one idle client costs pgfence, object by object. pgfence (dist/,
 * transaction mode, pool 16) runs with `--heapsnapshot-signal`; after a warm-up, a heap snapshot is
 * taken before and after HEAP_IDLE_CLIENTS (2,000) idle clients (bench/memory.ts's raw clients),
 * and the difference is printed by node type and name (count and self bytes per client), with
 * VmRSS. The snapshots are kept in HEAP_OUT when it is set (open them in Chrome DevTools), else
 * removed with the temp dir. VmRSS per client at 2,000 clients is dominated by heap growth: the
 * figure to compare is the memory section of `npm run bench` at 10,000.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { positiveInt } from './environment.js';
import { openMany } from './memory.js';
import { buildPgfence, REPO, startPgfenceProcess } from './pgfence.js';
import { groupResidentKb } from './process-usage.js';
import { prepareDatabase, TENANTS } from './setup.js';
import { openWorkspace } from './workspace.js';

const CLIENTS = positiveInt('HEAP_IDLE_CLIENTS', 2_000);

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Self bytes and count by "type:name" of every node of a heap snapshot. */
function tally(snap: Snapshot): Map<string, { count: number; bytes: number }> {
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = snap.snapshot.meta.node_types[0];
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt] as number] ?? '?';
    let name = snap.strings[snap.nodes[i + nameAt] as number] ?? '?';
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '';
    if (type === 'number') name = '';
    const key = `${type}:${name.slice(0, 60)}`;
    const entry = out.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += snap.nodes[i + sizeAt] as number;
    out.set(key, entry);
  }
  return out;
}

async function newest(dir: string, known: Set<string>): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const files = (await readdir(dir)).filter((f) => f.endsWith('.heapsnapshot') && !known.has(f));
    if (files.length > 0) {
      const file = path.join(dir, files[0] as string);
      // Written when its size stops growing.
      let size = -1;
      for (;;) {
        await sleep(500);
        const now = (await stat(file)).size;
        if (now === size && now > 0) break;
        size = now;
      }
      known.add(files[0] as string);
      return file;
    }
    await sleep(200);
  }
  throw new Error('no heap snapshot written');
}

async function main(): Promise<void> {
  const ws = await openWorkspace('pgfence-heap-', console.log);
  try {
    const db = (ws.db = await prepareDatabase(ws.tmp, null));
    const build = await buildPgfence(REPO);
    const out = process.env['HEAP_OUT'] ?? ws.tmp;
    const running = await startPgfenceProcess(build, { backendUrl: db.pg.url, secret: randomBytes(32).toString('hex'), mode: 'transaction', poolSize: 16 }, ws.tmp, [
      '--heapsnapshot-signal=SIGUSR2',
      `--diagnostic-dir=${out}`,
    ]);
    const login = (i: number) => {
      const e = running.endpoint(TENANTS[i % TENANTS.length] as string);
      return { user: e.user, database: e.dbname, password: e.env['PGPASSWORD'] ?? '' };
    };
    const target = { name: 'pgfence', pgid: running.pgid, port: running.port, login };
    for (const s of await openMany(target, 200)) s.destroy();
    await sleep(2_000);
    const known = new Set<string>();
    const rssBefore = groupResidentKb(running.pgid);
    process.kill(running.pgid, 'SIGUSR2');
    const before = await newest(out, known);
    const sockets = await openMany(target, CLIENTS);
    await sleep(2_000);
    const rssAfter = groupResidentKb(running.pgid);
    process.kill(running.pgid, 'SIGUSR2');
    const after = await newest(out, known);
    const rssAfterSnap = groupResidentKb(running.pgid);
    console.log(`VmRSS before ${rssBefore} kB, after ${CLIENTS} clients ${rssAfter} kB: ${((rssAfter - rssBefore) / CLIENTS).toFixed(2)} kB per client (after the snapshots ${rssAfterSnap} kB)`);
    const a = tally(JSON.parse(await readFile(before, 'utf8')) as Snapshot);
    const b = tally(JSON.parse(await readFile(after, 'utf8')) as Snapshot);
    const rows: Array<{ key: string; count: number; bytes: number }> = [];
    let total = 0;
    for (const [key, v] of b) {
      const w = a.get(key) ?? { count: 0, bytes: 0 };
      const d = { key, count: v.count - w.count, bytes: v.bytes - w.bytes };
      total += d.bytes;
      rows.push(d);
    }
    rows.sort((x, y) => y.bytes - x.bytes);
    console.log(`JS heap (snapshot self sizes) per client: ${(total / CLIENTS).toFixed(0)} bytes`);
    console.log('| type:name | count per client | bytes per client |');
    for (const r of rows.slice(0, Number(process.env['HEAP_ROWS'] ?? 60))) console.log(`| ${r.key} | ${(r.count / CLIENTS).toFixed(2)} | ${(r.bytes / CLIENTS).toFixed(0)} |`);
    console.log(`snapshots: ${before} ${after}`);
    for (const s of sockets) s.destroy();
    await running.close();
  } finally {
    await ws.cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
