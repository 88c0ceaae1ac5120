import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadModule, parseSync } from 'libpg-query';
import type pg from 'pg';
import { quoteIdent } from '../tenancy/names.js';
import { sharedMigrationsTable, TENANT_VERSION_TABLE } from './control-schema.js';
import { type LifecycleContext, refused } from './context.js';

/**
 * Migrations are plain SQL files, applied in the order of their names (code-point order, so
 * 0001_x.sql, 0002_y.sql ...): `DIR/*.sql` is the tenant chain, applied to every tenant schema;
 * `DIR/shared/*.sql` is the shared chain, applied once to the shared schemas before it. A file
 * runs as one simple query (several statements allowed) inside the transaction of its tenant, so
 * statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY, VACUUM) are not allowed.
 */

export interface MigrationFile {
  name: string;
  sql: string;
  /** sha256 of the file's bytes, hex; an applied file that changes afterwards is an error. */
  checksum: string;
}

export interface MigrationSet {
  dir: string;
  tenant: MigrationFile[];
  shared: MigrationFile[];
}

export const SHARED_DIR = 'shared';

/** The migrations in `dir`; a missing directory is an empty set unless `required`. */
export async function readMigrations(dir: string, required: boolean): Promise<MigrationSet> {
  const resolved = path.resolve(dir);
  const tenant = await readChain(resolved, required);
  const shared = await readChain(path.join(resolved, SHARED_DIR), false);
  return { dir: resolved, tenant, shared };
}

async function readChain(dir: string, required: boolean): Promise<MigrationFile[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !required) return [];
    throw refused(`cannot read the migrations directory ${dir} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  const names = entries
    .filter((e) => e.isFile() && e.name.endsWith('.sql'))
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  await loadModule();
  return Promise.all(
    names.map(async (name) => {
      const bytes = await readFile(path.join(dir, name));
      const sql = bytes.toString('utf8');
      checkMigration(path.join(dir, name), sql);
      return { name, sql, checksum: createHash('sha256').update(bytes).digest('hex') };
    }),
  );
}

/** Statements a migration cannot hold: each file runs inside its tenant's transaction. */
const OUTSIDE_TRANSACTION = new Set(['TransactionStmt', 'VacuumStmt', 'CreatedbStmt', 'DropdbStmt', 'AlterSystemStmt', 'CreateTableSpaceStmt', 'DropTableSpaceStmt']);

/**
 * Refuses, before any schema is touched, a file that does not parse or that would end or escape
 * its transaction (BEGIN/COMMIT/ROLLBACK, VACUUM, CREATE INDEX CONCURRENTLY, ...).
 */
function checkMigration(file: string, sql: string): void {
  let stmts: Array<{ stmt?: Record<string, unknown> }>;
  try {
    stmts = (parseSync(sql) as { stmts?: Array<{ stmt?: Record<string, unknown> }> }).stmts ?? [];
  } catch (error) {
    throw refused(`${file} does not parse: ${error instanceof Error ? error.message : String(error)}`);
  }
  for (const { stmt } of stmts) {
    const kind = stmt === undefined ? undefined : Object.keys(stmt)[0];
    if (kind === undefined) continue;
    const concurrent = kind === 'IndexStmt' && (stmt?.[kind] as { concurrent?: boolean }).concurrent === true;
    if (OUTSIDE_TRANSACTION.has(kind) || concurrent) {
      throw refused(`${file}: ${concurrent ? 'CREATE INDEX CONCURRENTLY' : kind} cannot run in a migration (each file runs inside its tenant's transaction)`);
    }
  }
}

/** The newest tenant migration, which every tenant should be at; null when there is none. */
export function latestVersion(set: MigrationSet): string | null {
  return set.tenant.at(-1)?.name ?? null;
}

/** The files of `chain` not yet applied, after checking that every applied one is unchanged and still present. */
export function pendingFiles(chain: readonly MigrationFile[], applied: ReadonlyMap<string, string>): MigrationFile[] {
  const byName = new Map(chain.map((f) => [f.name, f]));
  for (const [name, checksum] of applied) {
    const file = byName.get(name);
    if (file === undefined) throw new Error(`migration ${name} was applied but is no longer in the migrations directory`);
    if (file.checksum !== checksum) throw new Error(`migration ${name} changed after it was applied (checksum ${checksum.slice(0, 12)}… now ${file.checksum.slice(0, 12)}…)`);
  }
  return chain.filter((f) => !applied.has(f.name));
}

/** Runs each file, naming the file in the error of the one that fails. */
async function runFiles(client: pg.Client, files: readonly MigrationFile[], record: (file: MigrationFile) => Promise<void>): Promise<void> {
  for (const file of files) {
    try {
      await client.query(file.sql);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const code = (error as { code?: unknown }).code;
      throw new Error(`${file.name}: ${message}${typeof code === 'string' ? ` (SQLSTATE ${code})` : ''}`);
    }
    await record(file);
  }
}

function searchPath(schemas: readonly string[]): string {
  return schemas.map(quoteIdent).join(', ');
}

/**
 * The shared chain, in the current transaction of `client`: search_path set to the shared schemas,
 * recorded in the shared_migrations table of the control schema's name in that database (created
 * there when missing: the control database has it from `pgfence init`, every other database that
 * holds tenants gets a schema of that name holding only this table). Returns the files applied
 * (or, with `dryRun`, those that would be).
 */
export async function applySharedChain(ctx: LifecycleContext, client: pg.Client, set: MigrationSet, dryRun: boolean): Promise<string[]> {
  const table = `${ctx.schemaSql}.shared_migrations`;
  const exists = await client.query('SELECT to_regclass($1) IS NOT NULL AS present', [table]);
  const present = (exists.rows[0] as { present: boolean }).present;
  const rows = present ? await client.query<{ name: string; checksum: string }>(`SELECT name, checksum FROM ${table}`) : { rows: [] };
  const pending = pendingFiles(set.shared, new Map(rows.rows.map((r) => [r.name, r.checksum])));
  if (dryRun || pending.length === 0) return pending.map((f) => f.name);
  if (!present) {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${ctx.schemaSql}`);
    await client.query(sharedMigrationsTable(ctx.control.schema));
  }
  await client.query(`SET LOCAL search_path TO ${searchPath(ctx.config.tenancy.sharedSchemas)}`);
  await runFiles(client, pending, async (file) => {
    await client.query(`INSERT INTO ${table} (name, checksum) VALUES ($1, $2)`, [file.name, file.checksum]);
  });
  return pending.map((f) => f.name);
}

/**
 * The tenant chain for one tenant, in the current transaction of `client` (a connection to where
 * the tenant lives): search_path set to the tenant's schema then the shared ones (as its sessions
 * see them), the tenant GUC set, each file recorded in the schema's own pgfence_migrations.
 * Returns the files applied (with `dryRun`, those that would be, and nothing runs). The registry's
 * copy of the version (tenants.version) is the caller's to write, on the control connection.
 */
export async function applyTenantChain(
  ctx: LifecycleContext,
  client: pg.Client,
  tenant: { id: string; schema: string },
  set: MigrationSet,
  dryRun: boolean,
): Promise<string[]> {
  const s = quoteIdent(tenant.schema);
  const exists = await client.query('SELECT to_regclass($1) IS NOT NULL AS present', [`${s}.${TENANT_VERSION_TABLE}`]);
  const present = (exists.rows[0] as { present: boolean }).present;
  const rows = present ? await client.query<{ name: string; checksum: string }>(`SELECT name, checksum FROM ${s}.${TENANT_VERSION_TABLE}`) : { rows: [] };
  const pending = pendingFiles(set.tenant, new Map(rows.rows.map((r) => [r.name, r.checksum])));
  if (dryRun || pending.length === 0) return pending.map((f) => f.name);
  if (!present) throw new Error(`the schema ${tenant.schema} has no ${TENANT_VERSION_TABLE} table (was it created by pgfence tenant create?)`);
  await client.query(`SET LOCAL search_path TO ${searchPath([tenant.schema, ...ctx.config.tenancy.sharedSchemas])}`);
  await client.query('SELECT pg_catalog.set_config($1, $2, true)', [ctx.config.tenancy.tenantGuc, tenant.id]);
  await runFiles(client, pending, async (file) => {
    await client.query(`INSERT INTO ${s}.${TENANT_VERSION_TABLE} (name, checksum) VALUES ($1, $2)`, [file.name, file.checksum]);
  });
  return pending.map((f) => f.name);
}

/** The newest migration recorded in a tenant schema's own version table (null: none, or no table). */
export async function tenantVersion(client: pg.Client, schema: string): Promise<string | null> {
  const table = `${quoteIdent(schema)}.${TENANT_VERSION_TABLE}`;
  const exists = await client.query('SELECT to_regclass($1) IS NOT NULL AS present', [table]);
  if (!(exists.rows[0] as { present: boolean }).present) return null;
  const r = await client.query<{ version: string | null }>(`SELECT max(name) AS version FROM ${table}`);
  return r.rows[0]?.version ?? null;
}
