import { createHmac, createPrivateKey, sign as nodeSign, X509Certificate } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { exportJWK, exportPKCS8, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTHeaderParameters } from 'jose';
import { expect } from 'vitest';
import { AuthError, type AuthFailure, type AuthSqlstate } from '../../src/auth/index.js';
import { configSchema, type JwtConfig } from '../../src/config/schema.js';

export const SECRET = 'a-test-secret-that-is-long-enough-0123456789';

/** A jwt config as the loader would produce it (defaults filled, schema rules applied). */
export const jwtConfig = (input: Record<string, unknown>): JwtConfig => configSchema.shape.jwt.parse(input);

export const now = (): number => Math.floor(Date.now() / 1000);
export const b64json = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

export interface TestKeys {
  alg: string;
  publicKey: CryptoKey;
  privateKey: CryptoKey;
  spki: string;
  pkcs8: string;
  jwk: JWK;
}

export async function testKeys(alg: string): Promise<TestKeys> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { alg, publicKey, privateKey, spki: await exportSPKI(publicKey), pkcs8: await exportPKCS8(privateKey), jwk: await exportJWK(publicKey) };
}

/** Signs `claims` with jose; `header` adds to (or overrides) { alg }. */
export function signed(
  claims: Record<string, unknown>,
  key: CryptoKey | Uint8Array,
  alg: string,
  header: Partial<JWTHeaderParameters> = {},
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, ...header }).sign(key);
}

export const secretKey = (secret: string = SECRET): Uint8Array => new TextEncoder().encode(secret);

/** An HS256 token over arbitrary header and payload text: a good signature on garbage. */
export function hs256Raw(headerText: string, payloadText: string, secret: string = SECRET): string {
  const input = `${Buffer.from(headerText).toString('base64url')}.${Buffer.from(payloadText).toString('base64url')}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** Awaits a rejection that must be an AuthError. */
export async function refusal(promise: Promise<unknown>): Promise<AuthError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AuthError) return error;
    throw error;
  }
  throw new Error('the token was accepted');
}

/** Every way an error can be printed, logged or serialized. */
export function renderings(error: Error): string[] {
  return [String(error), error.message, JSON.stringify(error), error.stack ?? '', inspect(error, { showHidden: true, depth: 8 })];
}

/** The error names the reason and SQLSTATE, and nothing of the token shows in any rendering. */
export function expectRefusal(error: AuthError, token: string, reason: AuthFailure, sqlstate: AuthSqlstate, message?: string | RegExp): void {
  expect([error.reason, error.sqlstate]).toEqual([reason, sqlstate]);
  expect(error.message).toMatch(/^pgfence: /);
  if (typeof message === 'string') expect(error.message).toBe(message);
  else if (message !== undefined) expect(error.message).toMatch(message);
  expect(error.cause).toBeUndefined();
  expectNoTokenIn(error, token);
}

export function expectNoTokenIn(error: Error, token: string): void {
  // The token, and each part long enough not to occur in ordinary text by chance.
  const pieces = [token, ...token.split('.')].filter((p) => p.length >= 8);
  for (const text of renderings(error)) for (const piece of pieces) expect(text).not.toContain(piece);
}

// ---- a JWKS endpoint on loopback ------------------------------------------------------------

export interface JwksServer {
  url: string;
  /** Requests served so far. */
  readonly hits: number;
  setKeys(keys: JWK[]): void;
  /** Answer with this status and body instead of the key set (null: back to the key set). */
  setFailure(failure: { status: number; body: string } | null): void;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  let current = keys;
  let failure: { status: number; body: string } | null = null;
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits += 1;
    if (failure !== null) {
      res.writeHead(failure.status, { 'content-type': 'application/json' }).end(failure.body);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: current }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    get hits() {
      return hits;
    },
    setKeys: (next) => {
      current = next;
    },
    setFailure: (next) => {
      failure = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback URL where nothing listens (a server was there a moment ago). */
export async function deadUrl(): Promise<string> {
  const server = await startJwksServer([]);
  await server.close();
  return server.url;
}

// ---- a self-signed X.509 certificate, built with a few lines of DER ---------------------------

function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}
const seq = (...parts: Buffer[]): Buffer => der(0x30, ...parts);
const ECDSA_WITH_SHA256 = seq(der(0x06, Buffer.from('2a8648ce3d040302', 'hex')));
const NAME = seq(der(0x31, seq(der(0x06, Buffer.from('550403', 'hex')), der(0x0c, Buffer.from('pgfence test')))));
const utcTime = (text: string): Buffer => der(0x17, Buffer.from(text));

/** A PEM certificate for an ES256 key pair, signed by itself. */
export function selfSignedCertificate(keys: TestKeys): string {
  const spkiDer = Buffer.from(keys.spki.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))),
    der(0x02, Buffer.from([0x01, 0x23, 0x45])),
    ECDSA_WITH_SHA256,
    NAME,
    seq(utcTime('250101000000Z'), utcTime('491231235959Z')),
    NAME,
    spkiDer,
  );
  const signature = nodeSign('sha256', tbs, createPrivateKey(keys.pkcs8));
  const certificate = seq(tbs, ECDSA_WITH_SHA256, der(0x03, Buffer.from([0]), signature));
  return new X509Certificate(certificate).toString();
}
