import { createRemoteJWKSet, importJWK, importSPKI, importX509, type JWK, type JWTVerifyGetKey } from 'jose';
import type { JwtConfig } from '../config/schema.js';

type VerifyKey = Awaited<ReturnType<typeof importSPKI>> | Uint8Array;

/** What jwtVerify is given: one key, or a resolver over a JWKS. */
export type KeySource = VerifyKey | JWTVerifyGetKey;

/** Imports the configured verification key once, at start. */
export async function loadVerificationKey(cfg: JwtConfig): Promise<KeySource> {
  if (cfg.jwksUrl !== undefined) {
    return createRemoteJWKSet(new URL(cfg.jwksUrl), { cacheMaxAge: cfg.jwksCacheMaxAgeMs, cooldownDuration: 30_000, timeoutDuration: 5_000 });
  }
  const asymmetric = cfg.algorithms.filter((a) => !a.startsWith('HS'));
  if (cfg.publicKey !== undefined) {
    const alg = asymmetric[0] ?? 'RS256';
    const pem = cfg.publicKey.trim();
    return pem.includes('BEGIN CERTIFICATE') ? importX509(pem, alg) : importSPKI(pem, alg);
  }
  if (cfg.jwk !== undefined) {
    const jwk = cfg.jwk as JWK;
    const key = await importJWK(jwk, jwk.alg ?? asymmetric[0]);
    return key;
  }
  if (cfg.secret !== undefined) return new TextEncoder().encode(cfg.secret);
  throw new Error('jwt: no verification key configured');
}
