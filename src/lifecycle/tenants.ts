import type pg from 'pg';
import { CONTROL_EVENTS_APPLICATION } from '../tenancy/control-events.js';
import { controlChannel } from '../tenancy/control.js';
import { quoteIdent, quoteLiteral, roleForTenant } from '../tenancy/names.js';
import { controlSchemaStatements, lockKeySql } from './control-schema.js';
import { audit, errorMessage, inTransaction, type LifecycleContext, LifecycleError, type Outcome, refused } from './context.js';
import { latestVersion, type MigrationSet } from './migrations.js';
import { type Provisioned, provisionTenant } from './provision.js';
import { connectToTarget, dropTenantDatabase, ensureTenantDatabase, tenantDatabaseFate } from './tenant-database.js';
import { registeredSchema, tenantSchema } from './tenant-names.js';
import { type TenantPlacement, tenantPlacement } from './tenant-placement.js';

/** What a lifecycle command did, for the human line and for --json. */
export interface ActionResult {
  action: string;
  tenant: string | null;
  outcome: Outcome;
  message: string;
  data?: Record<string, unknown>;
}

export type TenantStatus = 'provisioning' | 'active' | 'suspended';

export interface TenantRow {
  id: string;
  status: TenantStatus;
  schema_name: string | null;
  placement: string | null;
  statement_timeout_ms: number | null;
  version: string | null;
  created_at: Date;
  updated_at: Date;
}

/** `pgfence init`: the control schema and its tables, idempotently. */
export async function initControl(ctx: LifecycleContext): Promise<ActionResult> {
  const client = await ctx.connect();
  try {
    const before = await client.query('SELECT to_regclass($1) IS NOT NULL AS present', [`${ctx.schemaSql}.tenants`]);
    const existed = (before.rows[0] as { present: boolean }).present;
    const user = await client.query<{ current_user: string }>('SELECT current_user');
    const provisioner = user.rows[0]?.current_user ?? ctx.provisioner.user;
    await inTransaction(client, async () => {
      for (const statement of controlSchemaStatements(ctx.control.schema, ctx.serviceRole, provisioner)) await client.query(statement);
      await audit(ctx, client, { action: 'init', tenant: null, outcome: existed ? 'unchanged' : 'ok', detail: { schema: ctx.control.schema } });
    });
    return {
      action: 'init',
      tenant: null,
      outcome: existed ? 'unchanged' : 'ok',
      message: `control schema "${ctx.control.schema}" ${existed ? 'was already there (checked)' : 'created'}; the proxy reads it as "${ctx.serviceRole}"`,
      data: { schema: ctx.control.schema, serviceRole: ctx.serviceRole, provisioner },
    };
  } catch (error) {
    if (error instanceof LifecycleError) throw error;
    throw new LifecycleError('failed', `init failed: ${errorMessage(error)}`);
  } finally {
    await client.end();
  }
}

async function requireControl(ctx: LifecycleContext, client: pg.Client): Promise<void> {
  const r = await client.query('SELECT to_regclass($1) IS NOT NULL AS present', [`${ctx.schemaSql}.tenants`]);
  if (!(r.rows[0] as { present: boolean }).present) {
    throw refused(`the control schema "${ctx.control.schema}" does not exist (or this role cannot see it): run \`pgfence init --config FILE\` first`);
  }
}

async function tenantRow(ctx: LifecycleContext, client: pg.Client, id: string, lock = false): Promise<TenantRow | undefined> {
  const r = await client.query<TenantRow>(`SELECT * FROM ${ctx.schemaSql}.tenants WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
  return r.rows[0];
}

/**
 * Runs an action on a fresh connection: a LifecycleError (refusal or failure) gets its audit row
 * here, in its own transaction, since the action's own was rolled back.
 */
async function withAudit(ctx: LifecycleContext, action: string, tenant: string | null, work: (client: pg.Client) => Promise<ActionResult>): Promise<ActionResult> {
  const client = await ctx.connect();
  try {
    return await work(client);
  } catch (error) {
    const failure = error instanceof LifecycleError ? error : new LifecycleError('failed', errorMessage(error));
    const hasControl = await client
      .query('SELECT to_regclass($1) IS NOT NULL AS present', [`${ctx.schemaSql}.audit`])
      .then((r) => (r.rows[0] as { present: boolean }).present)
      .catch(() => false);
    await audit(ctx, hasControl ? client : null, { action, tenant, outcome: failure.outcome, detail: { error: failure.message, ...failure.detail } });
    throw failure;
  } finally {
    await client.end();
  }
}

async function notifyChange(ctx: LifecycleContext, client: pg.Client, id: string, action: string): Promise<void> {
  await client.query('SELECT pg_catalog.pg_notify($1, $2)', [controlChannel(ctx.control.schema), JSON.stringify({ tenant: id, action })]);
}

/** Proxies listening for tenant changes on this database (they end a suspended tenant's sessions). */
async function listeningProxies(client: pg.Client): Promise<number> {
  const r = await client.query<{ n: string }>(
    'SELECT count(*) AS n FROM pg_catalog.pg_stat_activity WHERE datname = current_database() AND application_name = $1',
    [CONTROL_EVENTS_APPLICATION],
  );
  return Number(r.rows[0]?.n ?? 0);
}

export interface CreateOptions {
  migrations: MigrationSet;
  /** Register a schema that exists already (made before pgfence managed tenants). */
  adopt: boolean;
  placement?: string;
  statementTimeoutMs?: number;
}

/**
 * `pgfence tenant create ID [--placement TARGET[/DATABASE]]`: registers the tenant and makes, where
 * it is placed, its schema (granted to that target's service role) and version table, its role
 * (with tenancy.roleTemplate), the shared chain of that database if behind and every tenant
 * migration, then marks it active, under the lifecycle lock. All or nothing:
 *
 * - on the control schema's own database, all of it is one transaction;
 * - elsewhere (another target, a database of its own) there are two connections: the row is
 *   committed as `provisioning` first (the proxy does not serve it), then the tenant's database is
 *   created if needed and everything else is one transaction there, then the row turns `active`.
 *   A failure there rolls that transaction back, drops a database this run created and deletes
 *   the row; if the registry cannot be updated at the end, the schema (or database) is dropped
 *   again. Only a crash in between leaves a `provisioning` row, which a second run finishes.
 *
 * An existing tenant is left as it is (outcome unchanged); asking for another placement than its
 * own is refused.
 */
export async function createTenant(ctx: LifecycleContext, id: string, options: CreateOptions): Promise<ActionResult> {
  const schema = tenantSchema(ctx.config, id);
  return withAudit(ctx, 'create', id, async (control) => {
    await requireControl(ctx, control);
    const where = tenantPlacement(ctx, options.placement ?? null);
    return where.controlDatabase ? createOnControl(ctx, control, id, schema, where, options) : createElsewhere(ctx, control, id, schema, where, options);
  });
}

async function createOnControl(ctx: LifecycleContext, control: pg.Client, id: string, schema: string | null, where: TenantPlacement, options: CreateOptions): Promise<ActionResult> {
  const key = lockKeySql(ctx.control.schema);
  return inTransaction(control, async () => {
    await control.query(`SELECT pg_catalog.pg_advisory_xact_lock(${key.sql})`, key.params);
    const existing = await tenantRow(ctx, control, id, true);
    const done = await existingTenant(ctx, control, id, existing, where, options);
    if (done !== null) return done;
    const { adopted, grants } = await adoption(control, id, schema, existing !== undefined, options.adopt);
    await registerProvisioning(ctx, control, id, schema, where, options);
    const made = await provisionTenant(ctx, control, { id, schema, serviceRole: where.serviceRole, grants }, options.migrations);
    return activate(ctx, control, id, schema, where, adopted, made);
  });
}

async function createElsewhere(ctx: LifecycleContext, control: pg.Client, id: string, schema: string | null, where: TenantPlacement, options: CreateOptions): Promise<ActionResult> {
  const key = lockKeySql(ctx.control.schema);
  // A session lock: it spans the control connection's transactions, as migrate's does.
  await control.query(`SELECT pg_catalog.pg_advisory_lock(${key.sql})`, key.params);
  try {
    const first = await inTransaction(control, async () => {
      const existing = await tenantRow(ctx, control, id, true);
      const done = await existingTenant(ctx, control, id, existing, where, options);
      if (done === null) await registerProvisioning(ctx, control, id, schema, where, options);
      return { done, registered: existing !== undefined };
    });
    if (first.done !== null) return first.done;
    const forgetRow = async (): Promise<void> => {
      if (first.registered) return;
      await control.query(`DELETE FROM ${ctx.schemaSql}.tenants WHERE id = $1 AND status = 'provisioning'`, [id]).catch((error: unknown) => {
        ctx.log.error({ tenant: id, err: errorMessage(error) }, 'the provisioning row could not be deleted');
      });
    };
    let createdDatabase = false;
    let adopted = false;
    let made: Provisioned;
    try {
      createdDatabase = await ensureTenantDatabase(ctx, where, id);
      const client = await where.connect();
      try {
        const found = await adoption(client, id, schema, first.registered, options.adopt);
        adopted = found.adopted;
        made = await inTransaction(client, () => provisionTenant(ctx, client, { id, schema, serviceRole: where.serviceRole, grants: found.grants }, options.migrations));
      } finally {
        await client.end();
      }
    } catch (error) {
      if (createdDatabase) await undo(ctx, id, 'the database this run created', () => dropTenantDatabase(ctx, where));
      await forgetRow();
      throw error;
    }
    try {
      return await inTransaction(control, () => activate(ctx, control, id, schema, where, adopted, made, createdDatabase));
    } catch (error) {
      // The placement committed, the registry did not: take the tenant away from the placement again.
      if (createdDatabase) await undo(ctx, id, 'the database this run created', () => dropTenantDatabase(ctx, where));
      else if (!adopted && schema !== null) await undo(ctx, id, `the schema "${schema}"`, () => dropSchemaAt(where, schema));
      await forgetRow();
      throw error;
    }
  } finally {
    await control.query(`SELECT pg_catalog.pg_advisory_unlock(${key.sql})`, key.params).catch(() => undefined);
  }
}

async function undo(ctx: LifecycleContext, id: string, what: string, step: () => Promise<void>): Promise<void> {
  try {
    await step();
  } catch (error) {
    ctx.log.error({ tenant: id, err: errorMessage(error) }, `create failed and ${what} could not be dropped again: drop it by hand`);
  }
}

async function dropSchemaAt(where: TenantPlacement, schema: string): Promise<void> {
  const client = await where.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

/**
 * A registered tenant: unchanged when it is done (and no other placement was asked for), refused
 * when another placement was asked for, or when a row left `provisioning` names another placement.
 * Null: go on (none yet, or one to finish here).
 */
async function existingTenant(ctx: LifecycleContext, control: pg.Client, id: string, existing: TenantRow | undefined, where: TenantPlacement, options: CreateOptions): Promise<ActionResult | null> {
  if (existing === undefined) return null;
  const registered = placementOfRow(ctx, existing.placement);
  if (existing.status === 'provisioning') {
    if (registered !== where.label) throw refused(`tenant "${id}" is being provisioned on ${registered}: run \`pgfence tenant create ${id} --placement ${registered}\` to finish it there`);
    return null;
  }
  const schema = registeredSchema(ctx.config, id, existing.schema_name);
  if (options.placement !== undefined && registered !== where.label) {
    throw refused(`tenant "${id}" exists already on ${registered}, not ${where.label}: create does not move a tenant`);
  }
  await audit(ctx, control, { action: 'create', tenant: id, outcome: 'unchanged', detail: { status: existing.status, placement: registered } });
  return {
    action: 'create',
    tenant: id,
    outcome: 'unchanged',
    message: `tenant "${id}" exists already (${existing.status}, version ${existing.version ?? 'none'}, on ${registered})`,
    data: { status: existing.status, schema, version: existing.version, placement: registered },
  };
}

/** A row's placement as the report names it; an unusable one (unknown target) as it is written. */
function placementOfRow(ctx: LifecycleContext, stored: string | null): string {
  try {
    return tenantPlacement(ctx, stored).label;
  } catch {
    return stored ?? 'default';
  }
}

/** A schema already there: refused unless --adopt (then granted only when the provisioner owns it). */
async function adoption(client: pg.Client, id: string, schema: string | null, registered: boolean, adopt: boolean): Promise<{ adopted: boolean; grants: boolean }> {
  if (schema === null || registered) return { adopted: false, grants: true };
  const found = await client.query<{ owned: boolean }>(
    'SELECT nspowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user) AS owned FROM pg_catalog.pg_namespace WHERE nspname = $1',
    [schema],
  );
  if (found.rows.length === 0) return { adopted: false, grants: true };
  if (!adopt) throw refused(`the schema "${schema}" exists but tenant "${id}" is not registered: pass --adopt to register that schema as the tenant's`);
  return { adopted: true, grants: found.rows[0]?.owned === true };
}

async function registerProvisioning(ctx: LifecycleContext, control: pg.Client, id: string, schema: string | null, where: TenantPlacement, options: CreateOptions): Promise<void> {
  await control.query(
    `INSERT INTO ${ctx.schemaSql}.tenants (id, status, schema_name, placement, statement_timeout_ms) VALUES ($1, 'provisioning', $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET schema_name = EXCLUDED.schema_name, placement = EXCLUDED.placement, statement_timeout_ms = EXCLUDED.statement_timeout_ms, updated_at = now()`,
    [id, schema, where.stored, options.statementTimeoutMs ?? null],
  );
}

/** The row turns active with the tenant's version, announced and audited, in the control transaction. */
async function activate(
  ctx: LifecycleContext,
  control: pg.Client,
  id: string,
  schema: string | null,
  where: TenantPlacement,
  adopted: boolean,
  made: Provisioned,
  createdDatabase = false,
): Promise<ActionResult> {
  await control.query(`UPDATE ${ctx.schemaSql}.tenants SET status = 'active', version = $2, updated_at = now() WHERE id = $1`, [id, made.version]);
  await notifyChange(ctx, control, id, 'create');
  const detail = {
    schema,
    placement: where.label,
    ...(where.placement.database === null ? {} : { database: where.placement.database, createdDatabase }),
    role: made.role,
    adopted,
    applied: made.applied,
    sharedApplied: made.sharedApplied,
  };
  await audit(ctx, control, { action: 'create', tenant: id, outcome: 'ok', detail });
  const on = where.controlDatabase ? '' : ` on ${where.label}${createdDatabase ? ` (database "${where.placement.database}" created)` : ''}`;
  return {
    action: 'create',
    tenant: id,
    outcome: 'ok',
    message: `tenant "${id}" ${adopted ? 'adopted' : 'created'}${schema === null ? '' : ` in schema "${schema}"`}${on}${made.role === null ? '' : ` with role "${made.role}"`}, ${made.applied.length} migration(s) applied, active`,
    data: { ...detail, version: made.version },
  };
}

export interface ListedTenant extends TenantRow {
  /** Where it lives: `default`, `TARGET` or `TARGET/DATABASE`. */
  placement: string;
  /** On disk, where it lives; null when it has no tables or its placement cannot be reached. */
  size_bytes: number | null;
  behind: boolean;
}

/**
 * `pgfence tenant list`: every tenant with its status, placement, version (behind or not) and
 * size on disk, which is read where each tenant lives (one connection per placement; one that
 * cannot be reached leaves its tenants' sizes unknown, with a warning).
 */
export async function listTenants(ctx: LifecycleContext, migrations: MigrationSet): Promise<ListedTenant[]> {
  const client = await ctx.connect();
  try {
    await requireControl(ctx, client);
    const r = await client.query<TenantRow>(`SELECT * FROM ${ctx.schemaSql}.tenants ORDER BY id`);
    const sizes = await schemaSizes(ctx, client, r.rows);
    const latest = latestVersion(migrations);
    const listed = r.rows.map((row) => ({
      ...row,
      placement: placementOfRow(ctx, row.placement),
      size_bytes: sizes.get(row.id) ?? null,
      behind: latest !== null && row.schema_name !== null && (row.version === null || row.version < latest),
    }));
    ctx.log.info({ action: 'list', tenants: listed.length }, 'tenant lifecycle: list');
    return listed;
  } finally {
    await client.end();
  }
}

async function schemaSizes(ctx: LifecycleContext, control: pg.Client, rows: readonly TenantRow[]): Promise<Map<string, number>> {
  const groups = new Map<string, { where: TenantPlacement; rows: TenantRow[] }>();
  for (const row of rows) {
    if (row.schema_name === null) continue;
    let where: TenantPlacement;
    try {
      where = tenantPlacement(ctx, row.placement);
    } catch {
      continue;
    }
    const group = groups.get(where.label) ?? { where, rows: [] };
    group.rows.push(row);
    groups.set(where.label, group);
  }
  const sizes = new Map<string, number>();
  for (const { where, rows: placed } of groups.values()) {
    let client = control;
    try {
      if (!where.controlDatabase) client = await where.connect('pgfence-list');
      const r = await client.query<{ schema: string; bytes: string }>(
        `SELECT n.nspname AS schema, sum(pg_catalog.pg_total_relation_size(c.oid)) AS bytes
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'm') GROUP BY n.nspname`,
        [placed.map((row) => row.schema_name)],
      );
      const bySchema = new Map(r.rows.map((s) => [s.schema, Number(s.bytes)]));
      for (const row of placed) {
        const bytes = bySchema.get(row.schema_name as string);
        if (bytes !== undefined) sizes.set(row.id, bytes);
      }
    } catch (error) {
      ctx.log.warn({ placement: where.label, err: errorMessage(error) }, 'tenant list: the placement cannot be read; its tenants\' sizes are unknown');
    } finally {
      if (client !== control) await client.end();
    }
  }
  return sizes;
}

/** `suspend` and `resume`: the status change and its announcement (NOTIFY) commit together. */
export async function setStatus(ctx: LifecycleContext, id: string, wanted: 'active' | 'suspended'): Promise<ActionResult> {
  tenantSchema(ctx.config, id);
  const action = wanted === 'suspended' ? 'suspend' : 'resume';
  return withAudit(ctx, action, id, async (client) => {
    await requireControl(ctx, client);
    const result = await inTransaction(client, async () => {
      const row = await tenantRow(ctx, client, id, true);
      if (row === undefined) throw refused(`unknown tenant "${id}"`);
      if (row.status === 'provisioning') throw refused(`tenant "${id}" is still being provisioned: run \`pgfence tenant create ${id}\` again to finish it`);
      const outcome: Outcome = row.status === wanted ? 'unchanged' : 'ok';
      if (outcome === 'ok') await client.query(`UPDATE ${ctx.schemaSql}.tenants SET status = $2, updated_at = now() WHERE id = $1`, [id, wanted]);
      // Announced even when unchanged: a proxy that missed the first announcement ends the sessions now.
      await notifyChange(ctx, client, id, action);
      await audit(ctx, client, { action, tenant: id, outcome, detail: { from: row.status, to: wanted } });
      return outcome;
    });
    const proxies = await listeningProxies(client);
    const done = wanted === 'suspended' ? 'suspended: new connections are refused, live sessions ended' : 'active: it is served again';
    return {
      action,
      tenant: id,
      outcome: result,
      message: `tenant "${id}" ${result === 'unchanged' ? 'was already ' : 'is now '}${done} (${proxies} listening prox${proxies === 1 ? 'y' : 'ies'} told)`,
      data: { status: wanted, listeningProxies: proxies },
    };
  });
}

export interface DropOptions {
  confirm: string | undefined;
  /** Called before anything is dropped (e.g. the dump of --dump-first); a rejection stops the drop. */
  before?: () => Promise<Record<string, unknown>>;
}

/**
 * `pgfence tenant drop ID --confirm ID`: only a suspended tenant, only the schema the template
 * gives for its id, where the tenant lives: DROP SCHEMA ... CASCADE and its role (with
 * tenancy.roleTemplate) when it can be dropped, then its row, under the lifecycle lock. On the
 * control schema's database that is one transaction; elsewhere the placement's transaction commits
 * first, then the row goes (a failure in between leaves the suspended row, and a second run
 * finishes). A tenant in a database of its own that `create` made for it (and no other tenant is
 * placed in) loses the whole database (DROP DATABASE ... WITH (FORCE)); a database the operator
 * made is kept. A tenant already gone is `unchanged`.
 */
export async function dropTenant(ctx: LifecycleContext, id: string, options: DropOptions): Promise<ActionResult> {
  const schema = tenantSchema(ctx.config, id);
  return withAudit(ctx, 'drop', id, async (client) => {
    if (options.confirm !== id) throw refused(`drop needs --confirm ${id} (the tenant id, repeated)`);
    await requireControl(ctx, client);
    const first = await tenantRow(ctx, client, id);
    if (first === undefined) {
      const left = schema === null ? [] : (await client.query('SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1', [schema])).rows;
      if (left.length > 0) throw refused(`tenant "${id}" is not registered but the schema "${schema}" exists: pgfence drops only the tenants it registered`);
      await audit(ctx, client, { action: 'drop', tenant: id, outcome: 'unchanged' });
      return { action: 'drop', tenant: id, outcome: 'unchanged', message: `tenant "${id}" does not exist (already dropped?)` };
    }
    const checkRow = (row: TenantRow): void => {
      if (row.status !== 'suspended') throw refused(`tenant "${id}" is ${row.status}: suspend it first (\`pgfence tenant suspend ${id}\`)`);
      registeredSchema(ctx.config, id, row.schema_name);
      if (row.placement !== first.placement) throw refused(`tenant "${id}" was moved meanwhile (now on ${placementOfRow(ctx, row.placement)}): run drop again`);
    };
    checkRow(first);
    const where = tenantPlacement(ctx, first.placement);
    const before = options.before === undefined ? {} : await options.before();
    const key = lockKeySql(ctx.control.schema);
    return inTransaction(client, async () => {
      await client.query(`SELECT pg_catalog.pg_advisory_xact_lock(${key.sql})`, key.params);
      const row = await tenantRow(ctx, client, id, true);
      if (row === undefined) throw refused(`tenant "${id}" was dropped meanwhile`);
      checkRow(row);
      const role = roleForTenant(ctx.config.tenancy, id);
      const removed = where.controlDatabase ? await dropHere(client, schema, role) : await dropAt(ctx, client, where, id, schema, role);
      await client.query(`DELETE FROM ${ctx.schemaSql}.tenants WHERE id = $1`, [id]);
      await notifyChange(ctx, client, id, 'drop');
      const detail = { schema, placement: where.label, role, ...removed, ...before };
      await audit(ctx, client, { action: 'drop', tenant: id, outcome: 'ok', detail });
      const what =
        removed.database === 'dropped'
          ? ` (database "${where.placement.database}" on ${where.placement.target}, which create made for it, and everything in it)`
          : schema === null
            ? ''
            : ` (schema "${schema}" and everything in it${where.controlDatabase ? '' : ` on ${where.label}`}${typeof removed.database === 'string' && removed.database.startsWith('kept') ? `; database ${removed.database}` : ''})`;
      return {
        action: 'drop',
        tenant: id,
        outcome: 'ok',
        message: `tenant "${id}" dropped${what}${typeof removed.roleDropped === 'string' ? `; role "${role}" ${removed.roleDropped}` : ''}`,
        data: detail,
      };
    });
  });
}

interface Removed {
  roleDropped: boolean | string;
  /** Database per tenant: `dropped`, `gone` (already), or `kept: why`. */
  database?: string;
}

/** On the control schema's database, in its transaction. */
async function dropHere(client: pg.Client, schema: string | null, role: string | null): Promise<Removed> {
  if (schema !== null) await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  return { roleDropped: await dropTenantRole(client, role) };
}

/** Where the tenant lives, committed there before the control transaction commits. */
async function dropAt(ctx: LifecycleContext, control: pg.Client, where: TenantPlacement, id: string, schema: string | null, role: string | null): Promise<Removed> {
  const fate = await tenantDatabaseFate(ctx, control, where, id);
  if (fate.fate === 'drop' || fate.fate === 'gone') {
    if (fate.fate === 'drop') await dropTenantDatabase(ctx, where);
    const target = await connectToTarget(ctx, where);
    try {
      return { roleDropped: await inTransaction(target, () => dropTenantRole(target, role)), database: fate.fate === 'drop' ? 'dropped' : 'gone' };
    } finally {
      await target.end();
    }
  }
  const kept = where.placement.database === null ? {} : { database: `kept: ${fate.why}` };
  const client = await where.connect();
  try {
    return await inTransaction(client, async () => ({ ...(await dropHere(client, schema, role)), ...kept }));
  } finally {
    await client.end();
  }
}

/** The tenant's role (tenancy.roleTemplate), in the current transaction; kept (and why) when it cannot go. */
async function dropTenantRole(client: pg.Client, role: string | null): Promise<boolean | string> {
  if (role === null) return false;
  await client.query('SAVEPOINT drop_role');
  try {
    const r = quoteIdent(role);
    await client.query(`DO $pgfence$ BEGIN IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${quoteLiteral(role)}) THEN EXECUTE 'DROP OWNED BY ${r.replaceAll("'", "''")}'; EXECUTE 'DROP ROLE ${r.replaceAll("'", "''")}'; END IF; END $pgfence$`);
    await client.query('RELEASE SAVEPOINT drop_role');
    return true;
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT drop_role');
    return `kept: ${errorMessage(error)}`;
  }
}

export { tenantRow, requireControl, withAudit, placementOfRow };
