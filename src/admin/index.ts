export { type AdminDeps, type AdminServer, type AdminServerOptions, DEFAULT_READY_TIMEOUT_MS, startAdminServer } from './http.js';
export {
  type BackendConnectionResult,
  type BackendResetResult,
  type BackendState,
  type ClientConnectionResult,
  DEFAULT_MAX_TENANTS,
  type GaugeSources,
  Metrics,
  type MetricsOptions,
  OTHER_TENANT,
  type PoolSnapshot,
  QueryTimer,
  type TenantMetrics,
} from './metrics.js';
