import { Guard, type TenantFence } from '../../src/guard/index.js';

/** Tenant acme in schema mode: its own schema, public shared. */
export const ACME: TenantFence = { ownSchema: 'tenant_acme', sharedSchemas: ['public'], tenantGuc: 'app.current_tenant_id' };

/** Tenant globex, for verdicts that depend on whose text it is. */
export const GLOBEX: TenantFence = { ownSchema: 'tenant_globex', sharedSchemas: ['public'], tenantGuc: 'app.current_tenant_id' };

/** Row mode: no schema of its own, RLS on the tenant GUC does the fencing. */
export const ROW_MODE: TenantFence = { ownSchema: null, sharedSchemas: ['public'], tenantGuc: 'app.current_tenant_id' };

let shared: Promise<Guard> | undefined;

/** One guard per test file (the WASM module loads once per process). */
export function sharedGuard(): Promise<Guard> {
  shared ??= Guard.create({ cacheSize: 1000 });
  return shared;
}
