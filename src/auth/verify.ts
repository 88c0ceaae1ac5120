import { errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { JwtConfig } from '../config/schema.js';
import { AuthError } from './errors.js';
import { loadVerificationKey } from './keys.js';

export interface VerifiedIdentity {
  tenantId: string;
  user: string | undefined;
  claims: Readonly<Record<string, unknown>>;
}

export interface TokenVerifier {
  verify(token: string): Promise<VerifiedIdentity>;
}

const TENANT_ID = /^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$/;

/** Reads a claim by a dotted path (`app_metadata.tenant`). */
export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  let current: unknown = claims;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

export async function createTokenVerifier(cfg: JwtConfig): Promise<TokenVerifier> {
  const key = await loadVerificationKey(cfg);
  const options = {
    algorithms: [...cfg.algorithms],
    issuer: cfg.issuer,
    audience: cfg.audience,
    clockTolerance: cfg.clockToleranceSec,
  };
  return {
    async verify(token) {
      if (token.length === 0) throw new AuthError('empty_password');
      let payload: Record<string, unknown>;
      try {
        const result =
          typeof key === 'function'
            ? await jwtVerify(token, key as JWTVerifyGetKey, options)
            : await jwtVerify(token, key, options);
        payload = result.payload;
      } catch (error) {
        throw toAuthError(error);
      }
      const tenant = claimAt(payload, cfg.tenantClaim);
      if (tenant === undefined || tenant === null) throw new AuthError('missing_tenant_claim', `claim "${cfg.tenantClaim}"`);
      if (typeof tenant !== 'string' || !TENANT_ID.test(tenant)) throw new AuthError('malformed_tenant_claim');
      const user = claimAt(payload, cfg.userClaim);
      return { tenantId: tenant, user: typeof user === 'string' ? user : undefined, claims: payload };
    },
  };
}

/** Maps jose's errors to our reasons; nothing of the token reaches the message. */
function toAuthError(error: unknown): AuthError {
  if (error instanceof errors.JWTExpired) return new AuthError('expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'nbf':
      case 'iat':
        return new AuthError(error.reason === 'check_failed' ? 'not_yet_valid' : 'invalid_claims', `claim "${error.claim}"`);
      case 'iss':
        return new AuthError('wrong_issuer');
      case 'aud':
        return new AuthError('wrong_audience');
      default:
        return new AuthError('invalid_claims', `claim "${error.claim}"`);
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return new AuthError('alg_not_allowed');
  if (error instanceof errors.JWSSignatureVerificationFailed) return new AuthError('bad_signature');
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) return new AuthError('no_matching_key');
  if (error instanceof errors.JWKSTimeout || error instanceof errors.JWKSInvalid) return new AuthError('jwks_unavailable');
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported) {
    return new AuthError('malformed_token');
  }
  if (error instanceof TypeError && /fetch|network|ECONNREFUSED/i.test(error.message)) return new AuthError('jwks_unavailable');
  if (error instanceof Error && /ECONNREFUSED|fetch failed|socket/i.test(error.message)) return new AuthError('jwks_unavailable');
  return new AuthError('malformed_token');
}
