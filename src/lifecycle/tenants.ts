import type pg from 'pg';
import { CONTROL_EVENTS_APPLICATION } from '../tenancy/control-events.js';
import { controlChannel } from '../tenancy/control.js';
import { quoteIdent, quoteLiteral, roleForTenant } from '../tenancy/names.js';
import { recipeStatements, roleRecipe } from '../tenancy/roles.js';
import { controlSchemaStatements, lockKeySql, tenantVersionTable } from './control-schema.js';
import { audit, errorMessage, inTransaction, type LifecycleContext, LifecycleError, type Outcome, refused } from './context.js';
import { applySharedChain, applyTenantChain, latestVersion, type MigrationSet } from './migrations.js';
import { registeredSchema, tenantSchema } from './tenant-names.js';

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
 * `pgfence tenant create ID`: in one transaction, under the lifecycle lock, registers the tenant,
 * creates its schema (granted to the service role) and version table, its role (with
 * tenancy.roleTemplate), applies the shared chain if behind and every tenant migration, then marks
 * it active. A failure rolls everything back: no half-made tenant is left. An existing tenant is
 * left as it is (outcome unchanged).
 */
export async function createTenant(ctx: LifecycleContext, id: string, options: CreateOptions): Promise<ActionResult> {
  const schema = tenantSchema(ctx.config, id);
  return withAudit(ctx, 'create', id, async (client) => {
    await requireControl(ctx, client);
    const key = lockKeySql(ctx.control.schema);
    return inTransaction(client, async () => {
      await client.query(`SELECT pg_catalog.pg_advisory_xact_lock(${key.sql})`, key.params);
      const existing = await tenantRow(ctx, client, id, true);
      if (existing !== undefined && existing.status !== 'provisioning') {
        registeredSchema(ctx.config, id, existing.schema_name);
        await audit(ctx, client, { action: 'create', tenant: id, outcome: 'unchanged', detail: { status: existing.status } });
        return { action: 'create', tenant: id, outcome: 'unchanged', message: `tenant "${id}" exists already (${existing.status}, version ${existing.version ?? 'none'})`, data: { status: existing.status, schema, version: existing.version } };
      }
      let adopted = false;
      let grants = true;
      if (schema !== null) {
        const found = await client.query<{ owned: boolean }>('SELECT nspowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user) AS owned FROM pg_catalog.pg_namespace WHERE nspname = $1', [schema]);
        if (found.rows.length > 0 && existing === undefined) {
          if (!options.adopt) throw refused(`the schema "${schema}" exists but tenant "${id}" is not registered: pass --adopt to register that schema as the tenant's`);
          adopted = true;
          grants = found.rows[0]?.owned === true;
        }
      }
      await client.query(
        `INSERT INTO ${ctx.schemaSql}.tenants (id, status, schema_name, placement, statement_timeout_ms) VALUES ($1, 'provisioning', $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET schema_name = EXCLUDED.schema_name, placement = EXCLUDED.placement, statement_timeout_ms = EXCLUDED.statement_timeout_ms, updated_at = now()`,
        [id, schema, options.placement ?? null, options.statementTimeoutMs ?? null],
      );
      if (schema !== null) {
        const s = quoteIdent(schema);
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
        if (grants) for (const statement of serviceGrants(ctx, schema)) await client.query(statement);
        await client.query(tenantVersionTable(schema));
      }
      const role = roleForTenant(ctx.config.tenancy, id);
      if (role !== null) for (const statement of roleStatements(ctx, id, schema)) await client.query(statement);
      const shared = await applySharedChain(ctx, client, options.migrations, false);
      const applied = schema === null ? [] : await applyTenantChain(ctx, client, { id, schema }, options.migrations, false);
      await client.query(`UPDATE ${ctx.schemaSql}.tenants SET status = 'active', updated_at = now() WHERE id = $1`, [id]);
      await notifyChange(ctx, client, id, 'create');
      const detail = { schema, role, adopted, applied, sharedApplied: shared };
      await audit(ctx, client, { action: 'create', tenant: id, outcome: 'ok', detail });
      const version = applied.at(-1) ?? latestVersion(options.migrations);
      return {
        action: 'create',
        tenant: id,
        outcome: 'ok',
        message: `tenant "${id}" ${adopted ? 'adopted' : 'created'}${schema === null ? '' : ` in schema "${schema}"`}${role === null ? '' : ` with role "${role}"`}, ${applied.length} migration(s) applied, active`,
        data: { ...detail, version },
      };
    });
  });
}

/** The service role (backend.user) serves the tenant: the schema, and what the provisioner creates in it later (the migrations). */
function serviceGrants(ctx: LifecycleContext, schema: string): string[] {
  if (ctx.serviceRole === ctx.provisioner.user) return [];
  const s = quoteIdent(schema);
  const r = quoteIdent(ctx.serviceRole);
  return [
    `GRANT USAGE, CREATE ON SCHEMA ${s} TO ${r}`,
    `GRANT ALL ON ALL TABLES IN SCHEMA ${s} TO ${r}`,
    `GRANT ALL ON ALL SEQUENCES IN SCHEMA ${s} TO ${r}`,
    `GRANT ALL ON ALL ROUTINES IN SCHEMA ${s} TO ${r}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT ALL ON TABLES TO ${r}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT ALL ON SEQUENCES TO ${r}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT ALL ON FUNCTIONS TO ${r}`,
  ];
}

/**
 * With tenancy.roleTemplate: `pgfence roles`' recipe for this tenant (the provisioner must be a
 * member of the service role for its default privileges), plus the same rights on what the
 * provisioner itself creates in the schema (the migrations).
 */
function roleStatements(ctx: LifecycleContext, id: string, schema: string | null): string[] {
  const recipe = roleRecipe({ tenancy: ctx.config.tenancy, policy: ctx.config.policy, poolUser: ctx.serviceRole, tenantIds: [id] });
  const statements = recipeStatements(recipe);
  const role = roleForTenant(ctx.config.tenancy, id);
  if (schema !== null && role !== null) {
    const s = quoteIdent(schema);
    const r = quoteIdent(role);
    statements.push(
      `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT ALL ON TABLES TO ${r}`,
      `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT ALL ON SEQUENCES TO ${r}`,
      `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT ALL ON FUNCTIONS TO ${r}`,
    );
  }
  return statements;
}

export interface ListedTenant extends TenantRow {
  size_bytes: number | null;
  behind: boolean;
}

/** `pgfence tenant list`: every tenant with its status, version (behind or not) and size on disk. */
export async function listTenants(ctx: LifecycleContext, migrations: MigrationSet): Promise<ListedTenant[]> {
  const client = await ctx.connect();
  try {
    await requireControl(ctx, client);
    const r = await client.query<TenantRow & { size_bytes: string | null }>(
      `SELECT t.*, (SELECT sum(pg_catalog.pg_total_relation_size(c.oid)) FROM pg_catalog.pg_class c
                     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = t.schema_name AND c.relkind IN ('r', 'm')) AS size_bytes
         FROM ${ctx.schemaSql}.tenants t ORDER BY t.id`,
    );
    const latest = latestVersion(migrations);
    const listed = r.rows.map((row) => ({
      ...row,
      size_bytes: row.size_bytes === null ? null : Number(row.size_bytes),
      behind: latest !== null && row.schema_name !== null && (row.version === null || row.version < latest),
    }));
    ctx.log.info({ action: 'list', tenants: listed.length }, 'tenant lifecycle: list');
    return listed;
  } finally {
    await client.end();
  }
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
 * gives for its id; DROP SCHEMA ... CASCADE, its role (with tenancy.roleTemplate) when it can be
 * dropped, and its row, in one transaction. A tenant already gone is `unchanged`.
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
    };
    checkRow(first);
    const before = options.before === undefined ? {} : await options.before();
    const key = lockKeySql(ctx.control.schema);
    return inTransaction(client, async () => {
      await client.query(`SELECT pg_catalog.pg_advisory_xact_lock(${key.sql})`, key.params);
      const row = await tenantRow(ctx, client, id, true);
      if (row === undefined) throw refused(`tenant "${id}" was dropped meanwhile`);
      checkRow(row);
      if (schema !== null) await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
      const role = roleForTenant(ctx.config.tenancy, id);
      let roleDropped: boolean | string = false;
      if (role !== null) {
        await client.query('SAVEPOINT drop_role');
        try {
          const r = quoteIdent(role);
          await client.query(`DO $pgfence$ BEGIN IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${quoteLiteral(role)}) THEN EXECUTE 'DROP OWNED BY ${r.replaceAll("'", "''")}'; EXECUTE 'DROP ROLE ${r.replaceAll("'", "''")}'; END IF; END $pgfence$`);
          await client.query('RELEASE SAVEPOINT drop_role');
          roleDropped = true;
        } catch (error) {
          await client.query('ROLLBACK TO SAVEPOINT drop_role');
          roleDropped = `kept: ${errorMessage(error)}`;
        }
      }
      await client.query(`DELETE FROM ${ctx.schemaSql}.tenants WHERE id = $1`, [id]);
      await notifyChange(ctx, client, id, 'drop');
      const detail = { schema, role, roleDropped, ...before };
      await audit(ctx, client, { action: 'drop', tenant: id, outcome: 'ok', detail });
      return {
        action: 'drop',
        tenant: id,
        outcome: 'ok',
        message: `tenant "${id}" dropped${schema === null ? '' : ` (schema "${schema}" and everything in it)`}${typeof roleDropped === 'string' ? `; role "${role}" ${roleDropped}` : ''}`,
        data: detail,
      };
    });
  });
}

export { tenantRow, requireControl, withAudit };
