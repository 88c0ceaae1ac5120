import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTokenVerifier } from '../../src/auth/index.js';
import { deadUrl, expectRefusal, jwtConfig, now, refusal, signed, startJwksServer, testKeys, type JwksServer, type TestKeys } from './support.js';

let one: TestKeys;
let two: TestKeys;
let ec: TestKeys;
beforeAll(async () => {
  [one, two, ec] = await Promise.all([testKeys('RS256'), testKeys('RS256'), testKeys('ES256')]);
});

const servers: JwksServer[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/**
 * jose times the JWKS cache and cooldown with Date.now(); faking Date alone moves them when the
 * test says (fetch, sockets and signing keep real timers).
 */
const fakeClock = (): void => void vi.useFakeTimers({ toFake: ['Date'] });
async function serve(...published: Array<[TestKeys, string | undefined]>): Promise<JwksServer> {
  const server = await startJwksServer(published.map(([k, kid]) => ({ ...k.jwk, ...(kid === undefined ? {} : { kid }), use: 'sig' })));
  servers.push(server);
  return server;
}

const claims = { tenant_id: 'acme', sub: 'alice' };
const token = (keys: TestKeys, kid: string | undefined, alg = 'RS256'): Promise<string> =>
  signed({ ...claims, exp: now() + 600 }, keys.privateKey, alg, kid === undefined ? {} : { kid });
const verifierFor = (url: string, cacheMaxAgeMs = 600_000, algorithms = ['RS256']) =>
  createTokenVerifier(jwtConfig({ algorithms, jwksUrl: url, jwksCacheMaxAgeMs: cacheMaxAgeMs }));

describe('keys from a JWKS endpoint', () => {
  it('verifies a token by its kid, fetching the set once and caching it', async () => {
    const server = await serve([one, 'k1'], [two, 'k2']);
    const verifier = await verifierFor(server.url);
    expect(server.hits).toBe(0); // nothing is fetched before the first token
    await expect(verifier.verify(await token(one, 'k1'))).resolves.toMatchObject({ tenantId: 'acme', user: 'alice' });
    await expect(verifier.verify(await token(two, 'k2'))).resolves.toMatchObject({ tenantId: 'acme' });
    await Promise.all(Array.from({ length: 5 }, async () => verifier.verify(await token(one, 'k1'))));
    expect(server.hits).toBe(1);
  });

  it('concurrent first tokens share one fetch', async () => {
    const server = await serve([one, 'k1']);
    const verifier = await verifierFor(server.url);
    const tokens = await Promise.all(Array.from({ length: 8 }, () => token(one, 'k1')));
    await Promise.all(tokens.map((t) => verifier.verify(t)));
    expect(server.hits).toBe(1);
  });

  it('an unknown kid is no_matching_key, and does not refetch inside the cooldown', async () => {
    const server = await serve([one, 'k1']);
    const verifier = await verifierFor(server.url);
    await verifier.verify(await token(one, 'k1'));
    const unknown = await token(two, 'k9');
    expectRefusal(await refusal(verifier.verify(unknown)), unknown, 'no_matching_key', '28P01', 'pgfence: no key in the JWKS matches the JWT');
    expectRefusal(await refusal(verifier.verify(unknown)), unknown, 'no_matching_key', '28P01');
    expect(server.hits).toBe(1);
  });

  it('a token signed by a key that is not the one its kid names is a bad signature', async () => {
    const server = await serve([one, 'k1']);
    const verifier = await verifierFor(server.url);
    const forged = await token(two, 'k1');
    expectRefusal(await refusal(verifier.verify(forged)), forged, 'bad_signature', '28P01');
  });

  it('a kid whose key is of another type than the alg is no_matching_key', async () => {
    const server = await serve([ec, 'k1']);
    const verifier = await verifierFor(server.url);
    const t = await token(one, 'k1');
    expectRefusal(await refusal(verifier.verify(t)), t, 'no_matching_key', '28P01');
  });

  it('follows a key rotation once the cooldown (≤ cache age) has passed, and drops retired keys', async () => {
    fakeClock();
    const server = await serve([one, 'k1']);
    const verifier = await verifierFor(server.url, 300);
    await verifier.verify(await token(one, 'k1'));
    server.setKeys([{ ...two.jwk, kid: 'k2' }]);
    const rotated = await token(two, 'k2');
    // Just fetched: a new kid does not trigger a refetch yet, nor 1 ms before the cooldown ends.
    expectRefusal(await refusal(verifier.verify(rotated)), rotated, 'no_matching_key', '28P01');
    vi.advanceTimersByTime(299);
    expectRefusal(await refusal(verifier.verify(rotated)), rotated, 'no_matching_key', '28P01');
    expect(server.hits).toBe(1);
    vi.advanceTimersByTime(51);
    await expect(verifier.verify(rotated)).resolves.toMatchObject({ tenantId: 'acme' });
    const retired = await token(one, 'k1');
    expectRefusal(await refusal(verifier.verify(retired)), retired, 'no_matching_key', '28P01');
    expect(server.hits).toBe(2);
  });

  it('several keys fit a token without a kid: each is tried', async () => {
    const server = await serve([one, undefined], [two, undefined]);
    const verifier = await verifierFor(server.url);
    await expect(verifier.verify(await token(two, undefined))).resolves.toMatchObject({ tenantId: 'acme' });
    await expect(verifier.verify(await token(one, undefined))).resolves.toMatchObject({ tenantId: 'acme' });
    const stranger = await testKeys('RS256');
    const t = await token(stranger, undefined);
    expectRefusal(await refusal(verifier.verify(t)), t, 'bad_signature', '28P01');
  });

  it('JWKS server down: jwks_unavailable with 28000', async () => {
    const verifier = await verifierFor(await deadUrl());
    const t = await token(one, 'k1');
    expectRefusal(
      await refusal(verifier.verify(t)),
      t,
      'jwks_unavailable',
      '28000',
      'pgfence: the signing keys (JWKS) could not be fetched (the endpoint could not be reached)',
    );
  });

  it('an error status, a body that is not JSON, or not a key set: jwks_unavailable', async () => {
    const server = await serve([one, 'k1']);
    const t = await token(one, 'k1');
    const cases: Array<[{ status: number; body: string }, string]> = [
      [{ status: 500, body: '{}' }, 'the endpoint did not answer 200 OK'],
      [{ status: 200, body: '<html>' }, 'the response is not JSON'],
      [{ status: 200, body: '{"keys": 3}' }, 'the response is not a usable JWK Set'],
    ];
    for (const [failure, why] of cases) {
      server.setFailure(failure);
      const verifier = await verifierFor(server.url);
      expectRefusal(await refusal(verifier.verify(t)), t, 'jwks_unavailable', '28000', `pgfence: the signing keys (JWKS) could not be fetched (${why})`);
    }
  });

  it('a set that publishes a private key is not used', async () => {
    const { exportJWK } = await import('jose');
    const server = await startJwksServer([{ ...(await exportJWK(one.privateKey)), kid: 'k1' }]);
    servers.push(server);
    const verifier = await verifierFor(server.url);
    const t = await token(one, 'k1');
    expectRefusal(await refusal(verifier.verify(t)), t, 'jwks_unavailable', '28000', /the response is not a usable JWK Set/);
  });

  it('keeps serving cached keys while the endpoint is down, and fails closed once they are stale', async () => {
    fakeClock();
    const server = await serve([one, 'k1']);
    const verifier = await verifierFor(server.url, 300);
    const t = await token(one, 'k1');
    await verifier.verify(t);
    server.setFailure({ status: 503, body: '' });
    await expect(verifier.verify(t)).resolves.toMatchObject({ tenantId: 'acme' });
    vi.advanceTimersByTime(299);
    await expect(verifier.verify(t)).resolves.toMatchObject({ tenantId: 'acme' });
    vi.advanceTimersByTime(51);
    expectRefusal(await refusal(verifier.verify(t)), t, 'jwks_unavailable', '28000');
    server.setFailure(null);
    await expect(verifier.verify(t)).resolves.toMatchObject({ tenantId: 'acme' });
  });

  it('still refuses an algorithm outside jwt.algorithms before asking the JWKS', async () => {
    const server = await serve([ec, 'k1']);
    const verifier = await verifierFor(server.url);
    const t = await token(ec, 'k1', 'ES256');
    expectRefusal(await refusal(verifier.verify(t)), t, 'alg_not_allowed', '28P01', 'pgfence: JWT algorithm "ES256" is not allowed');
    expect(server.hits).toBe(0);
  });
});
