import { importPKCS8 } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTokenVerifier, MAX_TOKEN_LENGTH, type TokenVerifier } from '../../src/auth/index.js';
import {
  b64json,
  expectRefusal,
  hs256Raw,
  jwtConfig,
  now,
  refusal,
  SECRET,
  secretKey,
  selfSignedCertificate,
  signed,
  testKeys,
  type TestKeys,
} from './support.js';

const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ tenant_id: 'acme', sub: 'alice', exp: now() + 600, ...extra });

describe('valid tokens', () => {
  it.each(['HS256', 'HS384', 'HS512'])('%s with the shared secret', async (alg) => {
    const verifier = await createTokenVerifier(jwtConfig({ algorithms: [alg], secret: SECRET }));
    const identity = await verifier.verify(await signed(claims(), secretKey(), alg));
    expect(identity).toMatchObject({ tenantId: 'acme', user: 'alice' });
    expect(identity.claims).toMatchObject({ tenant_id: 'acme', sub: 'alice' });
    expect(Object.isFrozen(identity.claims)).toBe(true);
  });

  it.each([
    ['RS256', 'publicKey'],
    ['PS256', 'publicKey'],
    ['ES256', 'publicKey'],
    ['ES384', 'jwk'],
    ['EdDSA', 'publicKey'],
    ['EdDSA', 'jwk'],
    ['RS512', 'jwk'],
  ])('%s with a key given as %s', async (alg, source) => {
    const keys = await testKeys(alg);
    const cfg = jwtConfig({ algorithms: [alg], ...(source === 'jwk' ? { jwk: keys.jwk } : { publicKey: keys.spki }) });
    const verifier = await createTokenVerifier(cfg);
    await expect(verifier.verify(await signed(claims(), keys.privateKey, alg))).resolves.toMatchObject({ tenantId: 'acme', user: 'alice' });
  });

  it('ES256 with the key in an X.509 certificate', async () => {
    const keys = await testKeys('ES256');
    const verifier = await createTokenVerifier(jwtConfig({ algorithms: ['ES256'], publicKey: selfSignedCertificate(keys) }));
    await expect(verifier.verify(await signed(claims(), keys.privateKey, 'ES256'))).resolves.toMatchObject({ tenantId: 'acme' });
  });

  it('a token without exp is refused unless jwt.requireExp is off', async () => {
    const { exp: _exp, ...forever } = claims();
    const token = await signed(forever, secretKey(), 'HS256');
    const strict = await createTokenVerifier(jwtConfig({ secret: SECRET }));
    expectRefusal(await refusal(strict.verify(token)), token, 'invalid_claims', '28P01', 'pgfence: JWT has no "exp" claim');
    const lenient = await createTokenVerifier(jwtConfig({ secret: SECRET, requireExp: false }));
    await expect(lenient.verify(token)).resolves.toMatchObject({ tenantId: 'acme' });
  });

  it('one RSA key serves every RSA algorithm that is configured', async () => {
    const keys = await testKeys('RS256');
    const verifier = await createTokenVerifier(jwtConfig({ algorithms: ['RS256', 'PS256', 'RS384'], publicKey: keys.spki }));
    for (const alg of ['RS256', 'PS256', 'RS384']) {
      // A WebCrypto key is bound to one algorithm: the verifier imports the PEM once per algorithm.
      const privateKey = await importPKCS8(keys.pkcs8, alg);
      await expect(verifier.verify(await signed(claims(), privateKey, alg))).resolves.toMatchObject({ tenantId: 'acme' });
    }
  });
});

describe('refused tokens (HS256 configuration)', () => {
  let verifier: TokenVerifier;
  beforeAll(async () => {
    verifier = await createTokenVerifier(jwtConfig({ algorithms: ['HS256'], secret: SECRET, issuer: 'https://issuer.example', audience: 'pgfence' }));
  });
  const good = (extra: Record<string, unknown> = {}): Record<string, unknown> =>
    claims({ iss: 'https://issuer.example', aud: 'pgfence', ...extra });

  it('accepts the good token these cases start from', async () => {
    await expect(verifier.verify(await signed(good(), secretKey(), 'HS256'))).resolves.toMatchObject({ tenantId: 'acme' });
  });

  it('alg none, in any spelling, is refused', async () => {
    for (const alg of ['none', 'None', 'NONE']) {
      const token = `${b64json({ alg, typ: 'JWT' })}.${b64json(good())}.`;
      expectRefusal(await refusal(verifier.verify(token)), token, 'alg_not_allowed', '28P01', `pgfence: JWT algorithm "${alg}" is not allowed`);
    }
  });

  it('an algorithm outside jwt.algorithms is refused, even with the right secret', async () => {
    const token = await signed(good(), secretKey(), 'HS384');
    expectRefusal(await refusal(verifier.verify(token)), token, 'alg_not_allowed', '28P01', 'pgfence: JWT algorithm "HS384" is not allowed');
  });

  it('an alg that is not a plain name is not quoted back', async () => {
    const token = `${b64json({ alg: 'x"; DROP TABLE t; --' })}.${b64json(good())}.sig`;
    expectRefusal(await refusal(verifier.verify(token)), token, 'alg_not_allowed', '28P01', 'pgfence: JWT algorithm is not allowed');
  });

  it('a tampered payload byte breaks the signature', async () => {
    const token = await signed(good(), secretKey(), 'HS256');
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const bytes = Buffer.from(payload, 'base64url');
    const at = bytes.indexOf('acme') + 1;
    bytes[at] = 'b'.charCodeAt(0); // tenant_id "acme" → "abme"
    const tampered = `${header}.${bytes.toString('base64url')}.${signature}`;
    expectRefusal(await refusal(verifier.verify(tampered)), tampered, 'bad_signature', '28P01', 'pgfence: JWT signature is invalid');
  });

  it('a token signed with another secret is refused', async () => {
    const token = await signed(good(), secretKey('x'.repeat(40)), 'HS256');
    expectRefusal(await refusal(verifier.verify(token)), token, 'bad_signature', '28P01', 'pgfence: JWT signature is invalid');
  });

  it('an expired token is refused', async () => {
    const token = await signed(good({ exp: now() - 3600 }), secretKey(), 'HS256');
    expectRefusal(await refusal(verifier.verify(token)), token, 'expired', '28P01', 'pgfence: JWT has expired');
  });

  it('a token not valid for an hour yet is refused', async () => {
    const token = await signed(good({ nbf: now() + 3600 }), secretKey(), 'HS256');
    expectRefusal(await refusal(verifier.verify(token)), token, 'not_yet_valid', '28P01', 'pgfence: JWT is not valid yet');
  });

  it('exp and nbf within clockToleranceSec (30 s) are accepted', async () => {
    await expect(verifier.verify(await signed(good({ exp: now() - 10 }), secretKey(), 'HS256'))).resolves.toMatchObject({ tenantId: 'acme' });
    await expect(verifier.verify(await signed(good({ nbf: now() + 10 }), secretKey(), 'HS256'))).resolves.toMatchObject({ tenantId: 'acme' });
  });

  it('exp and nbf just beyond the tolerance are refused', async () => {
    const late = await signed(good({ exp: now() - 45 }), secretKey(), 'HS256');
    expectRefusal(await refusal(verifier.verify(late)), late, 'expired', '28P01');
    const early = await signed(good({ nbf: now() + 45 }), secretKey(), 'HS256');
    expectRefusal(await refusal(verifier.verify(early)), early, 'not_yet_valid', '28P01');
  });

  it('a wrong or missing issuer is refused', async () => {
    const wrong = await signed(good({ iss: 'https://evil.example' }), secretKey(), 'HS256');
    expectRefusal(await refusal(verifier.verify(wrong)), wrong, 'wrong_issuer', '28P01', 'pgfence: JWT issuer is not accepted');
    const { iss: _iss, ...noIssuer } = good();
    const missing = await signed(noIssuer, secretKey(), 'HS256');
    expectRefusal(await refusal(verifier.verify(missing)), missing, 'wrong_issuer', '28P01', 'pgfence: JWT has no "iss" claim');
  });

  it('a wrong or missing audience is refused; a list that includes ours is accepted', async () => {
    const wrong = await signed(good({ aud: 'another-service' }), secretKey(), 'HS256');
    expectRefusal(await refusal(verifier.verify(wrong)), wrong, 'wrong_audience', '28P01', 'pgfence: JWT audience is not accepted');
    const { aud: _aud, ...noAudience } = good();
    const missing = await signed(noAudience, secretKey(), 'HS256');
    expectRefusal(await refusal(verifier.verify(missing)), missing, 'wrong_audience', '28P01', 'pgfence: JWT has no "aud" claim');
    await expect(verifier.verify(await signed(good({ aud: ['other', 'pgfence'] }), secretKey(), 'HS256'))).resolves.toMatchObject({ tenantId: 'acme' });
  });

  it('a registered claim of the wrong type is refused', async () => {
    const token = await signed(good({ exp: 'tomorrow' }), secretKey(), 'HS256');
    expectRefusal(await refusal(verifier.verify(token)), token, 'invalid_claims', '28P01', 'pgfence: JWT "exp" claim is invalid');
  });
});

describe('the tenant claim', () => {
  let verifier: TokenVerifier;
  beforeAll(async () => {
    verifier = await createTokenVerifier(jwtConfig({ algorithms: ['HS256'], secret: SECRET }));
  });
  const token = (extra: Record<string, unknown>): Promise<string> => signed({ sub: 'alice', exp: now() + 600, ...extra }, secretKey(), 'HS256');

  it('a missing tenant claim is refused with 28000, naming the claim', async () => {
    const t = await token({});
    expectRefusal(await refusal(verifier.verify(t)), t, 'missing_tenant_claim', '28000', 'pgfence: JWT has no "tenant_id" claim');
  });

  it.each([
    ['a number', 42],
    ['null', null],
    ['a list', ['acme']],
    ['an object', { id: 'acme' }],
    ['SQL', 'acme; drop'],
    ['a path', '../x'],
    ['empty', ''],
    ['a leading digit', '1acme'],
    ['64 characters', 'a'.repeat(64)],
    ['a quote', 'acme"'],
    ['a newline', 'acme\n'],
  ])('a tenant claim that is %s is refused with 28000', async (_what, value) => {
    const t = await token({ tenant_id: value });
    expectRefusal(
      await refusal(verifier.verify(t)),
      t,
      'malformed_tenant_claim',
      '28000',
      'pgfence: JWT tenant claim must be a string matching ^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$',
    );
  });

  it('accepts the edges of the pattern', async () => {
    for (const id of ['a', '_', 'a'.repeat(63), 'Acme-2_x']) {
      await expect(verifier.verify(await token({ tenant_id: id }))).resolves.toMatchObject({ tenantId: id });
    }
  });

  it('a dotted claim path walks into nested objects', async () => {
    const nested = await createTokenVerifier(jwtConfig({ algorithms: ['HS256'], secret: SECRET, tenantClaim: 'app_metadata.tenant' }));
    await expect(nested.verify(await token({ app_metadata: { tenant: 'globex', role: 'x' } }))).resolves.toMatchObject({ tenantId: 'globex' });
    const missing = await token({ app_metadata: { role: 'x' } });
    expectRefusal(await refusal(nested.verify(missing)), missing, 'missing_tenant_claim', '28000', 'pgfence: JWT has no "app_metadata.tenant" claim');
    const notAnObject = await token({ app_metadata: 'globex' });
    expectRefusal(await refusal(nested.verify(notAnObject)), notAnObject, 'missing_tenant_claim', '28000');
    const numeric = await token({ app_metadata: { tenant: 7 } });
    expectRefusal(await refusal(nested.verify(numeric)), numeric, 'malformed_tenant_claim', '28000');
  });

  it('a namespaced claim whose name holds dots is read as one claim', async () => {
    const namespaced = await createTokenVerifier(jwtConfig({ algorithms: ['HS256'], secret: SECRET, tenantClaim: 'https://example.com/tenant' }));
    await expect(namespaced.verify(await token({ 'https://example.com/tenant': 'acme' }))).resolves.toMatchObject({ tenantId: 'acme' });
  });

  it('a claim path never reaches inherited properties', async () => {
    const inherited = await createTokenVerifier(jwtConfig({ algorithms: ['HS256'], secret: SECRET, tenantClaim: 'constructor.name' }));
    const t = await token({});
    expectRefusal(await refusal(inherited.verify(t)), t, 'missing_tenant_claim', '28000');
  });

  it('the user comes from jwt.userClaim and is dropped unless a string', async () => {
    const byEmail = await createTokenVerifier(jwtConfig({ algorithms: ['HS256'], secret: SECRET, userClaim: 'profile.email' }));
    await expect(byEmail.verify(await token({ tenant_id: 'acme', profile: { email: 'a@example.com' } }))).resolves.toMatchObject({
      user: 'a@example.com',
    });
    await expect(verifier.verify(await token({ tenant_id: 'acme', sub: 12 }))).resolves.toMatchObject({ user: undefined });
  });
});

describe('key confusion', () => {
  let rsa: TestKeys;
  beforeAll(async () => {
    rsa = await testKeys('RS256');
  });

  it('HS256 signed with the RSA public key PEM as the secret is refused by an RS256 configuration', async () => {
    const verifier = await createTokenVerifier(jwtConfig({ algorithms: ['RS256'], publicKey: rsa.spki }));
    for (const secret of [rsa.spki, rsa.spki.trim()]) {
      const forged = await signed(claims(), new TextEncoder().encode(secret), 'HS256');
      expectRefusal(await refusal(verifier.verify(forged)), forged, 'alg_not_allowed', '28P01', 'pgfence: JWT algorithm "HS256" is not allowed');
    }
  });

  it('the same forgery fails on the signature if the header lies and says RS256', async () => {
    const verifier = await createTokenVerifier(jwtConfig({ algorithms: ['RS256'], publicKey: rsa.spki }));
    const forged = await signed(claims(), new TextEncoder().encode(rsa.spki), 'HS256');
    const [, payload, signature] = forged.split('.') as [string, string, string];
    const relabelled = `${b64json({ alg: 'RS256' })}.${payload}.${signature}`;
    expectRefusal(await refusal(verifier.verify(relabelled)), relabelled, 'bad_signature', '28P01');
  });

  it('a configuration that mixes HS* with asymmetric algorithms is refused at start', async () => {
    // The schema refuses this too; the verifier does not rely on it.
    const mixed = { ...jwtConfig({ algorithms: ['RS256'], publicKey: rsa.spki }), algorithms: ['RS256', 'HS256'] as const, secret: SECRET };
    await expect(createTokenVerifier({ ...mixed, algorithms: [...mixed.algorithms] })).rejects.toThrow(/mixing HS\* with asymmetric/);
  });

  it('an ES256 token is refused by an RS256 configuration', async () => {
    const ec = await testKeys('ES256');
    const verifier = await createTokenVerifier(jwtConfig({ algorithms: ['RS256'], publicKey: rsa.spki }));
    const token = await signed(claims(), ec.privateKey, 'ES256');
    expectRefusal(await refusal(verifier.verify(token)), token, 'alg_not_allowed', '28P01', 'pgfence: JWT algorithm "ES256" is not allowed');
  });
});

describe('malformed input', () => {
  let verifier: TokenVerifier;
  beforeAll(async () => {
    verifier = await createTokenVerifier(jwtConfig({ algorithms: ['HS256'], secret: SECRET }));
  });

  it('an empty token is empty_password', async () => {
    expectRefusal(await refusal(verifier.verify('')), '', 'empty_password', '28P01', 'pgfence: no JWT was sent as the password');
  });

  // Token-shaped inputs are built here, not pasted: base64url of {"alg":"HS256"} and friends.
  const hs256Header = b64json({ alg: 'HS256' });
  it.each([
    ['plain text', 'hunter2-is-my-password'],
    ['three words', 'definitely.not.a-jwt'],
    ['two parts', `${hs256Header}.${b64json({ tenant_id: 'acme' })}`],
    ['a JWE-shaped token', `${b64json({ alg: 'dir' })}..aXY.Y2lwaGVy.dGFn`],
    ['whitespace', ` ${hs256Header}.e30.sig `],
    ['non-ASCII', `ë${hs256Header.slice(1)}.e30.sig`],
    ['NUL bytes', `${hs256Header}\0.e30.sig`],
    ['dots only', '..'],
    ['random bytes', Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 37 + 11) % 256)).toString('latin1')],
  ])('%s is malformed_token', async (_what, token) => {
    expectRefusal(await refusal(verifier.verify(token)), token, 'malformed_token', '28P01', /^pgfence: the password is not a well-formed JWT/);
  });

  it.each([
    ['a header that is not JSON', '{"alg":', '{"tenant_id":"acme"}'],
    ['a header that is a JSON list', '["HS256"]', '{"tenant_id":"acme"}'],
    ['a header without alg', '{"typ":"JWT"}', '{"tenant_id":"acme"}'],
    ['an unknown critical header', '{"alg":"HS256","crit":["x-pgfence"],"x-pgfence":1}', '{"tenant_id":"acme"}'],
    ['a payload that is not JSON (with a good signature)', '{"alg":"HS256"}', 'tenant_id=acme'],
    ['a payload that is a JSON list (with a good signature)', '{"alg":"HS256"}', '["acme"]'],
    ['a payload that is a JSON string (with a good signature)', '{"alg":"HS256"}', '"acme"'],
    ['a payload that is invalid UTF-8 (with a good signature)', '{"alg":"HS256"}', '\ud800'],
  ])('%s is malformed_token, not a crash', async (_what, header, payload) => {
    const token = hs256Raw(header, payload);
    expectRefusal(await refusal(verifier.verify(token)), token, 'malformed_token', '28P01');
  });

  it('a token over MAX_TOKEN_LENGTH is refused before it is decoded', async () => {
    const token = `${b64json({ alg: 'HS256' })}.${'A'.repeat(MAX_TOKEN_LENGTH)}.sig`;
    expectRefusal(await refusal(verifier.verify(token)), token, 'malformed_token', '28P01', /longer than 65536 characters/);
  });

  it('an empty signature is a bad signature', async () => {
    const good = await signed(claims(), secretKey(), 'HS256');
    const unsigned = good.slice(0, good.lastIndexOf('.') + 1);
    expectRefusal(await refusal(verifier.verify(unsigned)), unsigned, 'bad_signature', '28P01');
  });
});

describe('the cache of verified tokens', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers a token it verified from the cache, and checks every other token anew', async () => {
    const verifier = await createTokenVerifier(jwtConfig({ algorithms: ['HS256'], secret: SECRET }));
    const token = await signed(claims(), secretKey(), 'HS256');
    const first = await verifier.verify(token);
    const again = await verifier.verify(token);
    expect(again).toEqual(first);
    expect(verifier.cacheStats).toEqual({ hits: 1, misses: 1 });
    // Same claims, the signature changed in its last character: a new hash, checked, refused.
    const forged = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
    expectRefusal(await refusal(verifier.verify(forged)), forged, 'bad_signature', '28P01', 'pgfence: JWT signature is invalid');
    expect(verifier.cacheStats).toEqual({ hits: 1, misses: 2 });
  });

  it('never extends a token past its exp (with the leeway): an expired cached token is refused', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Date.now();
    const verifier = await createTokenVerifier(jwtConfig({ algorithms: ['HS256'], secret: SECRET, clockToleranceSec: 5 }));
    const token = await signed(claims({ exp: Math.floor(start / 1000) + 60 }), secretKey(), 'HS256');
    await verifier.verify(token);
    vi.setSystemTime(start + 60_000 + 4_000); // within exp + leeway: still good, from the cache
    await expect(verifier.verify(token)).resolves.toMatchObject({ tenantId: 'acme' });
    expect(verifier.cacheStats.hits).toBe(1);
    vi.setSystemTime(start + 60_000 + 6_000);
    expectRefusal(await refusal(verifier.verify(token)), token, 'expired', '28P01', 'pgfence: JWT has expired');
  });

  it('checks a token without exp again after ten minutes at most', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Date.now();
    const verifier = await createTokenVerifier(jwtConfig({ algorithms: ['HS256'], secret: SECRET, requireExp: false }));
    const token = await signed({ tenant_id: 'acme' }, secretKey(), 'HS256');
    await verifier.verify(token);
    vi.setSystemTime(start + 9 * 60_000);
    await verifier.verify(token);
    expect(verifier.cacheStats).toEqual({ hits: 1, misses: 1 });
    vi.setSystemTime(start + 11 * 60_000);
    await verifier.verify(token);
    expect(verifier.cacheStats).toEqual({ hits: 1, misses: 2 });
  });
});
