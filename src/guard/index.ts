export type { Analysis, SessionEffect } from './analysis.js';
export { Guard, judge, type RejectReason, type TenantFence, type Verdict } from './guard.js';
export { splitQualifiedName } from './qualified-name.js';
