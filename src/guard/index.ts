export type { Analysis, ChannelStatement, Refusal, RefusalReason, SessionEffect } from './analysis.js';
export { Guard } from './guard.js';
export { splitQualifiedName } from './literal-names.js';
export { fencePolicy } from './policy.js';
export { type FencePolicy, judge, type RejectReason, type TenantFence, type Verdict } from './verdict.js';
