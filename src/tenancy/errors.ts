export type RefusalReason = 'unknown_tenant' | 'suspended_tenant' | 'invalid_tenant_id' | 'registry_unavailable';

/**
 * 28000 (invalid_authorization_specification) when the token is fine but names no tenant pgfence
 * may serve; 08006 (connection_failure) when the registry could not answer, which is not the
 * tenant's fault and may pass.
 */
const SQLSTATE = {
  unknown_tenant: '28000',
  suspended_tenant: '28000',
  invalid_tenant_id: '28000',
  registry_unavailable: '08006',
} as const satisfies Record<RefusalReason, string>;

export type RefusalSqlstate = (typeof SQLSTATE)[RefusalReason];

/** Longest tenant id repeated in a message; ids come from token claims. */
const SHOWN_ID_LENGTH = 64;

/**
 * A tenant pgfence will not serve: refused at connect with a FATAL, loudly; there is no default
 * tenant. The message is meant for the client; `cause` (registry failures) is for the log only.
 */
export class TenantRefused extends Error {
  readonly sqlstate: RefusalSqlstate;

  constructor(
    readonly reason: RefusalReason,
    readonly tenantId: string,
    options?: { cause?: unknown },
  ) {
    super(describe(reason, tenantId), options);
    this.name = 'TenantRefused';
    this.sqlstate = SQLSTATE[reason];
  }
}

function describe(reason: RefusalReason, tenantId: string): string {
  // JSON quoting escapes quotes and control characters from a hostile claim.
  const shown = JSON.stringify(tenantId.length > SHOWN_ID_LENGTH ? `${tenantId.slice(0, SHOWN_ID_LENGTH)}...` : tenantId);
  switch (reason) {
    case 'unknown_tenant':
      return `pgfence: unknown tenant ${shown}`;
    case 'suspended_tenant':
      return `pgfence: tenant ${shown} is suspended`;
    case 'invalid_tenant_id':
      return `pgfence: tenant id ${shown} is not a valid tenant name`;
    case 'registry_unavailable':
      return `pgfence: the tenant registry could not be read for tenant ${shown}`;
  }
}
