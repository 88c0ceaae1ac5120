/**
 * The protocol fuzzer of test/fuzz/protocol-fuzz.test.ts, for as many cases as you like (not part
 * of the suite):
 *
 *   npx tsx scripts/fuzz-protocol.ts [--cases N] [--seed S] [--mode session|transaction|both]
 *                                    [--from CASE] [--max-failures N]
 *
 * runs N cases (default 10000) per pool mode (default both), numbered from CASE (default 0), and
 * stops a mode after N failures (default 10).
 *
 * Starts its own embedded Postgres (in a temporary directory, removed afterwards) and, per pool
 * mode, a pgfence in this process against a fresh database seeded like the tests'. An unhandled
 * error in this process is pgfence crashing, and fails the case it happened in. Prints progress,
 * every failure with the command that replays it (--seed S --from CASE --cases 1), and a final
 * line with the cases run and failures; exits 1 on any failure, 2 on bad arguments. Without --seed
 * a random one is chosen and printed. PGFENCE_FUZZ_LOG=debug shows pgfence's log.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { mintToken } from '../src/auth/index.js';
import { configSchema } from '../src/config/schema.js';
import { type EmbeddedPostgresHandle, startEmbeddedPostgres } from '../src/embedded/postgres.js';
import { startPgfence } from '../src/server.js';
import { fuzzConfig, type PoolMode } from '../test/fuzz/protocol-fuzz.js';
import { formatFailure, type FuzzReport, runProtocolFuzz } from '../test/fuzz/run-cases.js';
import { type ProcessErrorWatch, watchProcessErrors } from '../test/support/process-errors.js';
import { SEED_SQL, TEST_TENANTS } from '../test/support/seed.js';

const USAGE = 'usage: npx tsx scripts/fuzz-protocol.ts [--cases N] [--seed S] [--mode session|transaction|both] [--from CASE] [--max-failures N]';
/** Progress is printed every this many cases. */
const PROGRESS_EVERY = 500;

function parse(): { cases: number; seed: number; modes: PoolMode[]; from: number; maxFailures: number } {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string', default: '10000' },
      seed: { type: 'string' },
      mode: { type: 'string', default: 'both' },
      from: { type: 'string', default: '0' },
      'max-failures': { type: 'string', default: '10' },
    },
  });
  const whole = (text: string, min: number): number | null => (/^\d+$/.test(text) && Number(text) >= min && Number.isSafeInteger(Number(text)) ? Number(text) : null);
  const cases = whole(values.cases, 1);
  const seed = values.seed === undefined ? randomBytes(4).readUInt32BE(0) : whole(values.seed, 0);
  const from = whole(values.from, 0);
  const maxFailures = whole(values['max-failures'], 1);
  const modes: PoolMode[] | null = values.mode === 'both' ? ['session', 'transaction'] : values.mode === 'session' || values.mode === 'transaction' ? [values.mode] : null;
  if (cases === null || seed === null || seed > 0xffffffff || from === null || maxFailures === null || modes === null) {
    console.error(USAGE);
    process.exit(2);
  }
  return { cases, seed, modes, from, maxFailures };
}

async function fuzzMode(postgres: EmbeddedPostgresHandle, mode: PoolMode, args: ReturnType<typeof parse>, processErrors: ProcessErrorWatch): Promise<FuzzReport> {
  const database = `pgfence_fuzz_${mode}`;
  const admin = new pg.Client({ connectionString: postgres.url });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${database}`);
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const url = new URL(postgres.url);
  url.pathname = `/${database}`;
  const seeder = new pg.Client({ connectionString: url.toString() });
  await seeder.connect();
  await seeder.query(SEED_SQL);
  await seeder.end();

  const config = configSchema.parse({
    ...fuzzConfig(mode),
    backend: { url: url.toString() },
    jwt: { algorithms: ['HS256'], secret: randomBytes(32).toString('hex'), issuer: 'pgfence-fuzz' },
    tenancy: { tenants: TEST_TENANTS.map((id) => ({ id })) },
  });
  const log = pino({ level: process.env['PGFENCE_FUZZ_LOG'] ?? 'silent' });
  const running = await startPgfence(config, log, { processMetrics: false });
  try {
    console.log(`${mode} pooling: cases ${args.from}..${args.from + args.cases - 1}, seed ${args.seed}`);
    let printed = 0;
    return await runProtocolFuzz(
      {
        port: running.port,
        mode,
        tenants: TEST_TENANTS,
        token: (tenant) => mintToken(config.jwt, { tenantId: tenant, user: `${tenant}-user`, ttlSeconds: 3_600 }),
        connect: async (tenant, extra) => {
          const password = await mintToken(config.jwt, { tenantId: tenant, user: `${tenant}-user`, ttlSeconds: 3_600 });
          const client = new pg.Client({ host: '127.0.0.1', port: running.port, database: 'app', user: `${tenant}-user`, password, ...extra });
          client.on('error', () => undefined);
          await client.connect();
          return client;
        },
      },
      {
        seed: args.seed,
        from: args.from,
        count: args.cases,
        maxFailures: args.maxFailures,
        processErrors,
        onFailure: (failure) => console.log(`FAILED ${formatFailure(failure)}`),
        onBatch: ({ casesRun, failures }) => {
          if (casesRun - printed < PROGRESS_EVERY && casesRun < args.cases) return;
          printed = casesRun;
          console.log(`${mode} pooling: ${casesRun} cases, ${failures} failures`);
        },
      },
    );
  } finally {
    await running.close();
  }
}

const args = parse();
// First thing: from here on, an unhandled error anywhere in the process is a failure, not an exit.
const processErrors = watchProcessErrors();
const dir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-fuzz-'));
let postgres: EmbeddedPostgresHandle | null = null;
const cleanUp = async (): Promise<void> => {
  await postgres?.stop();
  await rm(dir, { recursive: true, force: true });
};
process.once('SIGINT', () => {
  console.log('interrupted');
  void cleanUp().finally(() => process.exit(130));
});

const reports: FuzzReport[] = [];
try {
  postgres = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), authMethod: 'scram-sha-256' });
  for (const mode of args.modes) {
    const report = await fuzzMode(postgres, mode, args, processErrors);
    reports.push(report);
    const states = Object.entries(report.states).filter(([, n]) => n > 0).map(([s, n]) => `${s} ${n}`).join(', ');
    console.log(`${mode} pooling: ${report.casesRun} cases (${states}), ${report.failures.length} failures`);
  }
} finally {
  processErrors.stop();
  await cleanUp();
}
const run = reports.reduce((sum, r) => sum + r.casesRun, 0);
const failed = reports.reduce((sum, r) => sum + r.failures.length, 0);
console.log(`fuzz-protocol: seed ${args.seed}, ${run} cases run (${reports.map((r) => `${r.mode} ${r.casesRun}`).join(', ')}), ${failed} failures`);
process.exit(failed === 0 ? 0 : 1);
