import type { TenancyConfig } from '../config/schema.js';
import { TenantRefused } from './errors.js';

export const NAME_PATTERN = /^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$/;

/** The schema of a tenant from the template; null in row mode, where tenants share tables. */
export function schemaForTenant(tenancy: TenancyConfig, tenantId: string): string | null {
  if (!NAME_PATTERN.test(tenantId)) throw new TenantRefused('invalid_tenant_id', tenantId);
  if (tenancy.mode === 'row') return null;
  const schema = tenancy.schemaTemplate.replaceAll('{tenant}', tenantId);
  if (!NAME_PATTERN.test(schema)) throw new TenantRefused('invalid_tenant_id', tenantId);
  return schema;
}

/** Postgres identifier quoting. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * A string literal that reads the same whatever standard_conforming_strings says: the E'' form
 * with backslashes and quotes escaped. NUL cannot be sent in a query at all.
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('a string literal cannot contain NUL');
  return `E'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}
