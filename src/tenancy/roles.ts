import type { PolicyConfig, TenancyConfig } from '../config/schema.js';
import { quoteIdent, quoteLiteral, roleForTenant, schemaForTenant } from './names.js';

/**
 * The SQL recipe behind `pgfence roles`: for each tenant, the role that tenancy.roleTemplate
 * names and the pin switches to (SET ROLE), with exactly the privileges a tenant should have,
 * so that the database itself refuses what the guard might miss:
 *
 * - a NOLOGIN, non-superuser role that does not bypass RLS, granted to the pool's backend user
 *   (SET ROLE needs that membership);
 * - its own schema: USAGE and CREATE, ALL on the tables, sequences and routines there, and
 *   default privileges so objects the pool's user creates there later are covered too;
 * - each shared schema: USAGE (never CREATE); read-only ones (policy.readOnlySchemas, or the
 *   tenant's override in policy.tenants) SELECT on the tables only; the others the privileges of
 *   ordinary shared data: SELECT, INSERT, UPDATE, DELETE on the tables, USAGE and SELECT on the
 *   sequences (for serial columns), again with default privileges for later objects.
 *
 * Every statement is idempotent and converges (what a schema no longer allows is revoked), so
 * the recipe can be run again after adding tenants, tables or read-only schemas. Nothing is
 * granted on other tenants' schemas: a schema created with CREATE SCHEMA gives PUBLIC nothing.
 */

export interface RoleRecipeInput {
  tenancy: TenancyConfig;
  policy: Pick<PolicyConfig, 'readOnlySchemas' | 'tenants'>;
  /** The backend user pgfence logs in as: member of every tenant role, owner of future objects. */
  poolUser: string;
  tenantIds: readonly string[];
}

export interface RecipeSection {
  /** One line saying what the statements are for (printed as an SQL comment). */
  title: string;
  statements: string[];
}

export interface RoleRecipe {
  sections: RecipeSection[];
  /** Advice printed as comments and never run by applyRoleRecipe: it changes more than pgfence's roles. */
  recommendations: string[];
  /** Header comment lines. */
  header: string[];
}

/** Privileges on a table that are neither read nor ordinary writes: never granted to a tenant on shared data. */
const TABLE_EXTRAS = 'TRUNCATE, REFERENCES, TRIGGER';
const TABLE_WRITES = 'INSERT, UPDATE, DELETE';
/** Dollar-quote tag of the DO blocks; names match NAME_PATTERN, so they never contain `$`. */
const TAG = '$pgfence$';

export class RoleRecipeError extends Error {}

/** The recipe for these tenants; throws RoleRecipeError without tenancy.roleTemplate or for an unusable id. */
export function roleRecipe(input: RoleRecipeInput): RoleRecipe {
  const { tenancy, policy, poolUser } = input;
  if (tenancy.roleTemplate === undefined) throw new RoleRecipeError('tenancy.roleTemplate is not set: there are no tenant roles to create');
  const tenantIds = [...new Set(input.tenantIds)];
  if (tenantIds.length === 0) throw new RoleRecipeError('no tenants to create roles for');
  const pool = quoteIdent(poolUser);
  const sections: RecipeSection[] = [];
  for (const id of tenantIds) {
    const role = nameOrThrow(() => roleForTenant(tenancy, id), id) as string;
    const schema = nameOrThrow(() => schemaForTenant(tenancy, id), id);
    const r = quoteIdent(role);
    const readOnly = new Set(policy.tenants[id]?.readOnlySchemas ?? policy.readOnlySchemas);
    const statements = [createRole(role), `GRANT ${r} TO ${pool}`];
    if (schema !== null) statements.push(...ownSchema(quoteIdent(schema), r, pool));
    for (const shared of tenancy.sharedSchemas) statements.push(...sharedSchema(quoteIdent(shared), r, pool, readOnly.has(shared)));
    const access = tenancy.sharedSchemas.map((s) => `${s} (${readOnly.has(s) ? 'read-only' : 'read-write'})`).join(', ');
    sections.push({
      title: `tenant "${id}": role "${role}"${schema === null ? '' : `, own schema "${schema}"`}; shared: ${access || 'none'}`,
      statements,
    });
  }
  return {
    header: [
      `Tenant roles for tenancy.roleTemplate "${tenancy.roleTemplate}": the pin runs SET ROLE to them.`,
      `Run as the pool's backend user "${poolUser}" (a superuser, or a CREATEROLE role that owns the tenant`,
      'and shared schemas), e.g. with `pgfence roles --config FILE --apply`. Idempotent: run it again after',
      'adding tenants, tables or read-only schemas.',
    ],
    sections,
    recommendations: [
      'Before Postgres 15 every role may create objects in public; tenants should not:',
      'REVOKE CREATE ON SCHEMA public FROM PUBLIC;',
      'Privileges granted to PUBLIC reach every tenant role too: grant shared data to the tenant roles instead.',
    ],
  };
}

function nameOrThrow(name: () => string | null, id: string): string | null {
  try {
    return name();
  } catch {
    throw new RoleRecipeError(`tenant id "${id}" does not give valid schema and role names (^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$, no pg_ prefix)`);
  }
}

/** CREATE ROLE IF NOT EXISTS, which Postgres lacks; an existing role that could escape the fence is refused. */
function createRole(role: string): string {
  const name = quoteLiteral(role);
  return [
    `DO ${TAG}`,
    'BEGIN',
    `  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${name}) THEN`,
    `    CREATE ROLE ${quoteIdent(role)} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;`,
    `  ELSIF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = ${name} AND (rolsuper OR rolbypassrls)) THEN`,
    `    RAISE EXCEPTION 'role % is a superuser or bypasses row level security: it cannot fence a tenant', ${name};`,
    '  END IF;',
    'END',
    TAG,
  ].join('\n');
}

function ownSchema(s: string, r: string, pool: string): string[] {
  const defaults = `ALTER DEFAULT PRIVILEGES FOR ROLE ${pool} IN SCHEMA ${s}`;
  return [
    `GRANT USAGE, CREATE ON SCHEMA ${s} TO ${r}`,
    `GRANT ALL ON ALL TABLES IN SCHEMA ${s} TO ${r}`,
    `GRANT ALL ON ALL SEQUENCES IN SCHEMA ${s} TO ${r}`,
    `GRANT ALL ON ALL ROUTINES IN SCHEMA ${s} TO ${r}`,
    `${defaults} GRANT ALL ON TABLES TO ${r}`,
    `${defaults} GRANT ALL ON SEQUENCES TO ${r}`,
    `${defaults} GRANT ALL ON FUNCTIONS TO ${r}`,
  ];
}

function sharedSchema(s: string, r: string, pool: string, readOnly: boolean): string[] {
  const defaults = `ALTER DEFAULT PRIVILEGES FOR ROLE ${pool} IN SCHEMA ${s}`;
  const common = [`GRANT USAGE ON SCHEMA ${s} TO ${r}`, `REVOKE CREATE ON SCHEMA ${s} FROM ${r}`];
  if (readOnly) {
    return [
      ...common,
      `GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO ${r}`,
      `REVOKE ${TABLE_WRITES}, ${TABLE_EXTRAS} ON ALL TABLES IN SCHEMA ${s} FROM ${r}`,
      `REVOKE USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA ${s} FROM ${r}`,
      `${defaults} GRANT SELECT ON TABLES TO ${r}`,
      `${defaults} REVOKE ${TABLE_WRITES}, ${TABLE_EXTRAS} ON TABLES FROM ${r}`,
      `${defaults} REVOKE USAGE, UPDATE ON SEQUENCES FROM ${r}`,
    ];
  }
  return [
    ...common,
    `GRANT SELECT, ${TABLE_WRITES} ON ALL TABLES IN SCHEMA ${s} TO ${r}`,
    `REVOKE ${TABLE_EXTRAS} ON ALL TABLES IN SCHEMA ${s} FROM ${r}`,
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${s} TO ${r}`,
    `${defaults} GRANT SELECT, ${TABLE_WRITES} ON TABLES TO ${r}`,
    `${defaults} REVOKE ${TABLE_EXTRAS} ON TABLES FROM ${r}`,
    `${defaults} GRANT USAGE, SELECT ON SEQUENCES TO ${r}`,
  ];
}

/** Every statement, in order, without the transaction around them. */
export function recipeStatements(recipe: RoleRecipe): string[] {
  return recipe.sections.flatMap((section) => section.statements);
}

/** The recipe as an SQL script for psql: one transaction, comments saying what each part is for. */
export function formatRoleRecipe(recipe: RoleRecipe): string {
  const lines = recipe.header.map((line) => `-- ${line}`);
  lines.push('BEGIN;');
  for (const section of recipe.sections) {
    lines.push('', `-- ${section.title}`);
    for (const statement of section.statements) lines.push(`${statement};`);
  }
  lines.push('', 'COMMIT;', '', '-- Recommended, not run by --apply:');
  for (const line of recipe.recommendations) lines.push(`-- ${line}`);
  return lines.join('\n') + '\n';
}

/** What applyRoleRecipe needs of a connection: node-postgres's Client fits. */
export interface Queryable {
  query(sql: string): Promise<unknown>;
}

/**
 * Runs the recipe in one transaction on a connection of the pool's backend user: all of it or
 * nothing. A failure rolls back and names the statement that failed.
 */
export async function applyRoleRecipe(client: Queryable, recipe: RoleRecipe): Promise<number> {
  const statements = recipeStatements(recipe);
  await client.query('BEGIN');
  for (const statement of statements) {
    try {
      await client.query(statement);
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      const message = error instanceof Error ? error.message : String(error);
      throw new RoleRecipeError(`${message} (in: ${statement.split('\n')[0]}); nothing was applied`);
    }
  }
  await client.query('COMMIT');
  return statements.length;
}
