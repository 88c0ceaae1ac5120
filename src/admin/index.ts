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
  TargetSeries,
  type TenantMetrics,
  type Traffic,
} from './metrics.js';
export { type ClientState, livePoolsView, livePoolView, type PlacedPoolView, type PoolRow, type PoolsView, type PoolView, poolView, type TargetRows } from './pool-view.js';
