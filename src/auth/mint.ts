import { importPKCS8, SignJWT, type CryptoKey } from 'jose';
import type { JwtConfig } from '../config/schema.js';
import { withClaim } from './claims.js';
import { TENANT_ID_PATTERN } from './errors.js';
import { isHmacAlgorithm } from './keys.js';

export interface MintOptions {
  /** The tenant the token names; null for an admin token (see adminClaim). */
  tenantId: string | null;
  user?: string | undefined;
  ttlSeconds: number;
  extraClaims?: Record<string, unknown>;
  /** Sets this claim to true: the admin console's claim (admin.consoleClaim). */
  adminClaim?: string;
}

/**
 * Mints a token this configuration accepts, for `pgfence token`, the demo and tests: signed
 * with the first of jwt.algorithms (jwt.secret for HS*, jwt.privateKey otherwise), with iat,
 * exp, iss and aud (when configured), sub (and jwt.userClaim) = user, and the tenant at
 * jwt.tenantClaim. Errors never quote a key.
 */
export async function mintToken(cfg: JwtConfig, opts: MintOptions): Promise<string> {
  if (opts.tenantId !== null && !TENANT_ID_PATTERN.test(opts.tenantId)) {
    throw new Error(`tenant id "${opts.tenantId}" must match ${TENANT_ID_PATTERN.source}`);
  }
  if (!Number.isSafeInteger(opts.ttlSeconds) || opts.ttlSeconds <= 0) {
    throw new Error(`token lifetime must be a positive whole number of seconds, got ${opts.ttlSeconds}`);
  }
  const alg = cfg.algorithms[0];
  if (alg === undefined) throw new Error('jwt.algorithms is empty');
  const key = await signingKey(cfg, alg);

  let claims: Record<string, unknown> = { ...opts.extraClaims };
  if (opts.user !== undefined && cfg.userClaim !== 'sub') claims = withClaim(claims, cfg.userClaim, opts.user);
  if (opts.tenantId !== null) claims = withClaim(claims, cfg.tenantClaim, opts.tenantId);
  if (opts.adminClaim !== undefined) claims = withClaim(claims, opts.adminClaim, true);
  if (opts.tenantId === null && opts.adminClaim === undefined) throw new Error('a token needs a tenant (or the admin claim)');

  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).setIssuedAt(now).setExpirationTime(now + opts.ttlSeconds);
  if (opts.user !== undefined) jwt.setSubject(opts.user);
  if (cfg.issuer !== undefined) jwt.setIssuer(cfg.issuer);
  if (cfg.audience !== undefined) jwt.setAudience(cfg.audience);
  return jwt.sign(key);
}

async function signingKey(cfg: JwtConfig, alg: string): Promise<Uint8Array | CryptoKey> {
  if (isHmacAlgorithm(alg)) {
    if (cfg.secret === undefined) throw new Error(`cannot mint a token: jwt.secret is not configured (needed to sign ${alg})`);
    return new TextEncoder().encode(cfg.secret);
  }
  if (cfg.privateKey === undefined) {
    throw new Error(`cannot mint a token: jwt.privateKey is not configured (a PKCS#8 PEM private key is needed to sign ${alg})`);
  }
  const pem = cfg.privateKey.trim();
  try {
    return await importPKCS8(pem, alg);
  } catch {
    const legacy = /-----BEGIN (RSA|EC) PRIVATE KEY-----/.test(pem)
      ? '; it is in the older PKCS#1/SEC1 form, convert it with `openssl pkcs8 -topk8 -nocrypt -in key.pem`'
      : '';
    throw new Error(`cannot mint a token: jwt.privateKey is not a PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----") key for ${alg}${legacy}`);
  }
}
