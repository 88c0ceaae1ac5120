import type pg from 'pg';
import { lockKeySql } from './control-schema.js';
import { audit, errorMessage, inTransaction, type LifecycleContext, LifecycleError, refused } from './context.js';
import { applySharedChain, applyTenantChain, type MigrationSet } from './migrations.js';
import { registeredSchema } from './tenant-names.js';
import { requireControl, type TenantRow, withAudit } from './tenants.js';

export interface MigrateOptions {
  migrations: MigrationSet;
  /** Only the first N tenants (by id); the others are reported as skipped. */
  canary?: number;
  /** Only these tenants. */
  tenants?: readonly string[];
  /** Tenants migrated at once, each on its own connection (default 1). */
  concurrency: number;
  /** Report what would be applied; change nothing. */
  dryRun: boolean;
  /** Wait for another run's lock instead of refusing. */
  wait: boolean;
  /** Called after each tenant (progress display). */
  onProgress?: (done: number, total: number, failed: number) => void;
}

export type TenantMigrationStatus = 'migrated' | 'current' | 'failed' | 'skipped';

export interface TenantMigration {
  tenant: string;
  status: TenantMigrationStatus;
  /** Files applied (dry run: that would be). */
  applied: string[];
  error?: string;
}

export interface MigrateReport {
  dryRun: boolean;
  shared: string[];
  tenants: TenantMigration[];
  counts: Record<TenantMigrationStatus, number>;
  durationMs: number;
}

/**
 * `pgfence tenant migrate`: under the lifecycle advisory lock (a second run refuses, or waits with
 * --wait), the shared chain once, then the tenant chain for every registered tenant (active and
 * suspended; a tenant being provisioned is skipped), each in its own transaction on one of
 * `concurrency` connections. A tenant that fails is rolled back and reported; the others go on.
 */
export async function runMigrate(ctx: LifecycleContext, options: MigrateOptions): Promise<MigrateReport> {
  const started = performance.now();
  let report: MigrateReport | undefined;
  await withAudit(ctx, 'migrate', null, async (lock) => {
    await requireControl(ctx, lock);
    const key = lockKeySql(ctx.control.schema);
    if (!options.dryRun) {
      if (options.wait) {
        await lock.query(`SELECT pg_catalog.pg_advisory_lock(${key.sql})`, key.params);
      } else {
        const got = await lock.query<{ locked: boolean }>(`SELECT pg_catalog.pg_try_advisory_lock(${key.sql}) AS locked`, key.params);
        if (got.rows[0]?.locked !== true) throw refused('another migrate run (or a create or drop) holds the lifecycle lock: try again later, or pass --wait');
      }
    }
    // The lock is the session's: it goes with the connection, whatever happens below.
    let shared: string[];
    try {
      shared = await inTransaction(lock, () => applySharedChain(ctx, lock, options.migrations, options.dryRun));
    } catch (error) {
      throw new LifecycleError('failed', `the shared chain failed, no tenant was migrated: ${errorMessage(error)}`);
    }
    const rows = await lock.query<TenantRow>(`SELECT * FROM ${ctx.schemaSql}.tenants ORDER BY id`);
    const { todo, results } = selectTenants(rows.rows, options);
    const total = todo.length;
    let done = 0;
    let failed = 0;
    options.onProgress?.(0, total, 0);
    const queue = [...todo];
    const worker = async (): Promise<void> => {
      const client = await ctx.connect('pgfence-migrate');
      try {
        for (let row = queue.shift(); row !== undefined; row = queue.shift()) {
          const result = await migrateOne(ctx, client, row, options);
          results.push(result);
          done++;
          if (result.status === 'failed') failed++;
          options.onProgress?.(done, total, failed);
        }
      } finally {
        await client.end();
      }
    };
    const workers = Math.max(1, Math.min(options.concurrency, total));
    await Promise.all(Array.from({ length: total === 0 ? 0 : workers }, worker));
    results.sort((a, b) => (a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : 0));
    const counts = { migrated: 0, current: 0, failed: 0, skipped: 0 };
    for (const r of results) counts[r.status]++;
    report = { dryRun: options.dryRun, shared, tenants: results, counts, durationMs: Math.round(performance.now() - started) };
    const failures = results.filter((r) => r.status === 'failed').map((r) => ({ tenant: r.tenant, error: r.error }));
    await audit(ctx, lock, {
      action: options.dryRun ? 'migrate --dry-run' : 'migrate',
      tenant: null,
      outcome: counts.failed > 0 ? 'failed' : counts.migrated > 0 || shared.length > 0 ? 'ok' : 'unchanged',
      detail: { dir: options.migrations.dir, shared, counts, failures: failures.slice(0, 100), durationMs: report.durationMs },
    });
    return { action: 'migrate', tenant: null, outcome: 'ok', message: '' };
  });
  if (report === undefined) throw new Error('migrate ended without a report');
  return report;
}

function selectTenants(rows: TenantRow[], options: MigrateOptions): { todo: TenantRow[]; results: TenantMigration[] } {
  const results: TenantMigration[] = [];
  let candidates = rows.filter((row) => {
    if (row.status !== 'provisioning') return true;
    results.push({ tenant: row.id, status: 'skipped', applied: [], error: 'still being provisioned' });
    return false;
  });
  if (options.tenants !== undefined) {
    const known = new Set(rows.map((r) => r.id));
    const unknown = options.tenants.filter((id) => !known.has(id));
    if (unknown.length > 0) throw refused(`unknown tenant(s): ${unknown.join(', ')}`);
    const wanted = new Set(options.tenants);
    candidates = candidates.filter((row) => {
      if (wanted.has(row.id)) return true;
      results.push({ tenant: row.id, status: 'skipped', applied: [], error: 'not in --tenants' });
      return false;
    });
  }
  if (options.canary !== undefined) {
    const canary = options.canary;
    candidates = candidates.filter((row, i) => {
      if (i < canary) return true;
      results.push({ tenant: row.id, status: 'skipped', applied: [], error: 'not in the canary' });
      return false;
    });
  }
  return { todo: candidates, results };
}

async function migrateOne(ctx: LifecycleContext, client: pg.Client, row: TenantRow, options: MigrateOptions): Promise<TenantMigration> {
  try {
    const schema = registeredSchema(ctx.config, row.id, row.schema_name);
    if (schema === null) return { tenant: row.id, status: 'current', applied: [] };
    const applied = await inTransaction(client, async () => {
      const files = await applyTenantChain(ctx, client, { id: row.id, schema }, options.migrations, options.dryRun);
      if (files.length > 0 && !options.dryRun) await audit(ctx, client, { action: 'migrate', tenant: row.id, outcome: 'ok', detail: { applied: files } });
      return files;
    });
    return { tenant: row.id, status: applied.length > 0 ? 'migrated' : 'current', applied };
  } catch (error) {
    const message = errorMessage(error);
    await audit(ctx, client, { action: 'migrate', tenant: row.id, outcome: 'failed', detail: { error: message } });
    return { tenant: row.id, status: 'failed', applied: [], error: message };
  }
}
