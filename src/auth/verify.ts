import { createHash } from 'node:crypto';
import { errors, jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { LRUCache } from 'lru-cache';
import type { JwtConfig } from '../config/schema.js';
import { claimPathSegments, readClaim } from './claims.js';
import { authErrors, TENANT_ID_PATTERN } from './errors.js';
import { loadVerificationKeys } from './keys.js';
import { refusalFor } from './refusal.js';

export interface VerifiedIdentity {
  tenantId: string;
  user: string | undefined;
  claims: Readonly<Record<string, unknown>>;
}

export interface TokenVerifier {
  /** Resolves to the identity, or rejects with an AuthError (never anything else). */
  verify(token: string): Promise<VerifiedIdentity>;
  /** Signature, lifetime, issuer and audience checked, no tenant required: for admin tokens. */
  verifyClaims(token: string): Promise<Readonly<Record<string, unknown>>>;
  /** Tokens answered from the cache of verified tokens, and verified anew. */
  readonly cacheStats: { readonly hits: number; readonly misses: number };
}

/** Verified tokens kept, least recently used dropped first. */
const VERIFIED_CACHE_ENTRIES = 10_000;
/**
 * Longest a verified token is trusted without a new check, whatever its exp says (and for a
 * token without exp); with a JWKS, no longer than its keys are trusted (jwt.jwksCacheMaxAgeMs),
 * so a key removed from it stops admitting its tokens as soon as without the cache.
 */
const VERIFIED_CACHE_MAX_MS = 10 * 60_000;

interface VerifiedEntry {
  claims: Readonly<Record<string, unknown>>;
  /** Date.now() from which the token must be checked again: its exp (with the leeway) or the cap. */
  until: number;
}

/** Longest password taken for a JWT; real tokens are a few KiB at most. */
export const MAX_TOKEN_LENGTH = 64 * 1024;
/** Compact JWS: three base64url parts, the last (signature) possibly empty. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** Imports the configured keys once; the verifier then checks each client's token. */
export async function createTokenVerifier(cfg: JwtConfig): Promise<TokenVerifier> {
  claimPathSegments(cfg.tenantClaim);
  claimPathSegments(cfg.userClaim);
  const keys = await loadVerificationKeys(cfg);
  const options: JWTVerifyOptions = {
    algorithms: [...cfg.algorithms],
    issuer: cfg.issuer,
    audience: cfg.audience,
    clockTolerance: cfg.clockToleranceSec,
    requiredClaims: cfg.requireExp ? ['exp'] : [],
  };
  // Keyed by a hash of the token (the token itself is never kept); only verified tokens enter.
  const verified = new LRUCache<string, VerifiedEntry>({ max: VERIFIED_CACHE_ENTRIES });
  const maxTrustMs = keys.source === 'jwksUrl' ? Math.min(VERIFIED_CACHE_MAX_MS, cfg.jwksCacheMaxAgeMs) : VERIFIED_CACHE_MAX_MS;
  const cacheStats = { hits: 0, misses: 0 };
  const claimsOf = async (token: string): Promise<Readonly<Record<string, unknown>>> => {
    if (token.length === 0) throw authErrors.emptyPassword();
    if (token.length > MAX_TOKEN_LENGTH) throw authErrors.malformedToken(`longer than ${MAX_TOKEN_LENGTH} characters`);
    if (!COMPACT_JWS.test(token)) throw authErrors.malformedToken('expected three base64url parts separated by dots');
    const key = createHash('sha256').update(token).digest('base64');
    const cached = verified.get(key);
    if (cached !== undefined) {
      if (Date.now() < cached.until) {
        cacheStats.hits++;
        return cached.claims;
      }
      verified.delete(key);
    }
    cacheStats.misses++;
    let claims: Readonly<Record<string, unknown>>;
    try {
      claims = Object.freeze(await verifiedClaims(token, keys.getKey, options));
    } catch (error) {
      throw refusalFor(error, token);
    }
    verified.set(key, { claims, until: trustedUntil(claims, cfg.clockToleranceSec, maxTrustMs) });
    return claims;
  };
  return {
    async verify(token) {
      return identityOf(await claimsOf(token), cfg);
    },
    verifyClaims: claimsOf,
    cacheStats,
  };
}

/**
 * jwtVerify, plus what jose leaves to its caller: when a JWKS holds several keys that fit the
 * header (no kid, say, during a rotation), each one is tried in turn.
 */
async function verifiedClaims(token: string, getKey: JWTVerifyGetKey, options: JWTVerifyOptions): Promise<Record<string, unknown>> {
  try {
    return (await jwtVerify(token, getKey, options)).payload;
  } catch (error) {
    if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
    for await (const key of error) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (inner) {
        if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

/** Until when a just-verified token may be taken again without a check: jose's own exp limit, at most the cap. */
function trustedUntil(claims: Readonly<Record<string, unknown>>, toleranceSec: number, maxTrustMs: number): number {
  const cap = Date.now() + maxTrustMs;
  const exp = claims['exp'];
  return typeof exp === 'number' && Number.isFinite(exp) ? Math.min(cap, (exp + toleranceSec) * 1000) : cap;
}

/** The tenant (a string matching TENANT_ID_PATTERN, else refused) and the user, for logs. */
function identityOf(claims: Readonly<Record<string, unknown>>, cfg: JwtConfig): VerifiedIdentity {
  const tenant = readClaim(claims, cfg.tenantClaim);
  if (tenant === undefined) throw authErrors.missingTenantClaim(cfg.tenantClaim);
  if (typeof tenant !== 'string' || !TENANT_ID_PATTERN.test(tenant)) throw authErrors.malformedTenantClaim();
  const user = readClaim(claims, cfg.userClaim);
  return { tenantId: tenant, user: typeof user === 'string' ? user : undefined, claims };
}
