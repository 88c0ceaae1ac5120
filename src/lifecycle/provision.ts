import type pg from 'pg';
import { quoteIdent, roleForTenant } from '../tenancy/names.js';
import { recipeStatements, roleRecipe } from '../tenancy/roles.js';
import { tenantVersionTable } from './control-schema.js';
import type { LifecycleContext } from './context.js';
import { applySharedChain, applyTenantChain, type MigrationSet, tenantVersion } from './migrations.js';

export interface ProvisionInput {
  id: string;
  /** Null in row mode (no schema of its own). */
  schema: string | null;
  /** The proxy's role on the tenant's target, granted the schema. */
  serviceRole: string;
  /** False for an adopted schema the provisioner does not own (it cannot grant on it). */
  grants: boolean;
}

export interface Provisioned {
  role: string | null;
  applied: string[];
  sharedApplied: string[];
  /** The newest migration in the schema's own version table. */
  version: string | null;
}

/**
 * Everything of a tenant that lives where the tenant lives, in the current transaction of `client`
 * (a connection as the provisioner to the tenant's database): its schema, granted to the service
 * role of that target, and version table; its role (with tenancy.roleTemplate, granted to that
 * service role); the shared chain of that database if behind; every tenant migration.
 */
export async function provisionTenant(ctx: LifecycleContext, client: pg.Client, input: ProvisionInput, migrations: MigrationSet): Promise<Provisioned> {
  const { id, schema } = input;
  const me = await client.query<{ current_user: string }>('SELECT current_user');
  const provisioner = me.rows[0]?.current_user;
  if (schema !== null) {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    if (input.grants && input.serviceRole !== provisioner) for (const statement of serviceGrants(schema, input.serviceRole)) await client.query(statement);
    await client.query(tenantVersionTable(schema));
  }
  const role = roleForTenant(ctx.config.tenancy, id);
  if (role !== null) for (const statement of roleStatements(ctx, id, schema, input.serviceRole)) await client.query(statement);
  const sharedApplied = await applySharedChain(ctx, client, migrations, false);
  const applied = schema === null ? [] : await applyTenantChain(ctx, client, { id, schema }, migrations, false);
  const version = schema === null ? null : await tenantVersion(client, schema);
  return { role, applied, sharedApplied, version };
}

/**
 * What `create` grants on a tenant's schema, for a schema that came otherwise (the restore of
 * `pgfence tenant move`, made without the source's privileges): to the service role of the
 * tenant's target, and with tenancy.roleTemplate the tenant's role (made if missing). In the
 * current transaction of `client`, a connection as the provisioner there.
 */
export async function grantTenantSchema(ctx: LifecycleContext, client: pg.Client, id: string, schema: string, serviceRole: string): Promise<void> {
  const me = await client.query<{ current_user: string }>('SELECT current_user');
  if (serviceRole !== me.rows[0]?.current_user) for (const statement of serviceGrants(schema, serviceRole)) await client.query(statement);
  if (roleForTenant(ctx.config.tenancy, id) !== null) for (const statement of roleStatements(ctx, id, schema, serviceRole)) await client.query(statement);
}

/** The service role serves the tenant: the schema, and what the provisioner creates in it later (the migrations). */
function serviceGrants(schema: string, serviceRole: string): string[] {
  const s = quoteIdent(schema);
  const r = quoteIdent(serviceRole);
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
function roleStatements(ctx: LifecycleContext, id: string, schema: string | null, serviceRole: string): string[] {
  const recipe = roleRecipe({ tenancy: ctx.config.tenancy, policy: ctx.config.policy, poolUser: serviceRole, tenantIds: [id] });
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
