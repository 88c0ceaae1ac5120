import type { PolicyConfig } from '../config/schema.js';
import type { FencePolicy } from './verdict.js';

/**
 * A tenant's policy: the defaults of config `policy`, each key replaced where the tenant has an
 * override, plus settings pgfence itself holds for the tenant (a statement_timeout limit).
 * Undefined when it neither lifts nor adds anything, so judge() skips it entirely.
 */
export function fencePolicy(config: PolicyConfig, tenantId: string, heldSettings: readonly string[] = []): FencePolicy | undefined {
  const rules = { ...config, ...config.tenants[tenantId] };
  const policy: FencePolicy = {
    allow: new Set(rules.allow),
    allowed: new Set([...rules.allowedFunctions.map((name) => name.toLowerCase()), ...rules.allowedStatements]),
    readOnlySchemas: new Set(rules.readOnlySchemas),
    deniedFunctions: new Set(rules.deniedFunctions.map((name) => name.toLowerCase())),
    deniedStatements: new Set(rules.deniedStatements),
    protectedSettings: new Set([...rules.protectedSettings, ...heldSettings].map((name) => name.toLowerCase())),
  };
  const empty = Object.values(policy).every((set: ReadonlySet<unknown>) => set.size === 0);
  return empty ? undefined : policy;
}
