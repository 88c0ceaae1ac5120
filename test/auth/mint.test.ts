import { generateKeyPairSync } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import { createTokenVerifier, mintToken, parseDuration } from '../../src/auth/index.js';
import type { JwtConfig } from '../../src/config/schema.js';
import { jwtConfig, now, SECRET, testKeys } from './support.js';

describe('mintToken', () => {
  it('round-trips through verify with iat, exp, iss, aud, sub and the tenant', async () => {
    const cfg = jwtConfig({ algorithms: ['HS512'], secret: SECRET, issuer: 'pgfence', audience: 'app' });
    const token = await mintToken(cfg, { tenantId: 'acme', user: 'alice', ttlSeconds: 900, extraClaims: { role: 'reader' } });
    const identity = await (await createTokenVerifier(cfg)).verify(token);
    expect(identity).toMatchObject({ tenantId: 'acme', user: 'alice' });
    expect(identity.claims).toMatchObject({ tenant_id: 'acme', sub: 'alice', iss: 'pgfence', aud: 'app', role: 'reader' });
    const { iat, exp } = identity.claims as { iat: number; exp: number };
    expect(exp - iat).toBe(900);
    expect(Math.abs(iat - now())).toBeLessThanOrEqual(2);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'HS512', typ: 'JWT' });
  });

  it('leaves out sub, iss and aud when there is nothing to put there', async () => {
    const cfg = jwtConfig({ algorithms: ['HS256'], secret: SECRET });
    const claims = decodeJwt(await mintToken(cfg, { tenantId: 'acme', ttlSeconds: 60 }));
    expect(Object.keys(claims).sort()).toEqual(['exp', 'iat', 'tenant_id']);
    await expect((await createTokenVerifier(cfg)).verify(await mintToken(cfg, { tenantId: 'acme', ttlSeconds: 60 }))).resolves.toMatchObject({
      user: undefined,
    });
  });

  it('nests a dotted tenant claim and keeps what extraClaims put beside it', async () => {
    const cfg = jwtConfig({ algorithms: ['HS256'], secret: SECRET, tenantClaim: 'app_metadata.org.tenant' });
    const token = await mintToken(cfg, { tenantId: 'globex', ttlSeconds: 60, extraClaims: { app_metadata: { plan: 'pro', org: { tenant: 'x' } } } });
    expect(decodeJwt(token)).toMatchObject({ app_metadata: { plan: 'pro', org: { tenant: 'globex' } } });
    await expect((await createTokenVerifier(cfg)).verify(token)).resolves.toMatchObject({ tenantId: 'globex' });
  });

  it('puts the user at jwt.userClaim too when that is not sub', async () => {
    const cfg = jwtConfig({ algorithms: ['HS256'], secret: SECRET, userClaim: 'email' });
    const token = await mintToken(cfg, { tenantId: 'acme', user: 'a@example.com', ttlSeconds: 60 });
    expect(decodeJwt(token)).toMatchObject({ sub: 'a@example.com', email: 'a@example.com' });
    await expect((await createTokenVerifier(cfg)).verify(token)).resolves.toMatchObject({ user: 'a@example.com' });
  });

  it.each(['RS256', 'PS384', 'ES256', 'ES512', 'EdDSA'])('signs %s with the PKCS#8 private key', async (alg) => {
    const keys = await testKeys(alg);
    const cfg = jwtConfig({ algorithms: [alg], publicKey: keys.spki, privateKey: keys.pkcs8 });
    const token = await mintToken(cfg, { tenantId: 'acme', user: 'bob', ttlSeconds: 60 });
    await expect((await createTokenVerifier(cfg)).verify(token)).resolves.toMatchObject({ tenantId: 'acme', user: 'bob' });
  });

  it('says which signing key is missing', async () => {
    const hs = { ...jwtConfig({ algorithms: ['HS256'], secret: SECRET }), secret: undefined } as JwtConfig;
    await expect(mintToken(hs, { tenantId: 'acme', ttlSeconds: 60 })).rejects.toThrow(
      'cannot mint a token: jwt.secret is not configured (needed to sign HS256)',
    );
    const keys = await testKeys('ES256');
    await expect(mintToken(jwtConfig({ algorithms: ['ES256'], publicKey: keys.spki }), { tenantId: 'acme', ttlSeconds: 60 })).rejects.toThrow(
      'cannot mint a token: jwt.privateKey is not configured (a PKCS#8 PEM private key is needed to sign ES256)',
    );
  });

  it('explains a private key in the older PKCS#1 form, without echoing it', async () => {
    const { privateKey: pem } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    });
    const keys = await testKeys('RS256');
    const error = await mintToken(jwtConfig({ algorithms: ['RS256'], publicKey: keys.spki, privateKey: pem }), { tenantId: 'acme', ttlSeconds: 60 }).catch(
      (e: Error) => e,
    );
    expect((error as Error).message).toMatch(/not a PKCS#8 PEM .* for RS256; .*openssl pkcs8 -topk8 -nocrypt/);
    expect(String(error)).not.toContain(pem.split('\n')[1] as string);
  });

  it('refuses a private key of the wrong type', async () => {
    const ec = await testKeys('ES256');
    const rsa = await testKeys('RS256');
    await expect(mintToken(jwtConfig({ algorithms: ['RS256'], publicKey: rsa.spki, privateKey: ec.pkcs8 }), { tenantId: 'a', ttlSeconds: 60 })).rejects.toThrow(
      /jwt\.privateKey is not a PKCS#8 PEM .* key for RS256$/,
    );
  });

  it('refuses a tenant id the verifier would refuse, and a lifetime that is not positive', async () => {
    const cfg = jwtConfig({ algorithms: ['HS256'], secret: SECRET });
    await expect(mintToken(cfg, { tenantId: 'acme; drop', ttlSeconds: 60 })).rejects.toThrow(/must match/);
    await expect(mintToken(cfg, { tenantId: 'a'.repeat(64), ttlSeconds: 60 })).rejects.toThrow(/must match/);
    for (const ttl of [0, -5, 1.5, Number.NaN]) {
      await expect(mintToken(cfg, { tenantId: 'acme', ttlSeconds: ttl })).rejects.toThrow(/positive whole number of seconds/);
    }
  });

  it('with parseDuration, as `pgfence token --ttl 15m` does', async () => {
    const cfg = jwtConfig({ algorithms: ['HS256'], secret: SECRET });
    const claims = decodeJwt(await mintToken(cfg, { tenantId: 'acme', ttlSeconds: parseDuration('15m') }));
    expect((claims.exp as number) - (claims.iat as number)).toBe(900);
  });
});
