import type { TenancyConfig } from '../config/schema.js';
import { TenantRefused } from './errors.js';
import type { Placement } from '../placement/placement.js';
import type { Tenant } from './resolver.js';

/** Tenant ids and schema names: ASCII letters, digits, `_` and `-`, not starting with a digit, at most 63 characters (Postgres's identifier limit). */
export const NAME_PATTERN = /^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$/;

/**
 * The schema of a tenant: the template with every {tenant} replaced; null in row mode, where
 * tenants share tables. Refuses (invalid_tenant_id) an id or a resulting name outside
 * NAME_PATTERN, e.g. an id that makes the name longer than 63 characters.
 */
export function schemaForTenant(tenancy: TenancyConfig, tenantId: string): string | null {
  if (!NAME_PATTERN.test(tenantId)) throw new TenantRefused('invalid_tenant_id', tenantId);
  if (tenancy.mode === 'row') return null;
  const schema = tenancy.schemaTemplate.replaceAll('{tenant}', tenantId);
  if (!NAME_PATTERN.test(schema)) throw new TenantRefused('invalid_tenant_id', tenantId);
  return schema;
}

/**
 * The role a tenant's backends switch to (tenancy.roleTemplate with every {tenant} replaced), or
 * null when the template is unset. Refuses (invalid_tenant_id) an id or a resulting name outside
 * NAME_PATTERN (so at most 63 bytes), or one starting with pg_, which Postgres reserves.
 */
export function roleForTenant(tenancy: TenancyConfig, tenantId: string): string | null {
  if (!NAME_PATTERN.test(tenantId)) throw new TenantRefused('invalid_tenant_id', tenantId);
  if (tenancy.roleTemplate === undefined) return null;
  const role = tenancy.roleTemplate.replaceAll('{tenant}', tenantId);
  if (!NAME_PATTERN.test(role) || role.startsWith('pg_')) throw new TenantRefused('invalid_tenant_id', tenantId);
  return role;
}

/**
 * The tenant to serve, once its status allows it: its schema, its role name checked (an invalid
 * one is refused at connect), its statement timeout (its own, else tenancy.statementTimeoutMs).
 */
export function servedTenant(
  tenancy: TenancyConfig,
  tenantId: string,
  statementTimeoutMs: number | undefined,
  where: { placement?: Placement | undefined; schema?: string | undefined } = {},
): Tenant {
  roleForTenant(tenancy, tenantId);
  const templated = schemaForTenant(tenancy, tenantId);
  const tenant: Tenant = {
    id: tenantId,
    // A placement's own schema replaces the template's (never in row mode, which has none).
    schema: templated === null ? null : (where.schema ?? templated),
    statementTimeoutMs: statementTimeoutMs ?? tenancy.statementTimeoutMs,
  };
  if (where.placement !== undefined) tenant.placement = where.placement;
  return tenant;
}

/**
 * A Postgres identifier, always quoted (so `tenant_Acme` keeps its case and `tenant_a-b` its
 * hyphen), with `"` doubled.
 */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new Error('an identifier cannot contain NUL');
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * A string literal that reads the same whatever standard_conforming_strings says: the escape
 * string form E'...', in which a backslash is always an escape, so backslashes are doubled and
 * quotes doubled. Every other character, newlines included, stands for itself. NUL cannot be
 * expressed (Postgres text cannot hold it, and a simple Query ends at it) and throws.
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('a string literal cannot contain NUL');
  return `E'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}
