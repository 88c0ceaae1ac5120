import type pg from 'pg';
import { quoteIdent, quoteLiteral } from '../tenancy/names.js';
import type { LifecycleContext } from './context.js';
import type { TenantPlacement } from './tenant-placement.js';

/**
 * Database per tenant (`--placement TARGET/DATABASE`): `create` makes the database on the target
 * when it does not exist, owned by the provisioner, with CONNECT and TEMPORARY for the target's
 * service role only (PUBLIC's default CONNECT and TEMPORARY are revoked, so no other role of that
 * server can log in to it), and a comment that says whose it is. `drop` drops a database only when
 * that comment names the tenant and no other tenant is placed there; a database the operator made
 * is never dropped.
 */

const DUPLICATE_DATABASE = '42P04';

function mark(tenantId: string): string {
  return `pgfence: the database of tenant "${tenantId}", made by pgfence tenant create`;
}

/** A connection as the provisioner to the target's own database (where CREATE and DROP DATABASE run). */
export function connectToTarget(ctx: LifecycleContext, where: TenantPlacement): Promise<pg.Client> {
  return ctx.connectAt({ target: where.placement.target, database: null }, 'pgfence-lifecycle');
}

/** The tenant's database, created when missing; true when this call created it. */
export async function ensureTenantDatabase(ctx: LifecycleContext, where: TenantPlacement, tenantId: string): Promise<boolean> {
  const database = where.placement.database;
  if (database === null) return false;
  const admin = await connectToTarget(ctx, where);
  try {
    const found = await admin.query('SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1', [database]);
    if (found.rows.length > 0) return false;
    const d = quoteIdent(database);
    try {
      await admin.query(`CREATE DATABASE ${d}`);
    } catch (error) {
      if ((error as { code?: unknown }).code === DUPLICATE_DATABASE) return false;
      throw error;
    }
    try {
      const me = await admin.query<{ current_user: string }>('SELECT current_user');
      await admin.query(`COMMENT ON DATABASE ${d} IS ${quoteLiteral(mark(tenantId))}`);
      await admin.query(`REVOKE ALL ON DATABASE ${d} FROM PUBLIC`);
      if (me.rows[0]?.current_user !== where.serviceRole) await admin.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${d} TO ${quoteIdent(where.serviceRole)}`);
    } catch (error) {
      await admin.query(`DROP DATABASE IF EXISTS ${d}`).catch(() => undefined);
      throw error;
    }
    return true;
  } finally {
    await admin.end();
  }
}

/**
 * Drops the tenant's database (sessions still in it, such as the proxy's idle backends of the
 * suspended tenant, are ended: WITH (FORCE)). Used by `drop`, and by `create` to undo its own.
 */
export async function dropTenantDatabase(ctx: LifecycleContext, where: TenantPlacement): Promise<void> {
  const database = where.placement.database;
  if (database === null) return;
  const admin = await connectToTarget(ctx, where);
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** What `drop` does with a tenant's database: drop it, keep it (and why), or it is gone already. */
export type DatabaseFate = { fate: 'drop' } | { fate: 'keep'; why: string } | { fate: 'gone' };

/**
 * `drop` drops the database only when `create` made it for this tenant (its comment) and no other
 * registered tenant is placed in it; otherwise only the tenant's schema there goes.
 */
export async function tenantDatabaseFate(ctx: LifecycleContext, control: pg.Client, where: TenantPlacement, tenantId: string): Promise<DatabaseFate> {
  const database = where.placement.database;
  if (database === null) return { fate: 'keep', why: 'the target\'s own database' };
  const others = await control.query<{ id: string }>(`SELECT id FROM ${ctx.schemaSql}.tenants WHERE id <> $1 AND placement = $2 ORDER BY id LIMIT 3`, [tenantId, where.stored]);
  const admin = await connectToTarget(ctx, where);
  try {
    const r = await admin.query<{ comment: string | null }>(
      `SELECT pg_catalog.shobj_description(oid, 'pg_database') AS comment FROM pg_catalog.pg_database WHERE datname = $1`,
      [database],
    );
    const row = r.rows[0];
    if (row === undefined) return { fate: 'gone' };
    if (row.comment !== mark(tenantId)) return { fate: 'keep', why: 'pgfence tenant create did not make it for this tenant' };
    if (others.rows.length > 0) return { fate: 'keep', why: `other tenants live there too (${others.rows.map((o) => o.id).join(', ')})` };
    return { fate: 'drop' };
  } finally {
    await admin.end();
  }
}
