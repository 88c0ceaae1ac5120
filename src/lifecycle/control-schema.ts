import { quoteIdent, quoteLiteral } from '../tenancy/names.js';

/**
 * The control schema `pgfence init` creates (tenancy.control.schema, `pgfence` by default):
 *
 * - tenants: one row per tenant: id, status (provisioning, active, suspended), its schema, a
 *   placement label, its statement timeout (the proxy applies it), the last tenant migration
 *   applied, created/updated timestamps;
 * - audit: one row per lifecycle action: when, who (the database role and the OS user), what,
 *   which tenant, the outcome and details;
 * - shared_migrations: the shared chain (migrations/shared/*.sql) applied once to the shared schemas
 *   of this database. Every other database that holds tenants (another target's, a tenant's own)
 *   keeps its own: a schema of the same name there holding only that table, so the bookkeeping
 *   commits with the change it records.
 *
 * Every tenant schema holds its own version table, pgfence_migrations (name, checksum, applied_at),
 * so a dump of the schema carries its version with it.
 *
 * Every statement is idempotent; the service role (backend.user) is granted what the proxy reads.
 */

export const TENANT_VERSION_TABLE = 'pgfence_migrations';

export function controlSchemaStatements(schema: string, serviceRole: string, provisioner: string): string[] {
  const s = quoteIdent(schema);
  const statements = [
    `CREATE SCHEMA IF NOT EXISTS ${s}`,
    `CREATE TABLE IF NOT EXISTS ${s}.tenants (
  id text PRIMARY KEY CHECK (id ~ '^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$'),
  status text NOT NULL CHECK (status IN ('provisioning', 'active', 'suspended')),
  schema_name text,
  placement text,
  statement_timeout_ms integer CHECK (statement_timeout_ms >= 0),
  version text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
)`,
    `COMMENT ON TABLE ${s}.tenants IS ${quoteLiteral('pgfence: tenants served by the proxy (status active); managed with pgfence tenant')}`,
    `CREATE TABLE IF NOT EXISTS ${s}.audit (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  db_user text NOT NULL DEFAULT current_user,
  os_user text,
  action text NOT NULL,
  tenant_id text,
  outcome text NOT NULL CHECK (outcome IN ('ok', 'unchanged', 'failed', 'refused')),
  detail jsonb NOT NULL DEFAULT '{}'::jsonb
)`,
    `CREATE INDEX IF NOT EXISTS audit_tenant_at ON ${s}.audit (tenant_id, at)`,
    sharedMigrationsTable(schema),
  ];
  if (serviceRole !== provisioner) {
    statements.push(`GRANT USAGE ON SCHEMA ${s} TO ${quoteIdent(serviceRole)}`, `GRANT SELECT ON ${s}.tenants TO ${quoteIdent(serviceRole)}`);
  }
  return statements;
}

/** The shared chain's bookkeeping, in the control schema and in a schema of that name in every other database holding tenants. */
export function sharedMigrationsTable(schema: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteIdent(schema)}.shared_migrations (
  name text PRIMARY KEY,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;
}

/** The per-tenant version table, created with the tenant's schema. */
export function tenantVersionTable(schema: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteIdent(schema)}.${TENANT_VERSION_TABLE} (
  name text PRIMARY KEY,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;
}

/**
 * The advisory lock key of lifecycle runs on this control schema: `migrate` holds it for the whole
 * run, `create` for its transaction, so a tenant created during a run cannot miss a migration.
 */
export function lockKeySql(schema: string): { sql: string; params: [string] } {
  return { sql: 'hashtextextended($1, 0)', params: [`pgfence.lifecycle:${schema}`] };
}
