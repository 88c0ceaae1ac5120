import { errors, jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
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
  const claimsOf = async (token: string): Promise<Readonly<Record<string, unknown>>> => {
    if (token.length === 0) throw authErrors.emptyPassword();
    if (token.length > MAX_TOKEN_LENGTH) throw authErrors.malformedToken(`longer than ${MAX_TOKEN_LENGTH} characters`);
    if (!COMPACT_JWS.test(token)) throw authErrors.malformedToken('expected three base64url parts separated by dots');
    try {
      return Object.freeze(await verifiedClaims(token, keys.getKey, options));
    } catch (error) {
      throw refusalFor(error, token);
    }
  };
  return {
    async verify(token) {
      return identityOf(await claimsOf(token), cfg);
    },
    verifyClaims: claimsOf,
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

/** The tenant (a string matching TENANT_ID_PATTERN, else refused) and the user, for logs. */
function identityOf(claims: Readonly<Record<string, unknown>>, cfg: JwtConfig): VerifiedIdentity {
  const tenant = readClaim(claims, cfg.tenantClaim);
  if (tenant === undefined) throw authErrors.missingTenantClaim(cfg.tenantClaim);
  if (typeof tenant !== 'string' || !TENANT_ID_PATTERN.test(tenant)) throw authErrors.malformedTenantClaim();
  const user = readClaim(claims, cfg.userClaim);
  return { tenantId: tenant, user: typeof user === 'string' ? user : undefined, claims };
}
