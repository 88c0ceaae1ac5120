import { TenantRefused } from '../tenancy/errors.js';
import { NAME_PATTERN } from '../tenancy/names.js';

/** The target every tenant without a placement lives on: the `backend` key of the configuration. */
export const DEFAULT_TARGET = 'default';

/** Postgres's longest identifier (database names included), in bytes. */
const NAMEDATALEN = 63;

/**
 * Where a tenant lives: a backend target by name, and the tenant's own database there (database
 * per tenant) or null for the target's database (schemas side by side). A target holding one
 * tenant alone is server per tenant; nothing else tells it apart.
 */
export interface Placement {
  target: string;
  database: string | null;
}

/** What the registry says of where a tenant lives, before its target is checked against the configuration. */
export interface RegistryPlacement {
  placement: Placement | undefined;
  /** A `schema` column: the tenant's schema there (replaces tenancy.schemaTemplate). */
  schema: string | undefined;
}

/**
 * The placement columns of a registry row, all optional: `target`, `database` and `schema` (the
 * operator's registry query), or `placement` (the control schema's column: `TARGET` or
 * `TARGET/DATABASE`). NULL or absent means the default. A value that cannot be a target,
 * database or schema name refuses the tenant as a registry failure (never a fallback to default).
 */
export function placementFromRow(row: Record<string, unknown>, tenantId: string): RegistryPlacement {
  const bad = (what: string): TenantRefused =>
    new TenantRefused('registry_unavailable', tenantId, { cause: new Error(`the registry's ${what} is not a valid name`) });
  let target = text(row['target'], () => bad('target'));
  let database = text(row['database'], () => bad('database'));
  const combined = text(row['placement'], () => bad('placement'));
  if (combined !== undefined) {
    const slash = combined.indexOf('/');
    target ??= slash < 0 ? combined : combined.slice(0, slash);
    if (slash >= 0) database ??= combined.slice(slash + 1);
  }
  if (database !== undefined && (database.length === 0 || Buffer.byteLength(database) > NAMEDATALEN || database.includes('\0'))) throw bad('database');
  const schema = text(row['schema'], () => bad('schema'));
  if (schema !== undefined && !NAME_PATTERN.test(schema)) throw bad('schema');
  const placement = target === undefined && database === undefined ? undefined : { target: target ?? DEFAULT_TARGET, database: database ?? null };
  return { placement, schema };
}

function text(value: unknown, bad: () => Error): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw bad();
  return value;
}

/** How a placement is named in logs, SHOW output and errors: `eu-2` or `eu-2/acme_db`. */
export function placementLabel(placement: Placement): string {
  return placement.database === null ? placement.target : `${placement.target}/${placement.database}`;
}
