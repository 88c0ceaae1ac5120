import type pg from 'pg';
import { resolveBackendTarget } from '../config/load.js';
import { DEFAULT_TARGET, isDatabaseName, MAX_NAME_BYTES, type Placement, placementLabel, splitPlacementLabel } from '../placement/placement.js';
import { NAME_PATTERN } from '../tenancy/names.js';
import { type LifecycleContext, refused } from './context.js';

/** Databases no tenant may live in: CREATE DATABASE copies them. */
const RESERVED_DATABASES = new Set(['template0', 'template1']);

/**
 * Where a tenant lives, as the lifecycle commands work with it: the placement, how it is named,
 * whether it is the control schema's own database (then a change and its registry row can share
 * one transaction), the proxy's role on that target, and a connection there as the provisioner.
 */
export interface TenantPlacement {
  placement: Placement;
  /** `default`, `eu-2` or `eu-2/acme_db`: the report's name for it. */
  label: string;
  /** What the registry's `placement` column holds: NULL for the default target's own database. */
  stored: string | null;
  /** The control schema's database (target default, its database): one connection does it all. */
  controlDatabase: boolean;
  /** The proxy's role there (backend.user, or backends.NAME's user): the role granted the tenant's schema. */
  serviceRole: string;
  /** A connection as the provisioner to the tenant's target and database (ctx.connectAt). */
  connect(applicationName?: string): Promise<pg.Client>;
}

/**
 * Where a tenant lives, from the registry's `placement` column (`TARGET` or `TARGET/DATABASE`,
 * NULL for the default) or a `--placement` option: the target must be `default` or a key of
 * `backends`, the database a name Postgres takes (not template0/template1). Anything else is
 * refused, never taken for the default. `pgfence tenant create`, `migrate`, `dump`, `drop` and
 * `list` go through this; so can `move`.
 */
export function tenantPlacement(ctx: LifecycleContext, label: string | null): TenantPlacement {
  const placement = parsePlacement(label);
  const known = placement.target === DEFAULT_TARGET || ctx.config.backends?.[placement.target] !== undefined;
  if (!known) throw refused(`placement "${placementLabel(placement)}": "${placement.target}" is not a backend target (default, or a key of backends)`);
  const entry = placement.target === DEFAULT_TARGET ? undefined : ctx.config.backends?.[placement.target];
  const serviceRole = entry === undefined ? ctx.serviceRole : resolveBackendTarget(entry).user;
  const controlDatabase = placement.target === DEFAULT_TARGET && (placement.database === null || placement.database === ctx.provisioner.database);
  const canonical: Placement = controlDatabase ? { target: DEFAULT_TARGET, database: null } : placement;
  return {
    placement: canonical,
    label: placementLabel(canonical),
    stored: controlDatabase ? null : placementLabel(canonical),
    controlDatabase,
    serviceRole,
    connect: (applicationName) => ctx.connectAt(canonical, applicationName),
  };
}

function parsePlacement(label: string | null): Placement {
  if (label === null) return { target: DEFAULT_TARGET, database: null };
  const { target, database } = splitPlacementLabel(label);
  const shown = JSON.stringify(label.slice(0, 140));
  if (!NAME_PATTERN.test(target)) throw refused(`placement ${shown}: the target must be a name (^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$), as TARGET or TARGET/DATABASE`);
  if (database !== null) {
    if (!isDatabaseName(database)) throw refused(`placement ${shown}: the database must be 1 to ${MAX_NAME_BYTES} bytes`);
    if (RESERVED_DATABASES.has(database)) throw refused(`placement ${shown}: a tenant cannot live in ${database}`);
  }
  return { target, database };
}
