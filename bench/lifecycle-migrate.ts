/**
 * `pgfence tenant migrate` across many tenant schemas: wall time of one additive migration
 * (ALTER TABLE ... ADD COLUMN) over BENCH_TENANTS schemas (default 1000) with concurrency 1, then
 * another one with concurrency BENCH_CONCURRENCY (default 8), on a throw-away embedded Postgres
 * (fsync off). The tenants are made as `pgfence tenant create` makes them (a schema, its version
 * table, a registered row, the first migration applied), in bulk SQL, so the setup stays short.
 *
 *   npx tsx bench/lifecycle-migrate.ts
 *   BENCH_TENANTS=200 npx tsx bench/lifecycle-migrate.ts     # a busy machine
 *
 * Writes bench/results/<UTC date and time>-migrate.md and latest-migrate.md.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { configSchema } from '../src/config/schema.js';
import { startEmbeddedPostgres } from '../src/embedded/postgres.js';
import { controlSchemaStatements, tenantVersionTable } from '../src/lifecycle/control-schema.js';
import { lifecycleContext } from '../src/lifecycle/context.js';
import { runMigrate } from '../src/lifecycle/migrate.js';
import { readMigrations } from '../src/lifecycle/migrations.js';
import { machine, pgfenceRevision, positiveInt } from './environment.js';
import { resultStamp, writeResults } from './result-files.js';

const TENANTS = positiveInt('BENCH_TENANTS', 1000);
const CONCURRENCY = positiveInt('BENCH_CONCURRENCY', 8);
const BATCH = 100;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-bench-migrate-'));
  const postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg') });
  try {
    const config = configSchema.parse({
      backend: { url: postgres.url },
      jwt: { secret: 'x'.repeat(32) },
      tenancy: { control: { schema: 'pgfence' } },
      log: { level: 'warn' },
    });
    const ctx = lifecycleContext(config, pino({ level: 'error' }));
    const migrations = path.join(dir, 'migrations');
    await mkdir(migrations);
    await writeFile(path.join(migrations, '0001_items.sql'), 'CREATE TABLE items (id serial PRIMARY KEY, note text);');

    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    const setupStarted = performance.now();
    for (const statement of controlSchemaStatements('pgfence', postgres.user, postgres.user)) await client.query(statement);
    const first = await readMigrations(migrations, true);
    const file = first.tenant[0];
    if (file === undefined) throw new Error('no migration');
    for (let start = 0; start < TENANTS; start += BATCH) {
      const ids = Array.from({ length: Math.min(BATCH, TENANTS - start) }, (_, i) => `t${String(start + i).padStart(5, '0')}`);
      const sql = ids.flatMap((id) => [
        `CREATE SCHEMA tenant_${id}`,
        tenantVersionTable(`tenant_${id}`),
        `CREATE TABLE tenant_${id}.items (id serial PRIMARY KEY, note text)`,
        `INSERT INTO tenant_${id}.pgfence_migrations (name, checksum) VALUES ('${file.name}', '${file.checksum}')`,
        `INSERT INTO pgfence.tenants (id, status, schema_name, version) VALUES ('${id}', 'active', 'tenant_${id}', '${file.name}')`,
      ]);
      await client.query(`BEGIN; ${sql.join(';\n')}; COMMIT`);
    }
    await client.end();
    const setupSeconds = (performance.now() - setupStarted) / 1000;
    process.stderr.write(`${TENANTS} tenant schemas made in ${setupSeconds.toFixed(1)} s\n`);

    const rows: Array<{ concurrency: number; seconds: number; migrated: number; failed: number }> = [];
    for (const [n, concurrency] of [[2, 1], [3, CONCURRENCY]] as const) {
      await writeFile(path.join(migrations, `000${n}_column.sql`), `ALTER TABLE items ADD COLUMN c${n} text;`);
      const set = await readMigrations(migrations, true);
      const started = performance.now();
      const report = await runMigrate(ctx, { migrations: set, concurrency, dryRun: false, wait: false });
      const seconds = (performance.now() - started) / 1000;
      rows.push({ concurrency, seconds, migrated: report.counts.migrated, failed: report.counts.failed });
      process.stderr.write(`concurrency ${concurrency}: ${report.counts.migrated} migrated, ${report.counts.failed} failed in ${seconds.toFixed(1)} s\n`);
    }

    const lines = [
      `# pgfence tenant migrate: one additive migration across ${TENANTS} tenant schemas`,
      '',
      `${new Date().toISOString()} · pgfence ${await pgfenceRevision()} · ${machine()} · Node ${process.version} · embedded PostgreSQL (fsync off, same machine)`,
      '',
      '| concurrency | tenants migrated | failed | wall time | per tenant |',
      '| ---: | ---: | ---: | ---: | ---: |',
      ...rows.map((r) => `| ${r.concurrency} | ${r.migrated} | ${r.failed} | ${r.seconds.toFixed(1)} s | ${((r.seconds * 1000) / Math.max(1, r.migrated)).toFixed(1)} ms |`),
      '',
      `Each tenant: one transaction (search_path and tenant GUC set, version table read, ALTER TABLE ADD COLUMN, version row, tenants row, audit row). Setup (${TENANTS} schemas in bulk SQL): ${setupSeconds.toFixed(1)} s.`,
      '',
    ];
    await writeResults(`${resultStamp(new Date().toISOString())}-migrate`, lines.join('\n'), null, 'latest-migrate.md');
    process.stdout.write(lines.join('\n'));
  } finally {
    await postgres.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
