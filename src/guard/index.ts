export type { Analysis, ChannelStatement, Deallocation, NotifyCall, Refusal, RefusalReason, SessionEffect, SessionReset } from './analysis.js';
export { Guard } from './guard.js';
export { splitQualifiedName } from './literal-names.js';
export { fencePolicy } from './policy.js';
export { searchPathSchemas } from './search-path.js';
export { type FencePolicy, judge, type RejectReason, searchPathWithinFence, type TenantFence, type Verdict } from './verdict.js';
