import { importPKCS8, SignJWT } from 'jose';
import type { JwtConfig } from '../config/schema.js';

export interface MintOptions {
  tenantId: string;
  user?: string | undefined;
  ttlSeconds: number;
  extraClaims?: Record<string, unknown>;
}

/** Builds the claim object with the tenant at the configured (possibly dotted) claim path. */
function withTenantClaim(claims: Record<string, unknown>, path: string, tenantId: string): Record<string, unknown> {
  const parts = path.split('.');
  let target = claims;
  for (const part of parts.slice(0, -1)) {
    const next = target[part];
    target = (target[part] = next !== null && typeof next === 'object' ? { ...(next as object) } : {}) as Record<string, unknown>;
  }
  target[parts[parts.length - 1] as string] = tenantId;
  return claims;
}

/** Mints a token that this configuration accepts: for `pgfence token`, the demo and tests. */
export async function mintToken(cfg: JwtConfig, opts: MintOptions): Promise<string> {
  const alg = cfg.algorithms[0] ?? 'HS256';
  let key: Uint8Array | Awaited<ReturnType<typeof importPKCS8>>;
  if (alg.startsWith('HS')) {
    if (cfg.secret === undefined) throw new Error('jwt.secret is needed to mint HS* tokens');
    key = new TextEncoder().encode(cfg.secret);
  } else {
    if (cfg.privateKey === undefined) throw new Error(`jwt.privateKey (PKCS#8 PEM) is needed to mint ${alg} tokens`);
    key = await importPKCS8(cfg.privateKey, alg);
  }
  const claims = withTenantClaim({ ...(opts.extraClaims ?? {}) }, cfg.tenantClaim, opts.tenantId);
  const jwt = new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).setIssuedAt().setExpirationTime(`${opts.ttlSeconds}s`);
  if (opts.user !== undefined) jwt.setSubject(opts.user);
  if (cfg.issuer !== undefined) jwt.setIssuer(cfg.issuer);
  if (cfg.audience !== undefined) jwt.setAudience(cfg.audience);
  return jwt.sign(key);
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** '90', '30s', '15m', '1h', '2d' → seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (match === null) throw new Error(`not a duration: "${text}" (use e.g. 30s, 15m, 1h, 2d)`);
  const seconds = Number(match[1]) * (UNITS[match[2] || 's'] as number);
  if (seconds <= 0) throw new Error(`duration must be positive: "${text}"`);
  return seconds;
}
