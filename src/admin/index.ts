export { type AdminDeps, type AdminServer, type AdminServerOptions, DEFAULT_READY_TIMEOUT_MS, startAdminServer } from './http.js';
export {
  type BackendConnectionEvent,
  type BackendResetResult,
  type ClientConnectionResult,
  DEFAULT_MAX_TENANTS,
  type GaugeSources,
  Metrics,
  type MetricsOptions,
  OTHER_TENANT,
  QueryTimer,
  type RoundTripSink,
  type StatsPeriod,
  type StatTotals,
  type TenantMetrics,
  type Traffic,
} from './metrics.js';
export { type ClientState, livePoolView, type PoolRow, type PoolView, poolView } from './pool-view.js';
