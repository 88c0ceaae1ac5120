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

/**
 * Why a token was refused. 28P01 (invalid_password) when the token itself is bad, as a wrong
 * password would be; 28000 (invalid_authorization_specification) when a valid token does not
 * name a tenant pgfence can use, or the keys to check it cannot be had.
 */
const CATALOG: Record<AuthFailure, { sqlstate: '28P01' | '28000'; message: string }> = {
  empty_password: { sqlstate: '28P01', message: 'pgfence: no JWT was sent as the password' },
  malformed_token: { sqlstate: '28P01', message: 'pgfence: the password is not a well-formed JWT' },
  alg_not_allowed: { sqlstate: '28P01', message: 'pgfence: JWT algorithm is not allowed' },
  bad_signature: { sqlstate: '28P01', message: 'pgfence: JWT signature is invalid' },
  no_matching_key: { sqlstate: '28P01', message: 'pgfence: no configured key matches the JWT' },
  expired: { sqlstate: '28P01', message: 'pgfence: JWT has expired' },
  not_yet_valid: { sqlstate: '28P01', message: 'pgfence: JWT is not valid yet' },
  wrong_issuer: { sqlstate: '28P01', message: 'pgfence: JWT issuer is not accepted' },
  wrong_audience: { sqlstate: '28P01', message: 'pgfence: JWT audience is not accepted' },
  invalid_claims: { sqlstate: '28P01', message: 'pgfence: JWT claims are invalid' },
  missing_tenant_claim: { sqlstate: '28000', message: 'pgfence: JWT has no tenant claim' },
  malformed_tenant_claim: {
    sqlstate: '28000',
    message: 'pgfence: JWT tenant claim must be a string matching ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$',
  },
  jwks_unavailable: { sqlstate: '28000', message: 'pgfence: the JWKS with the signing keys could not be fetched' },
};

/** A refused token. Carries no part of the token, so it is safe to log and to send to the client. */
export class AuthError extends Error {
  readonly sqlstate: '28P01' | '28000';

  constructor(
    readonly reason: AuthFailure,
    detail?: string,
  ) {
    const entry = CATALOG[reason];
    super(detail === undefined ? entry.message : `${entry.message} (${detail})`);
    this.name = 'AuthError';
    this.sqlstate = entry.sqlstate;
  }
}
