import { PassThrough } from 'node:stream';
import { SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

let proxy: TestProxy;
const logLines: string[] = [];

beforeAll(async () => {
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => logLines.push(...chunk.toString().split('\n').filter(Boolean)));
  proxy = await startTestProxy({}, { logTo: stream });
});
afterAll(async () => {
  await proxy?.close();
});

const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');

/** A token with these claims, valid for an hour unless they say otherwise (`exp: undefined` leaves it out). */
async function sign(claims: Record<string, unknown>, opts: { secret?: string; alg?: string } = {}): Promise<string> {
  const secret = new TextEncoder().encode(opts.secret ?? (proxy.config.jwt.secret as string));
  const withExpiry = Object.fromEntries(Object.entries({ exp: now() + 3600, ...claims }).filter(([, v]) => v !== undefined));
  return new SignJWT(withExpiry).setProtectedHeader({ alg: opts.alg ?? 'HS256' }).sign(secret);
}

async function connectWith(password: string): Promise<pg.DatabaseError> {
  const client = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'someone', database: 'app', password });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    return error as pg.DatabaseError;
  } finally {
    await client.end().catch(() => undefined);
  }
  throw new Error('connection was accepted');
}

const now = (): number => Math.floor(Date.now() / 1000);

describe('authentication through pgfence', () => {
  const cases: Array<[string, () => Promise<string>, string, RegExp]> = [
    ['alg none', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ tenant_id: 'acme', iss: 'pgfence-test' })}.`, '28P01', /algorithm|well-formed/],
    ['bad signature', () => sign({ tenant_id: 'acme', iss: 'pgfence-test' }, { secret: 'x'.repeat(40) }), '28P01', /signature is invalid/],
    ['HS384 where only HS256 is allowed', () => sign({ tenant_id: 'acme', iss: 'pgfence-test' }, { alg: 'HS384' }), '28P01', /algorithm "HS384" is not allowed/],
    ['expired', () => sign({ tenant_id: 'acme', iss: 'pgfence-test', exp: now() - 3600 }), '28P01', /has expired/],
    ['not yet valid', () => sign({ tenant_id: 'acme', iss: 'pgfence-test', nbf: now() + 3600 }), '28P01', /not valid yet/],
    ['wrong issuer', () => sign({ tenant_id: 'acme', iss: 'someone-else' }), '28P01', /issuer is not accepted/],
    ['missing tenant claim', () => sign({ iss: 'pgfence-test' }), '28000', /has no "tenant_id" claim/],
    ['no expiry', () => sign({ tenant_id: 'acme', iss: 'pgfence-test', exp: undefined }), '28P01', /has no "exp" claim/],
    ['malformed tenant claim', () => sign({ tenant_id: 'acme; drop table x', iss: 'pgfence-test' }), '28000', /tenant claim must be a string/],
    ['numeric tenant claim', () => sign({ tenant_id: 42, iss: 'pgfence-test' }), '28000', /tenant claim must be a string/],
    ['garbage', async () => 'definitely.not.a-jwt', '28P01', /well-formed/],
    ['unknown tenant', () => proxy.token('hooli'), '28000', /unknown tenant "hooli"/],
    ['suspended tenant', () => proxy.token('initech'), '28000', /tenant "initech" is suspended/],
  ];

  it.each(cases)('%s is refused with a FATAL that says why', async (_name, token, code, message) => {
    const error = await connectWith(await token());
    expect(error.severity).toBe('FATAL');
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });

  it('an empty password is refused', async () => {
    const error = await connectWith('');
    expect(error.code).toBe('28P01');
  });

  it('never writes a token into the log', async () => {
    const secretToken = await sign({ tenant_id: 'acme', iss: 'someone-else' });
    await connectWith(secretToken);
    const good = await proxy.token('acme');
    const client = await proxy.connect('acme', { password: good });
    await client.query('SELECT * FROM tenant_globex.secrets').catch(() => undefined);
    await client.end();
    expect(logLines.length).toBeGreaterThan(3);
    const all = logLines.join('\n');
    expect(all).toContain('authentication failed');
    expect(all).toContain('statement_rejected');
    for (const token of [secretToken, good]) {
      expect(all).not.toContain(token);
      expect(all).not.toContain(token.split('.')[2] as string);
    }
    expect(all).not.toContain(proxy.config.jwt.secret as string);
  });
});
