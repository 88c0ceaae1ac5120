export { AuthError, type AuthFailure } from './errors.js';
export { mintToken, parseDuration, type MintOptions } from './mint.js';
export { claimAt, createTokenVerifier, type TokenVerifier, type VerifiedIdentity } from './verify.js';
