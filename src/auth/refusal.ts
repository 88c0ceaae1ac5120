import { decodeProtectedHeader, errors } from 'jose';
import { AuthError, authErrors, safeAlgName } from './errors.js';
import { JwksFailure } from './keys.js';

/**
 * Maps whatever jwtVerify threw to an AuthError. jose's own errors carry the decoded claims
 * (JWTClaimValidationFailed.payload) and causes, so none of them is kept: the AuthError is built
 * fresh from the error's class and fixed fields. Anything unrecognised is a malformed token
 * (fail closed); a JWT that is not one can make jose throw all sorts of things.
 */
export function refusalFor(error: unknown, token: string): AuthError {
  if (error instanceof AuthError) return error;
  if (error instanceof JwksFailure) return authErrors.jwksUnavailable(error.why);
  if (error instanceof errors.JWTExpired) return authErrors.expired();
  if (error instanceof errors.JWTClaimValidationFailed) return claimRefusal(error.claim, error.reason);
  if (error instanceof errors.JOSEAlgNotAllowed) return authErrors.algNotAllowed(headerAlg(token));
  if (error instanceof errors.JWSSignatureVerificationFailed) return authErrors.badSignature();
  if (error instanceof errors.JWKSNoMatchingKey) return authErrors.noMatchingKey();
  if (error instanceof errors.JWTInvalid) return authErrors.malformedToken('the payload is not a JSON object of claims');
  if (error instanceof errors.JWSInvalid) return authErrors.malformedToken('the header or an encoding is invalid');
  return authErrors.malformedToken();
}

function claimRefusal(claim: string, reason: string): AuthError {
  const missing = reason === 'missing';
  switch (claim) {
    case 'nbf':
      return reason === 'check_failed' ? authErrors.notYetValid() : authErrors.invalidClaim(claim, reason);
    case 'iss':
      return authErrors.wrongIssuer(missing);
    case 'aud':
      return authErrors.wrongAudience(missing);
    default:
      return authErrors.invalidClaim(claim, reason);
  }
}

/** The header's `alg`, when it is fit to quote. */
function headerAlg(token: string): string | undefined {
  try {
    return safeAlgName(decodeProtectedHeader(token).alg);
  } catch {
    return undefined;
  }
}
