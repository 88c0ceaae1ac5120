import { TenantRefused } from '../tenancy/errors.js';
import { NAME_PATTERN } from '../tenancy/names.js';

/** The target every tenant without a placement lives on: the `backend` key of the configuration. */
export const DEFAULT_TARGET = 'default';

/** Postgres's longest identifier (database names included), in bytes: NAMEDATALEN - 1. */
export const MAX_NAME_BYTES = 63;

/** A name Postgres takes for a database: 1 to 63 bytes, no NUL. */
export function isDatabaseName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= MAX_NAME_BYTES && !name.includes('\0');
}

/** `TARGET` or `TARGET/DATABASE`, split at the first slash (the label of placementLabel). */
export function splitPlacementLabel(label: string): { target: string; database: string | null } {
  const slash = label.indexOf('/');
  return slash < 0 ? { target: label, database: null } : { target: label.slice(0, slash), database: label.slice(slash + 1) };
}

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
    const split = splitPlacementLabel(combined);
    target ??= split.target;
    if (split.database !== null) database ??= split.database;
  }
  if (database !== undefined && !isDatabaseName(database)) throw bad('database');
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
