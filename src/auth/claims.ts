/**
 * Claim paths: `tenant_id` names a top-level claim, `app_metadata.tenant` walks into objects.
 * Reading only ever looks at a claim set's own properties, so no path reaches Object.prototype.
 */

/** The segments of a configured claim path; refuses empty segments (`a..b`, `.a`). */
export function claimPathSegments(path: string): string[] {
  const segments = path.split('.');
  if (segments.some((s) => s.length === 0)) throw new Error(`claim path "${path}" has an empty segment`);
  return segments;
}

/**
 * The value at `path`, or undefined. A claim whose whole name is the path wins over a walk, so
 * namespaced claims such as `https://example.com/tenant` (dots and all) keep working.
 */
export function readClaim(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let current: unknown = claims;
  for (const segment of path.split('.')) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}

/**
 * A copy of `claims` with `value` at `path`, nesting objects for a dotted path and keeping what
 * the objects on the way already held. Defines properties rather than assigning them, so a
 * segment named `__proto__` is a plain key.
 */
export function withClaim(claims: Readonly<Record<string, unknown>>, path: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = claimPathSegments(path) as [string, ...string[]];
  const out = { ...claims };
  const existing = Object.hasOwn(claims, head) ? claims[head] : undefined;
  const inner = existing !== null && typeof existing === 'object' && !Array.isArray(existing) ? (existing as Record<string, unknown>) : {};
  define(out, head, rest.length === 0 ? value : withClaim(inner, rest.join('.'), value));
  return out;
}

function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
