/**
 * Why a token was refused. Each reason is a stable code (metrics and logs use it) with a fixed
 * SQLSTATE, and the message says which check failed. No message ever quotes the token: only
 * names from pgfence's own configuration (a claim path) or a short, vetted header value (alg).
 *
 * | reason                 | SQLSTATE | when                                                        |
 * |------------------------|----------|-------------------------------------------------------------|
 * | empty_password         | 28P01    | the client sent an empty password                           |
 * | malformed_token        | 28P01    | not a compact JWS, over 64 KiB, header/payload not JSON, ... |
 * | alg_not_allowed        | 28P01    | header `alg` (including `none`) not in jwt.algorithms       |
 * | bad_signature          | 28P01    | signature does not verify with the configured key           |
 * | no_matching_key        | 28P01    | the JWKS has no key for the token's kid/alg                 |
 * | expired                | 28P01    | `exp` is past, beyond clockToleranceSec                     |
 * | not_yet_valid          | 28P01    | `nbf` is in the future, beyond clockToleranceSec            |
 * | wrong_issuer           | 28P01    | `iss` missing or not jwt.issuer                             |
 * | wrong_audience         | 28P01    | `aud` missing or does not include jwt.audience              |
 * | invalid_claims         | 28P01    | a registered claim has the wrong type (e.g. `exp` a string) |
 * | missing_tenant_claim   | 28000    | a valid token without the jwt.tenantClaim claim             |
 * | malformed_tenant_claim | 28000    | the tenant claim is not a string matching TENANT_ID_PATTERN |
 * | jwks_unavailable       | 28000    | the JWKS could not be fetched, parsed or used               |
 *
 * 28P01 (invalid_password) is what a wrong password gets: the credential itself is bad.
 * 28000 (invalid_authorization_specification) is for a credential that may well be good but
 * cannot authorize a session: it names no usable tenant, or pgfence cannot get the keys to judge
 * it. jwks_unavailable is not 08006 (connection_failure): the client's connection is fine, and
 * drivers and poolers treat class 08 as a transient network error to retry in a loop, while
 * class 28 is reported as an authentication failure, which is what the user must see. It is not
 * 28P01 either: the client should not conclude that its token is wrong.
 */
export type AuthFailure =
  | 'empty_password'
  | 'malformed_token'
  | 'alg_not_allowed'
  | 'bad_signature'
  | 'no_matching_key'
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'invalid_claims'
  | 'missing_tenant_claim'
  | 'malformed_tenant_claim'
  | 'jwks_unavailable';

export type AuthSqlstate = '28P01' | '28000';

const SQLSTATE: Readonly<Record<AuthFailure, AuthSqlstate>> = {
  empty_password: '28P01',
  malformed_token: '28P01',
  alg_not_allowed: '28P01',
  bad_signature: '28P01',
  no_matching_key: '28P01',
  expired: '28P01',
  not_yet_valid: '28P01',
  wrong_issuer: '28P01',
  wrong_audience: '28P01',
  invalid_claims: '28P01',
  missing_tenant_claim: '28000',
  malformed_tenant_claim: '28000',
  jwks_unavailable: '28000',
};

/** Tenant ids as the tenant claim must carry them (the same rule as tenancy's schema names). */
export const TENANT_ID_PATTERN = /^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$/;

const DEFAULT_MESSAGE: Readonly<Record<AuthFailure, string>> = {
  empty_password: 'pgfence: no JWT was sent as the password',
  malformed_token: 'pgfence: the password is not a well-formed JWT',
  alg_not_allowed: 'pgfence: JWT algorithm is not allowed',
  bad_signature: 'pgfence: JWT signature is invalid',
  no_matching_key: 'pgfence: no key in the JWKS matches the JWT',
  expired: 'pgfence: JWT has expired',
  not_yet_valid: 'pgfence: JWT is not valid yet',
  wrong_issuer: 'pgfence: JWT issuer is not accepted',
  wrong_audience: 'pgfence: JWT audience is not accepted',
  invalid_claims: 'pgfence: JWT claims are invalid',
  missing_tenant_claim: 'pgfence: JWT has no tenant claim',
  malformed_tenant_claim: `pgfence: JWT tenant claim must be a string matching ${TENANT_ID_PATTERN.source}`,
  jwks_unavailable: 'pgfence: the signing keys (JWKS) could not be fetched',
};

/** A refused token. Carries no part of the token, so it is safe to log and to send to the client. */
export class AuthError extends Error {
  readonly sqlstate: AuthSqlstate;

  constructor(
    readonly reason: AuthFailure,
    message: string = DEFAULT_MESSAGE[reason],
  ) {
    super(message);
    this.name = 'AuthError';
    this.sqlstate = SQLSTATE[reason];
  }
}

/** Registered claims jose validates; only these names are ever quoted back. */
const REGISTERED_CLAIMS = new Set(['exp', 'nbf', 'iat', 'iss', 'aud', 'sub', 'jti']);

/** The named constructors; every refusal is made by one of these. */
export const authErrors = {
  emptyPassword: () => new AuthError('empty_password'),
  malformedToken: (why?: string) =>
    new AuthError('malformed_token', why === undefined ? DEFAULT_MESSAGE.malformed_token : `${DEFAULT_MESSAGE.malformed_token} (${why})`),
  /** `alg` is quoted only once it is known to be a short plain name (see safeAlgName). */
  algNotAllowed: (alg: string | undefined) =>
    new AuthError('alg_not_allowed', alg === undefined ? DEFAULT_MESSAGE.alg_not_allowed : `pgfence: JWT algorithm "${alg}" is not allowed`),
  badSignature: () => new AuthError('bad_signature'),
  noMatchingKey: () => new AuthError('no_matching_key'),
  expired: () => new AuthError('expired'),
  notYetValid: () => new AuthError('not_yet_valid'),
  wrongIssuer: (missing: boolean) => new AuthError('wrong_issuer', missing ? 'pgfence: JWT has no "iss" claim' : DEFAULT_MESSAGE.wrong_issuer),
  wrongAudience: (missing: boolean) =>
    new AuthError('wrong_audience', missing ? 'pgfence: JWT has no "aud" claim' : DEFAULT_MESSAGE.wrong_audience),
  invalidClaim: (claim: string, reason: string) => {
    if (!REGISTERED_CLAIMS.has(claim)) return new AuthError('invalid_claims');
    const message = reason === 'missing' ? `pgfence: JWT has no "${claim}" claim` : `pgfence: JWT "${claim}" claim is invalid`;
    return new AuthError('invalid_claims', message);
  },
  /** `path` is jwt.tenantClaim from the configuration, never token content. */
  missingTenantClaim: (path: string) => new AuthError('missing_tenant_claim', `pgfence: JWT has no "${path}" claim`),
  malformedTenantClaim: () => new AuthError('malformed_tenant_claim'),
  jwksUnavailable: (why: string) => new AuthError('jwks_unavailable', `${DEFAULT_MESSAGE.jwks_unavailable} (${why})`),
} as const;

/** A header `alg` fit to quote in a message: short and plain, else undefined. */
export function safeAlgName(alg: unknown): string | undefined {
  return typeof alg === 'string' && /^[A-Za-z0-9_-]{1,16}$/.test(alg) ? alg : undefined;
}
