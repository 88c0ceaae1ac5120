import { NAME_PATTERN, quoteIdent } from './names.js';

/**
 * The registry pgfence owns (tenancy.control) as the proxy sees it: the query that resolves a
 * tenant, and the channel on which `pgfence tenant` announces a change. The tables themselves are
 * made by `pgfence init` (src/lifecycle/control-schema.ts).
 */

/** Postgres's longest identifier, in bytes; schema names are ASCII (NAME_PATTERN). */
const NAMEDATALEN = 63;
const CHANNEL_SUFFIX = '_events';

/**
 * The registry query of the control schema: a tenant that is still being provisioned (or no
 * longer exists) has no row, so it is unknown; suspended tenants are refused as suspended.
 */
export function controlRegistryQuery(schema: string): string {
  return `SELECT status, statement_timeout_ms, placement FROM ${quoteIdent(schema)}.tenants WHERE id = $1 AND status IN ('active', 'suspended')`;
}

/**
 * The channel `pgfence tenant` notifies after a status change: `<schema>_events`. A tenant's own
 * channels are always `<tenant>.<name>` (src/frontend/channels.ts), with a dot, so no client
 * through pgfence can notify this one; anyone connected directly can, which is why the proxy
 * only takes a notification as a hint to read the registry again, never as an order.
 */
export function controlChannel(schema: string): string {
  return `${schema.slice(0, NAMEDATALEN - CHANNEL_SUFFIX.length)}${CHANNEL_SUFFIX}`;
}

const ACK_SUFFIX = '_acks';

/**
 * The channel on which each proxy acknowledges a tenant's pause for `pgfence tenant move`
 * (src/placement/tenant-pauses.ts): `<schema>_acks`, sent from its listening connection, so the
 * mover knows which proxy answered by the notifying backend's pid.
 */
export function controlAckChannel(schema: string): string {
  return `${schema.slice(0, NAMEDATALEN - ACK_SUFFIX.length)}${ACK_SUFFIX}`;
}

/** What a notification payload says: the tenant whose row changed, or null (anything else: read everything again). */
export function changedTenant(payload: string | undefined): string | null {
  if (payload === undefined) return null;
  try {
    const parsed = JSON.parse(payload) as unknown;
    const tenant = parsed !== null && typeof parsed === 'object' ? (parsed as { tenant?: unknown }).tenant : undefined;
    return typeof tenant === 'string' && NAME_PATTERN.test(tenant) ? tenant : null;
  } catch {
    return null;
  }
}
