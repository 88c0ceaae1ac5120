export { type RefusalReason, type RefusalSqlstate, TenantRefused } from './errors.js';
export { NAME_PATTERN, quoteIdent, quoteLiteral, roleForTenant, schemaForTenant } from './names.js';
export { expectedSearchPath, pinStatement } from './pin.js';
export {
  createTenantResolver,
  type Tenant,
  type TenantResolver,
  type TenantResolverOptions,
  type TenantStatus,
} from './resolver.js';
