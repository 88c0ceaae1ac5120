import type pg from 'pg';
import { lockKeySql } from './control-schema.js';
import { audit, errorMessage, inTransaction, type LifecycleContext, LifecycleError, refused } from './context.js';
import { applySharedChain, applyTenantChain, type MigrationSet, tenantVersion } from './migrations.js';
import { registeredSchema } from './tenant-names.js';
import { type TenantPlacement, tenantPlacement } from './tenant-placement.js';
import { placementOfRow, requireControl, type TenantRow, withAudit } from './tenants.js';

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
  /** Where it lives: `default`, `TARGET` or `TARGET/DATABASE`. */
  placement: string;
  status: TenantMigrationStatus;
  /** Files applied (dry run: that would be). */
  applied: string[];
  error?: string;
}

/** The shared chain on a database other than the control schema's, where tenants of this run live. */
export interface SharedMigration {
  placement: string;
  applied: string[];
  error?: string;
}

export interface MigrateReport {
  dryRun: boolean;
  /** The shared chain on the control schema's database. */
  shared: string[];
  /** The shared chain on each other database holding tenants of this run, once each. */
  sharedElsewhere: SharedMigration[];
  tenants: TenantMigration[];
  counts: Record<TenantMigrationStatus, number>;
  durationMs: number;
}

/** A selected tenant and where it lives (or why that cannot be said: an unknown target). */
interface Planned {
  row: TenantRow;
  label: string;
  where: TenantPlacement | Error;
}

/**
 * `pgfence tenant migrate`: under the lifecycle advisory lock (held on the control database; a
 * second run refuses, or waits with --wait), the shared chain once on the control database, then
 * the tenant chain for every registered tenant (active and suspended; a tenant being provisioned
 * is skipped) where it lives, each in its own transaction, `concurrency` tenants at once. Each other
 * database holding tenants gets the shared chain once, before its first tenant. A tenant that
 * fails is rolled back and reported; the others go on. A placement that cannot be reached, or
 * whose shared chain fails, fails its own tenants only.
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
    const { todo, results } = selectTenants(ctx, rows.rows, options);
    const total = todo.length;
    let done = 0;
    let failed = 0;
    options.onProgress?.(0, total, 0);
    // By placement, so that a worker keeps its connection from one tenant to the next.
    const queue = todo.map((row) => plan(ctx, row)).sort((a, b) => compare(a.label, b.label) || compare(a.row.id, b.row.id));
    const placements = new Placements(ctx, options);
    const worker = async (): Promise<void> => {
      const control = await ctx.connect('pgfence-migrate');
      const at = placements.connections();
      try {
        for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
          const result = await migrateOne(ctx, control, placements, at, item, options);
          results.push(result);
          done++;
          if (result.status === 'failed') failed++;
          options.onProgress?.(done, total, failed);
        }
      } finally {
        await at.close();
        await control.end();
      }
    };
    const workers = Math.max(1, Math.min(options.concurrency, total));
    await Promise.all(Array.from({ length: total === 0 ? 0 : workers }, worker));
    results.sort((a, b) => compare(a.tenant, b.tenant));
    const counts = { migrated: 0, current: 0, failed: 0, skipped: 0 };
    for (const r of results) counts[r.status]++;
    const sharedElsewhere = placements.sharedReport();
    report = { dryRun: options.dryRun, shared, sharedElsewhere, tenants: results, counts, durationMs: Math.round(performance.now() - started) };
    const failures = results.filter((r) => r.status === 'failed').map((r) => ({ tenant: r.tenant, placement: r.placement, error: r.error }));
    const sharedApplied = sharedElsewhere.some((s) => s.applied.length > 0 && s.error === undefined);
    await audit(ctx, lock, {
      action: options.dryRun ? 'migrate --dry-run' : 'migrate',
      tenant: null,
      outcome: counts.failed > 0 ? 'failed' : counts.migrated > 0 || shared.length > 0 || sharedApplied ? 'ok' : 'unchanged',
      detail: { dir: options.migrations.dir, shared, sharedElsewhere, counts, failures: failures.slice(0, 100), durationMs: report.durationMs },
    });
    return { action: 'migrate', tenant: null, outcome: 'ok', message: '' };
  });
  if (report === undefined) throw new Error('migrate ended without a report');
  return report;
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function plan(ctx: LifecycleContext, row: TenantRow): Planned {
  try {
    const where = tenantPlacement(ctx, row.placement);
    return { row, label: where.label, where };
  } catch (error) {
    return { row, label: placementOfRow(ctx, row.placement), where: error instanceof Error ? error : new Error(String(error)) };
  }
}

function selectTenants(ctx: LifecycleContext, rows: TenantRow[], options: MigrateOptions): { todo: TenantRow[]; results: TenantMigration[] } {
  const results: TenantMigration[] = [];
  const skip = (row: TenantRow, why: string): void => {
    results.push({ tenant: row.id, placement: placementOfRow(ctx, row.placement), status: 'skipped', applied: [], error: why });
  };
  let candidates = rows.filter((row) => {
    if (row.status !== 'provisioning') return true;
    skip(row, 'still being provisioned');
    return false;
  });
  if (options.tenants !== undefined) {
    const known = new Set(rows.map((r) => r.id));
    const unknown = options.tenants.filter((id) => !known.has(id));
    if (unknown.length > 0) throw refused(`unknown tenant(s): ${unknown.join(', ')}`);
    const wanted = new Set(options.tenants);
    candidates = candidates.filter((row) => {
      if (wanted.has(row.id)) return true;
      skip(row, 'not in --tenants');
      return false;
    });
  }
  if (options.canary !== undefined) {
    const canary = options.canary;
    candidates = candidates.filter((row, i) => {
      if (i < canary) return true;
      skip(row, 'not in the canary');
      return false;
    });
  }
  return { todo: candidates, results };
}

/** A worker's connection to the placement it is working on (one at a time). */
interface PlacementConnections {
  get(where: TenantPlacement): Promise<pg.Client>;
  /** Ends the connection (after a failure: the next tenant starts on a fresh one). */
  close(): Promise<void>;
}

/**
 * What the workers of one run share about the placements: the shared chain, run once per
 * database (the first worker to get there runs it, the others wait for it), and the placements
 * found unreachable, whose remaining tenants fail at once with the same error. A server that
 * answered with an error (a database that does not exist) is that placement's problem; one that
 * did not answer is its whole target's.
 */
class Placements {
  private readonly shared = new Map<string, Promise<string[]>>();
  private readonly sharedResults = new Map<string, SharedMigration>();
  private readonly unreachable = new Map<string, string>();

  constructor(
    private readonly ctx: LifecycleContext,
    private readonly options: MigrateOptions,
  ) {}

  connections(): PlacementConnections {
    let here: { label: string; client: pg.Client } | null = null;
    const close = async (): Promise<void> => {
      const open = here;
      here = null;
      await open?.client.end().catch(() => undefined);
    };
    return {
      get: async (where) => {
        if (here?.label === where.label) return here.client;
        await close();
        const known = this.unreachable.get(where.label) ?? this.unreachable.get(`target:${where.placement.target}`);
        if (known !== undefined) throw new Error(known);
        try {
          const client = await where.connect('pgfence-migrate');
          here = { label: where.label, client };
          return client;
        } catch (error) {
          const message = `${where.label} cannot be reached: ${errorMessage(error)}`;
          const answered = /^[0-9A-Z]{5}$/.test(String((error as { code?: unknown }).code));
          this.unreachable.set(answered ? where.label : `target:${where.placement.target}`, message);
          throw new Error(message);
        }
      },
      close,
    };
  }

  /** The shared chain on this placement's database, once per run; a failure fails each of its tenants. */
  async sharedChain(where: TenantPlacement, client: pg.Client): Promise<void> {
    let once = this.shared.get(where.label);
    if (once === undefined) {
      once = inTransaction(client, () => applySharedChain(this.ctx, client, this.options.migrations, this.options.dryRun)).then(
        (applied) => {
          this.sharedResults.set(where.label, { placement: where.label, applied });
          return applied;
        },
        (error: unknown) => {
          this.sharedResults.set(where.label, { placement: where.label, applied: [], error: errorMessage(error) });
          throw error;
        },
      );
      this.shared.set(where.label, once);
    }
    try {
      await once;
    } catch (error) {
      throw new Error(`the shared chain on ${where.label} failed: ${errorMessage(error)}`);
    }
  }

  sharedReport(): SharedMigration[] {
    return [...this.sharedResults.values()].sort((a, b) => compare(a.placement, b.placement));
  }
}

async function migrateOne(
  ctx: LifecycleContext,
  control: pg.Client,
  placements: Placements,
  at: PlacementConnections,
  item: Planned,
  options: MigrateOptions,
): Promise<TenantMigration> {
  const { row, label } = item;
  try {
    if (item.where instanceof Error) throw item.where;
    const where = item.where;
    const schema = registeredSchema(ctx.config, row.id, row.schema_name);
    if (schema === null) return { tenant: row.id, placement: label, status: 'current', applied: [] };
    const record = async (files: string[], version: string | null): Promise<void> => {
      if (options.dryRun || (files.length === 0 && version === row.version)) return;
      await control.query(`UPDATE ${ctx.schemaSql}.tenants SET version = $2, updated_at = now() WHERE id = $1`, [row.id, version]);
      if (files.length > 0) await audit(ctx, control, { action: 'migrate', tenant: row.id, outcome: 'ok', detail: { applied: files, placement: label } });
    };
    let applied: string[];
    if (where.controlDatabase) {
      // The tenant, its version in the registry and the audit row commit together.
      applied = await inTransaction(control, async () => {
        const files = await applyTenantChain(ctx, control, { id: row.id, schema }, options.migrations, options.dryRun);
        await record(files, options.dryRun ? row.version : await tenantVersion(control, schema));
        return files;
      });
    } else {
      // The tenant commits where it lives, then the registry's copy of its version (a run that
      // stops in between leaves an old copy, which the next run corrects).
      const client = await at.get(where);
      await placements.sharedChain(where, client);
      const done = await inTransaction(client, async () => {
        const files = await applyTenantChain(ctx, client, { id: row.id, schema }, options.migrations, options.dryRun);
        return { files, version: options.dryRun ? row.version : await tenantVersion(client, schema) };
      });
      await inTransaction(control, () => record(done.files, done.version));
      applied = done.files;
    }
    return { tenant: row.id, placement: label, status: applied.length > 0 ? 'migrated' : 'current', applied };
  } catch (error) {
    const message = errorMessage(error);
    if (!(item.where instanceof Error) && !item.where.controlDatabase) await at.close();
    await audit(ctx, control, { action: 'migrate', tenant: row.id, outcome: 'failed', detail: { error: message, placement: label } });
    return { tenant: row.id, placement: label, status: 'failed', applied: [], error: message };
  }
}
