export { TenantRefused, type RefusalReason } from './errors.js';
export { NAME_PATTERN, quoteIdent, quoteLiteral, schemaForTenant } from './names.js';
export { pinnedSearchPath, pinStatement } from './pin.js';
export { createTenantResolver, type Tenant, type TenantResolver } from './resolver.js';
