import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { AuthError, createTokenVerifier, type TokenVerifier } from '../../src/auth/index.js';
import { expectNoTokenIn, hs256Raw, jwtConfig, SECRET } from './support.js';

let verifier: TokenVerifier;
beforeAll(async () => {
  verifier = await createTokenVerifier(jwtConfig({ algorithms: ['HS256'], secret: SECRET, audience: 'pgfence' }));
});

/** Verifies; the only failure allowed is an AuthError that shows nothing of the token. */
async function outcome(token: string): Promise<'accepted' | AuthError> {
  try {
    await verifier.verify(token);
    return 'accepted';
  } catch (error) {
    expect(error).toBeInstanceOf(AuthError);
    if (token.length >= 16) expectNoTokenIn(error as AuthError, token);
    return error as AuthError;
  }
}

const base64url = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('')), maxLength: 60 });
const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v));

describe('fuzzing verify (time-bounded)', () => {
  it('arbitrary strings are refused with an AuthError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'binary', maxLength: 300 }), async (token) => {
        expect(await outcome(token)).toBeInstanceOf(AuthError);
      }),
      { numRuns: 500, interruptAfterTimeLimit: 10_000 },
    );
  });

  it('three base64url parts of anything are refused with an AuthError', async () => {
    await fc.assert(
      fc.asyncProperty(base64url, base64url, base64url, async (a, b, c) => {
        expect(await outcome(`${a}.${b}.${c}`)).toBeInstanceOf(AuthError);
      }),
      { numRuns: 500, interruptAfterTimeLimit: 10_000 },
    );
  });

  it('correctly signed random headers and payloads never crash, and a token is accepted only with a good tenant', async () => {
    const header = fc.oneof(json, fc.constant('{"alg":"HS256"}'), fc.record({ alg: fc.constant('HS256'), kid: fc.string(), crit: fc.array(fc.string()) }).map((h) => JSON.stringify(h)));
    const payload = fc.oneof(
      json,
      fc
        .record(
          {
            tenant_id: fc.oneof(fc.string(), fc.integer(), fc.constant('acme')),
            aud: fc.oneof(fc.constant('pgfence'), fc.string(), fc.array(fc.string())),
            exp: fc.oneof(fc.integer(), fc.constant(4_102_444_800), fc.string()),
            nbf: fc.oneof(fc.integer(), fc.double()),
          },
          { requiredKeys: [] },
        )
        .map((p) => JSON.stringify(p)),
    );
    await fc.assert(
      fc.asyncProperty(header, payload, async (h, p) => {
        const result = await outcome(hs256Raw(h, p));
        if (result === 'accepted') {
          const claims = JSON.parse(p) as Record<string, unknown>;
          expect(claims['tenant_id']).toMatch(/^[a-zA-Z_][a-zA-Z0-9_-]{0,62}$/);
        }
      }),
      { numRuns: 500, interruptAfterTimeLimit: 10_000 },
    );
  });
});
