/**
 * auth/: a client's JWT (sent as its password) → the tenant it may act in.
 *   errors.ts    AuthError, its stable reasons and SQLSTATEs, the named constructors
 *   keys.ts      import of the configured key source (secret, PEM, JWK, JWKS URL)
 *   verify.ts    createTokenVerifier: jose jwtVerify with pinned algorithms, then the claims
 *   refusal.ts   jose's errors → AuthError, without keeping anything of the token
 *   claims.ts    dotted claim paths, read and written
 *   mint.ts      mintToken, for `pgfence token`, the demo and tests
 *   duration.ts  parseDuration, for `pgfence token --ttl`
 */
export { AuthError, TENANT_ID_PATTERN, type AuthFailure, type AuthSqlstate } from './errors.js';
export { parseDuration } from './duration.js';
export { mintToken, type MintOptions } from './mint.js';
export { createTokenVerifier, MAX_TOKEN_LENGTH, type TokenVerifier, type VerifiedIdentity } from './verify.js';
export { readClaim } from './claims.js';
