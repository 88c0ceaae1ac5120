import type { Config } from '../config/schema.js';
import { NAME_PATTERN, roleForTenant, schemaForTenant } from '../tenancy/names.js';
import { refused } from './context.js';

/** Schemas no tenant may ever have, whatever the template says: dropping one would break the database. */
const RESERVED_SCHEMAS = new Set(['public', 'information_schema']);

/**
 * The schema of a tenant as tenancy.schemaTemplate produces it (null in row mode), or a refusal:
 * an id outside NAME_PATTERN, a name too long, or a schema that is reserved (pg_*, public,
 * information_schema), shared (tenancy.sharedSchemas) or the control schema itself. Every
 * lifecycle command goes through this before it touches a schema.
 */
export function tenantSchema(config: Config, tenantId: string): string | null {
  const shown = JSON.stringify(tenantId.slice(0, 80));
  if (!NAME_PATTERN.test(tenantId)) throw refused(`tenant id ${shown} is not a valid tenant name (^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$)`);
  let schema: string | null;
  try {
    schema = schemaForTenant(config.tenancy, tenantId);
    roleForTenant(config.tenancy, tenantId);
  } catch {
    throw refused(`tenant id ${shown} does not give valid schema and role names under tenancy.schemaTemplate / roleTemplate`);
  }
  if (schema === null) return null;
  const lower = schema.toLowerCase();
  if (lower.startsWith('pg_') || RESERVED_SCHEMAS.has(lower) || config.tenancy.sharedSchemas.includes(schema) || schema === config.tenancy.control?.schema) {
    throw refused(`tenant id ${shown} would use the schema "${schema}", which is reserved, shared or the control schema`);
  }
  return schema;
}

/**
 * A registered tenant's schema, checked against the template: a row whose schema_name is not what
 * the template produces for its id (edited by hand, or the template changed) is refused, so a
 * lifecycle command never drops, dumps or migrates a schema it would not have created.
 */
export function registeredSchema(config: Config, tenantId: string, schemaName: string | null): string | null {
  const expected = tenantSchema(config, tenantId);
  if (schemaName !== expected) {
    throw refused(
      `tenant "${tenantId}" is registered with the schema ${JSON.stringify(schemaName)}, but tenancy.schemaTemplate gives ${JSON.stringify(expected)}: refusing to touch it`,
    );
  }
  return expected;
}
