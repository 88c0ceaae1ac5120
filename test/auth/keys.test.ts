import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createTokenVerifier } from '../../src/auth/index.js';
import type { JwtConfig } from '../../src/config/schema.js';
import { jwtConfig, SECRET, testKeys } from './support.js';

/** Configs the schema would refuse: the verifier must refuse them on its own. */
const raw = (input: Partial<JwtConfig>): JwtConfig => ({
  algorithms: ['RS256'],
  jwksCacheMaxAgeMs: 600_000,
  clockToleranceSec: 30,
  requireExp: true,
  tenantClaim: 'tenant_id',
  userClaim: 'sub',
  ...input,
});

async function startError(cfg: JwtConfig): Promise<Error> {
  try {
    await createTokenVerifier(cfg);
  } catch (error) {
    return error as Error;
  }
  throw new Error('the configuration was accepted');
}

describe('key configuration is checked at start, with errors that name the key', () => {
  it('HS* without a secret', async () => {
    expect((await startError(raw({ algorithms: ['HS256'] }))).message).toBe('jwt.secret: required for HS256');
  });

  it('an asymmetric algorithm without a key source', async () => {
    expect((await startError(raw({ algorithms: ['ES256', 'EdDSA'] }))).message).toBe(
      'jwt.publicKey: publicKey, jwk or jwksUrl is required for ES256, EdDSA',
    );
  });

  it('more than one asymmetric key source', async () => {
    const keys = await testKeys('ES256');
    const error = await startError(jwtConfig({ algorithms: ['ES256'], publicKey: keys.spki, jwk: keys.jwk }));
    expect(error.message).toBe('jwt: give one key source, not publicKey and jwk');
  });

  it('a PEM key of the wrong type for the algorithm', async () => {
    const ec = await testKeys('ES256');
    expect((await startError(jwtConfig({ algorithms: ['RS256'], publicKey: ec.spki }))).message).toBe(
      'jwt.publicKey: not a PEM SPKI public key ("-----BEGIN PUBLIC KEY-----") that can verify RS256',
    );
    expect((await startError(jwtConfig({ algorithms: ['ES384'], publicKey: ec.spki }))).message).toMatch(/cannot|that can verify ES384/);
  });

  it('a PEM that is not a key at all', async () => {
    expect((await startError(jwtConfig({ algorithms: ['EdDSA'], publicKey: 'not a pem' }))).message).toMatch(/^jwt\.publicKey: not a PEM/);
  });

  it('an RSA key under 2048 bits', async () => {
    const { publicKey } = generateKeyPairSync('rsa', {
      modulusLength: 1024,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const error = await startError(jwtConfig({ algorithms: ['RS256'], publicKey }));
    expect(error.message).toBe('jwt.publicKey: an RSA key of 1024 bits; at least 2048 are required');
  });

  it('a JWK with private key material, without echoing it', async () => {
    const keys = await testKeys('EdDSA');
    const { exportJWK } = await import('jose');
    const privateJwk = await exportJWK(keys.privateKey);
    const error = await startError(jwtConfig({ algorithms: ['EdDSA'], jwk: privateJwk }));
    expect(error.message).toBe('jwt.jwk: holds private key material; configure the public key only');
    expect(String(error)).not.toContain(privateJwk.d as string);
  });

  it('a symmetric JWK, a JWK for encryption, a JWK whose alg is not configured', async () => {
    const keys = await testKeys('ES256');
    expect((await startError(jwtConfig({ algorithms: ['ES256'], jwk: { kty: 'oct', k: 'c2VjcmV0' } }))).message).toMatch(/^jwt\.jwk: a symmetric/);
    expect((await startError(jwtConfig({ algorithms: ['ES256'], jwk: { ...keys.jwk, use: 'enc' } }))).message).toBe('jwt.jwk: "use" is "enc", not "sig"');
    expect((await startError(jwtConfig({ algorithms: ['ES256'], jwk: { ...keys.jwk, alg: 'ES384' } }))).message).toBe(
      'jwt.jwk: its "alg" "ES384" is not in jwt.algorithms (ES256)',
    );
  });

  it('a JWK of the wrong type for the algorithm', async () => {
    const keys = await testKeys('EdDSA');
    expect((await startError(jwtConfig({ algorithms: ['RS256'], jwk: keys.jwk }))).message).toBe('jwt.jwk: a "OKP" key that cannot verify RS256');
  });

  it('a JWKS over plain http to a host that is not loopback', async () => {
    const error = await startError(jwtConfig({ algorithms: ['RS256'], jwksUrl: 'http://issuer.example/jwks.json' }));
    expect(error.message).toMatch(/^jwt\.jwksUrl: must use https/);
    await expect(createTokenVerifier(jwtConfig({ algorithms: ['RS256'], jwksUrl: 'https://issuer.example/jwks.json' }))).resolves.toBeDefined();
    await expect(createTokenVerifier(jwtConfig({ algorithms: ['RS256'], jwksUrl: 'http://localhost:1/jwks.json' }))).resolves.toBeDefined();
  });

  it('a claim path with an empty segment', async () => {
    expect((await startError(jwtConfig({ algorithms: ['HS256'], secret: SECRET, tenantClaim: 'app..tenant' }))).message).toBe(
      'claim path "app..tenant" has an empty segment',
    );
  });

  it('errors never carry the secret', async () => {
    const error = await startError(raw({ algorithms: ['HS256', 'RS256'], secret: SECRET }));
    expect(String(error)).not.toContain(SECRET);
  });
});
