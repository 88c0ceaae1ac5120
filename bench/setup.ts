import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { type EmbeddedPostgresHandle, startEmbeddedPostgres } from '../src/embedded/postgres.js';
import { cleanEnv, run, tail } from './proc.js';

/** The tenants every target serves: t1..t8, schema tenant_tN, each with its own pgbench tables. */
export const TENANTS = ['t1', 't2', 't3', 't4', 't5', 't6', 't7', 't8'] as const;
export type Tenant = (typeof TENANTS)[number];

export const schemaOf = (tenant: string): string => `tenant_${tenant}`;
/** A login role per tenant whose default search_path is the tenant's: how PgBouncer pins a pool. */
export const roleOf = (tenant: string): string => `bench_${tenant}`;

export interface BenchDatabase {
  pg: EmbeddedPostgresHandle;
  /** Password of the bench_tN roles (not the superuser's). */
  rolePassword: string;
  serverVersion: string;
  /** Runs SQL directly as the superuser. */
  query(sql: string): Promise<pg.QueryResult>;
  /** VACUUM of the small tables and an empty pgbench_history, as pgbench does without -n. */
  tidy(tenants: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a throw-away embedded Postgres in `dir` and gives every tenant a schema, a role and pgbench
 * tables; with `pgbench` null, no pgbench tables (the large-result section alone needs none).
 */
export async function prepareDatabase(dir: string, pgbench: string | null): Promise<BenchDatabase> {
  const handle = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), persistent: false, maxConnections: 400 });
  const admin = new pg.Client({ connectionString: handle.url });
  try {
    await admin.connect();
    const rolePassword = randomBytes(18).toString('base64url');
    for (const tenant of TENANTS) {
      const schema = schemaOf(tenant);
      const role = roleOf(tenant);
      await admin.query(`CREATE SCHEMA ${schema}`);
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${rolePassword}'`);
      await admin.query(`ALTER ROLE ${role} SET search_path = ${schema}, public`);
    }
    if (pgbench !== null) await fillPgbenchTables(admin, handle, pgbench);
    const version = await admin.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
    return {
      pg: handle,
      rolePassword,
      serverVersion: version.rows[0]?.v ?? '?',
      query: (sql) => admin.query(sql),
      async tidy(tenants) {
        for (const tenant of tenants) {
          const schema = schemaOf(tenant);
          await admin.query(`VACUUM ${schema}.pgbench_branches, ${schema}.pgbench_tellers`);
          await admin.query(`TRUNCATE ${schema}.pgbench_history`);
        }
        await admin.query('CHECKPOINT');
      },
      async close() {
        await admin.end().catch(() => undefined);
        await handle.stop();
      },
    };
  } catch (error) {
    await admin.end().catch(() => undefined);
    await handle.stop();
    throw error;
  }
}

/** pgbench -i -s 1 in every tenant's schema, and its tables granted to the tenant's role. */
async function fillPgbenchTables(admin: pg.Client, handle: EmbeddedPostgresHandle, pgbench: string): Promise<void> {
  // pgbench -i straight against Postgres, one tenant schema each, in parallel.
  const inits = await Promise.all(
    TENANTS.map((tenant) =>
      run(pgbench, ['-i', '-s', '1', '-q', '-h', handle.host, '-p', String(handle.port), '-U', handle.user, 'postgres'], {
        env: cleanEnv({ PGPASSWORD: handle.password, PGOPTIONS: `-c search_path=${schemaOf(tenant)}` }),
        timeoutMs: 180_000,
      }),
    ),
  );
  inits.forEach((result, i) => {
    if (result.code !== 0) throw new Error(`pgbench -i for ${TENANTS[i]} failed:\n${tail(result.stderr)}`);
  });
  for (const tenant of TENANTS) {
    const schema = schemaOf(tenant);
    const role = roleOf(tenant);
    const { rows } = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema}.pgbench_accounts`);
    if (Number(rows[0]?.n) !== 100_000) throw new Error(`${schema}.pgbench_accounts has ${rows[0]?.n} rows, expected 100000`);
    await admin.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
    await admin.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
  }
}
