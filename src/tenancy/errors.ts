export type RefusalReason = 'unknown_tenant' | 'suspended_tenant' | 'invalid_tenant_id' | 'registry_unavailable';

const SQLSTATE: Record<RefusalReason, '28000' | '08006'> = {
  unknown_tenant: '28000',
  suspended_tenant: '28000',
  invalid_tenant_id: '28000',
  registry_unavailable: '08006',
};

/** A tenant pgfence will not serve: refused at connect, loudly; there is no default tenant. */
export class TenantRefused extends Error {
  readonly sqlstate: '28000' | '08006';

  constructor(
    readonly reason: RefusalReason,
    tenantId: string,
  ) {
    super(TenantRefused.describe(reason, tenantId));
    this.name = 'TenantRefused';
    this.sqlstate = SQLSTATE[reason];
  }

  private static describe(reason: RefusalReason, tenantId: string): string {
    const shown = JSON.stringify(tenantId.slice(0, 64));
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
}
