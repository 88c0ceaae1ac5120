import type { Placement } from './placement.js';
import { placementLabel } from './placement.js';

export type PlacementProblem = 'unknown_target' | 'target_unreachable' | 'too_many_databases';

/**
 * 08004 (server rejected establishment) when the tenant is placed on a target this pgfence does
 * not have: an operator's configuration or registry error, no fallback to the default target.
 * 08001 (unable to establish) when its target cannot be reached: only its tenants are refused.
 * 53300 (too many connections) when its target already holds pool.maxDatabases busy databases.
 */
const SQLSTATE = {
  unknown_target: '08004',
  target_unreachable: '08001',
  too_many_databases: '53300',
} as const satisfies Record<PlacementProblem, string>;

/** A tenant pgfence knows but cannot serve where the registry or configuration places it. */
export class PlacementRefused extends Error {
  readonly sqlstate: string;

  constructor(
    readonly problem: PlacementProblem,
    readonly tenantId: string,
    readonly placement: Placement,
    options?: { cause?: unknown },
  ) {
    super(describe(problem, tenantId, placement), options);
    this.name = 'PlacementRefused';
    this.sqlstate = SQLSTATE[problem];
  }

  /** What the client is told besides the message. */
  get detail(): string {
    switch (this.problem) {
      case 'unknown_target':
        return 'The target must be `default` or a key of `backends` in the configuration; fix the placement in the registry or the configuration.';
      case 'target_unreachable':
        return 'Other tenants are not affected; retry once the server is back.';
      case 'too_many_databases':
        return 'Raise pool.maxDatabases (or the target\'s), or retry later.';
    }
  }
}

/** Ids and names come from tokens and registries: shown JSON-quoted and cut short. */
const shown = (text: string): string => JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}...` : text);

function describe(problem: PlacementProblem, tenantId: string, placement: Placement): string {
  const tenant = shown(tenantId);
  const where = shown(placementLabel(placement));
  switch (problem) {
    case 'unknown_target':
      return `pgfence: tenant ${tenant} is placed on the unknown backend target ${shown(placement.target)}`;
    case 'target_unreachable':
      return `pgfence: the backend target ${where} of tenant ${tenant} cannot be reached`;
    case 'too_many_databases':
      return `pgfence: too many tenant databases are open on backend target ${shown(placement.target)} to open ${where}`;
  }
}
