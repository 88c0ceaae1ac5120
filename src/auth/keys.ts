import {
  createRemoteJWKSet,
  errors,
  importJWK,
  importSPKI,
  importX509,
  type CryptoKey,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import type { JwtConfig } from '../config/schema.js';

/**
 * The verification keys of a configuration, imported once at start. Every source is behind one
 * resolver that jose calls only after it has checked the header's `alg` against
 * jwt.algorithms, so a key is only ever used with an algorithm of its own family.
 */
export interface VerificationKeys {
  readonly source: 'secret' | 'publicKey' | 'jwk' | 'jwksUrl';
  readonly getKey: JWTVerifyGetKey;
}

/** The JWKS could not be fetched or used; `why` is a fixed phrase, safe to show. */
export class JwksFailure extends Error {
  constructor(readonly why: string) {
    super(`JWKS ${why}`);
    this.name = 'JwksFailure';
  }
}

/** How long a JWKS fetch may take. */
export const JWKS_TIMEOUT_MS = 5_000;
/** Least time between two fetches caused by unknown kids (never longer than the cache age). */
export const JWKS_COOLDOWN_MS = 30_000;

const MIN_RSA_BITS = 2048;
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

export const isHmacAlgorithm = (alg: string): boolean => alg.startsWith('HS');

/** Imports the configured key source; throws an Error naming the jwt.* key that is wrong. */
export async function loadVerificationKeys(cfg: JwtConfig): Promise<VerificationKeys> {
  const hmac = cfg.algorithms.filter(isHmacAlgorithm);
  const asymmetric = cfg.algorithms.filter((a) => !isHmacAlgorithm(a));
  // The schema refuses this too; checked again here because it is what stops key confusion.
  if (hmac.length > 0 && asymmetric.length > 0) {
    throw new Error('jwt.algorithms: mixing HS* with asymmetric algorithms invites key confusion; pick one family');
  }
  if (hmac.length > 0) {
    if (cfg.secret === undefined) throw new Error(`jwt.secret: required for ${hmac.join(', ')}`);
    const secret = new TextEncoder().encode(cfg.secret);
    return { source: 'secret', getKey: staticResolver(new Map(hmac.map((alg) => [alg, secret]))) };
  }
  const given = (['publicKey', 'jwk', 'jwksUrl'] as const).filter((k) => cfg[k] !== undefined);
  if (given.length === 0) throw new Error(`jwt.publicKey: publicKey, jwk or jwksUrl is required for ${asymmetric.join(', ')}`);
  if (given.length > 1) throw new Error(`jwt: give one key source, not ${given.join(' and ')}`);
  if (cfg.jwksUrl !== undefined) return { source: 'jwksUrl', getKey: remoteResolver(cfg.jwksUrl, cfg.jwksCacheMaxAgeMs) };
  if (cfg.publicKey !== undefined) return { source: 'publicKey', getKey: staticResolver(await importPem(cfg.publicKey, asymmetric)) };
  return { source: 'jwk', getKey: staticResolver(await importPublicJwk(cfg.jwk as JWK, asymmetric)) };
}

function staticResolver(byAlg: ReadonlyMap<string, CryptoKey | Uint8Array>): JWTVerifyGetKey {
  return (header) => {
    const key = byAlg.get(header.alg);
    // Unreachable while jose checks `alg` first; refusing is the safe answer if it ever is not.
    if (key === undefined) throw new errors.JOSEAlgNotAllowed('no key for this algorithm');
    return key;
  };
}

/** A PEM public key (SPKI) or X.509 certificate, imported once per configured algorithm. */
async function importPem(pem: string, algorithms: readonly string[]): Promise<Map<string, CryptoKey>> {
  const text = pem.trim();
  const isCertificate = text.includes('-----BEGIN CERTIFICATE-----');
  const keys = new Map<string, CryptoKey>();
  for (const alg of algorithms) {
    let key: CryptoKey;
    try {
      key = isCertificate ? await importX509(text, alg) : await importSPKI(text, alg);
    } catch {
      const what = isCertificate ? 'certificate' : 'SPKI public key ("-----BEGIN PUBLIC KEY-----")';
      throw new Error(`jwt.publicKey: not a PEM ${what} that can verify ${alg}`);
    }
    checkRsaSize('jwt.publicKey', key);
    keys.set(alg, key);
  }
  return keys;
}

/** A public JWK, imported once per configured algorithm (or its own `alg`, which must be one). */
async function importPublicJwk(jwk: JWK, algorithms: readonly string[]): Promise<Map<string, CryptoKey>> {
  // jwt.jwk is treated as a secret by the config reference: messages quote kty and alg only.
  if (typeof jwk.kty !== 'string') throw new Error('jwt.jwk: has no "kty"');
  if (jwk.kty === 'oct') throw new Error('jwt.jwk: a symmetric ("oct") key cannot verify asymmetric algorithms; use jwt.secret with HS*');
  if (PRIVATE_JWK_MEMBERS.some((m) => jwk[m] !== undefined)) {
    throw new Error('jwt.jwk: holds private key material; configure the public key only');
  }
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new Error(`jwt.jwk: "use" is "${String(jwk.use)}", not "sig"`);
  if (jwk.alg !== undefined && !algorithms.includes(jwk.alg)) {
    throw new Error(`jwt.jwk: its "alg" ${JSON.stringify(jwk.alg)} is not in jwt.algorithms (${algorithms.join(', ')})`);
  }
  const keys = new Map<string, CryptoKey>();
  for (const alg of jwk.alg !== undefined ? [jwk.alg] : algorithms) {
    let key: CryptoKey;
    try {
      key = (await importJWK(jwk, alg)) as CryptoKey;
    } catch {
      throw new Error(`jwt.jwk: a "${jwk.kty}" key that cannot verify ${alg}`);
    }
    checkRsaSize('jwt.jwk', key);
    keys.set(alg, key);
  }
  return keys;
}

/** jose refuses RSA keys under 2048 bits on every token; say so once, at start. */
function checkRsaSize(where: string, key: CryptoKey): void {
  const bits = (key.algorithm as { modulusLength?: number }).modulusLength;
  if (bits !== undefined && bits < MIN_RSA_BITS) throw new Error(`${where}: an RSA key of ${bits} bits; at least ${MIN_RSA_BITS} are required`);
}

/**
 * Keys from a JWKS endpoint, via jose's remote set: fetched on first use, trusted for
 * `cacheMaxAgeMs`, refetched at most once per cooldown when a token names an unknown kid.
 * A stale set that cannot be refreshed is not used (fail closed). Any failure other than "no
 * key matches" becomes a JwksFailure, so it is reported as jwks_unavailable.
 */
function remoteResolver(jwksUrl: string, cacheMaxAgeMs: number): JWTVerifyGetKey {
  const url = new URL(jwksUrl);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    throw new Error('jwt.jwksUrl: must use https (plain http only for a loopback host), or anyone on the path could hand pgfence their keys');
  }
  const remote = createRemoteJWKSet(url, {
    cacheMaxAge: cacheMaxAgeMs,
    cooldownDuration: Math.min(JWKS_COOLDOWN_MS, cacheMaxAgeMs),
    timeoutDuration: JWKS_TIMEOUT_MS,
  });
  return async (header, token) => {
    try {
      return await remote(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
      throw new JwksFailure(describeJwksError(error));
    }
  };
}

function describeJwksError(error: unknown): string {
  if (error instanceof errors.JWKSTimeout) return `timed out after ${JWKS_TIMEOUT_MS} ms`;
  if (error instanceof errors.JWKSInvalid) return 'the response is not a usable JWK Set';
  if (error instanceof errors.JOSEError && error.message.startsWith('Expected 200 OK')) return 'the endpoint did not answer 200 OK';
  if (error instanceof errors.JOSEError && error.message.includes('parse')) return 'the response is not JSON';
  if (error instanceof TypeError && error.message === 'fetch failed') return 'the endpoint could not be reached';
  return 'a key in the JWK Set cannot be used';
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}
