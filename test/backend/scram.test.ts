import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BackendConnection, type BackendTarget } from '../../src/backend/connection.js';
import { MAX_SCRAM_ITERATIONS, ScramClient } from '../../src/backend/scram.js';
import { AUTHENTICATION_OK, backendKeyData, message, parameterStatus, readyForQuery } from '../../src/protocol/build.js';

/** RFC 7677 section 3: SCRAM-SHA-256 for user "user", password "pencil". */
const RFC7677 = {
  password: 'pencil',
  clientFirstBare: 'n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinalWithoutProof: 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  proof: 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverSignature: '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
  serverNonceTail: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: 'W22ZaJ0SNY7soEsUEjb6gQ==',
  iterations: 4096,
};

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** What a SCRAM server expects for one AuthMessage (RFC 5802 section 3), computed independently of pg. */
function expectedFor(password: string, salt: string, iterations: number, authMessage: string): { proof: string; serverSignature: string } {
  const salted = pbkdf2Sync(password, Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  const signature = hmac(createHash('sha256').update(clientKey).digest(), authMessage);
  const proof = Buffer.from(clientKey.map((b, i) => b ^ (signature[i] as number)));
  return { proof: proof.toString('base64'), serverSignature: hmac(hmac(salted, 'Server Key'), authMessage).toString('base64') };
}

/**
 * The server side of one exchange with `client`, as Postgres runs it: the RFC's server nonce, salt
 * and iteration count (or the given ones), and the password the server's verifier was made from.
 * pg sends the user name as "*", so the RFC's own client-final cannot be reproduced byte for byte;
 * the messages are the RFC's with that one difference.
 */
function scramServer(client: ScramClient, opts: { iterations?: number; password?: string; clientFirst?: string } = {}) {
  const clientFirst = opts.clientFirst ?? client.initialResponse();
  const match = /^n,,(n=\*,r=([^,]+))$/.exec(clientFirst);
  if (match === null) throw new Error(`unexpected client-first message: ${clientFirst}`);
  const clientFirstBare = match[1] as string;
  const clientNonce = match[2] as string;
  const nonce = clientNonce + RFC7677.serverNonceTail;
  const serverFirst = `r=${nonce},s=${RFC7677.salt},i=${opts.iterations ?? RFC7677.iterations}`;
  const clientFinalWithoutProof = `c=biws,r=${nonce}`;
  const authMessage = `${clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
  const expected = (): { proof: string; serverSignature: string } =>
    expectedFor(opts.password ?? RFC7677.password, RFC7677.salt, opts.iterations ?? RFC7677.iterations, authMessage);
  return {
    clientNonce,
    serverFirst,
    clientFinal: () => `${clientFinalWithoutProof},p=${expected().proof}`,
    serverFinal: () => `v=${expected().serverSignature}`,
  };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the in-test SCRAM server', () => {
  it('reproduces RFC 7677 test vector', () => {
    const authMessage = `${RFC7677.clientFirstBare},${RFC7677.serverFirst},${RFC7677.clientFinalWithoutProof}`;
    expect(expectedFor(RFC7677.password, RFC7677.salt, RFC7677.iterations, authMessage)).toEqual({
      proof: RFC7677.proof,
      serverSignature: RFC7677.serverSignature,
    });
  });
});

describe('ScramClient', () => {
  it('answers with the proof the server expects and accepts the true server signature', async () => {
    const client = new ScramClient(['SCRAM-SHA-256'], RFC7677.password);
    const server = scramServer(client);
    expect(await client.finalResponse(server.serverFirst)).toBe(server.clientFinal());
    expect(() => client.verifyServerFinal(server.serverFinal())).not.toThrow();
  });

  it('sends the user as "*" with a fresh nonce and no channel binding, even when -PLUS is offered', () => {
    const a = new ScramClient(['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'], 'pencil');
    const b = new ScramClient(['SCRAM-SHA-256'], 'pencil');
    expect(a.mechanism).toBe('SCRAM-SHA-256');
    expect(a.initialResponse()).toMatch(/^n,,n=\*,r=[A-Za-z0-9+/]{24}$/);
    expect(scramServer(a).clientNonce).not.toBe(scramServer(b).clientNonce);
  });

  it('refuses a server that offers no SCRAM-SHA-256', () => {
    expect(() => new ScramClient(['SCRAM-SHA-256-PLUS'], 'pencil')).toThrow('unsupported SASL mechanisms: SCRAM-SHA-256-PLUS');
  });

  it('SASLpreps the password: non-ASCII spaces mapped, soft hyphens removed, NFKC', async () => {
    // U+2168 ROMAN NUMERAL NINE is "IX" under NFKC; U+00A0 is a non-ASCII space; U+00AD maps to nothing.
    const client = new ScramClient(['SCRAM-SHA-256'], '\u2168\u00a0pen\u00adcil');
    const server = scramServer(client, { password: 'IX pencil' });
    expect(await client.finalResponse(server.serverFirst)).toBe(server.clientFinal());
  });

  it('refuses a wrong server signature', async () => {
    const client = new ScramClient(['SCRAM-SHA-256'], RFC7677.password);
    const server = scramServer(client);
    await client.finalResponse(server.serverFirst);
    // The RFC's signature is for user "user": right password and salt, another AuthMessage.
    expect(() => client.verifyServerFinal(`v=${RFC7677.serverSignature}`)).toThrow('server signature does not match');
    const other = scramServer(client, { password: 'pencil2' });
    expect(() => client.verifyServerFinal(other.serverFinal())).toThrow('server signature does not match');
    expect(() => client.verifyServerFinal('e=invalid-proof')).toThrow('invalid-proof');
    expect(() => client.verifyServerFinal('x=1')).toThrow('server signature is missing');
  });

  it('refuses a server-final message before the proof was sent', () => {
    const client = new ScramClient(['SCRAM-SHA-256'], RFC7677.password);
    expect(() => client.verifyServerFinal(`v=${RFC7677.serverSignature}`)).toThrow('Last message was not SASLResponse');
  });

  it.each([MAX_SCRAM_ITERATIONS + 1, 2 ** 31 - 1, 1e20])('refuses %d iterations without computing anything', async (iterations) => {
    const derive = vi.spyOn(crypto.subtle, 'deriveBits');
    const importKey = vi.spyOn(crypto.subtle, 'importKey');
    const client = new ScramClient(['SCRAM-SHA-256'], RFC7677.password);
    const serverFirst = scramServer(client).serverFirst.replace(/i=\d+$/, `i=${BigInt(iterations)}`);
    await expect(client.finalResponse(serverFirst)).rejects.toThrow(`above pgfence's limit of ${MAX_SCRAM_ITERATIONS}`);
    expect(derive).not.toHaveBeenCalled();
    expect(importKey).not.toHaveBeenCalled();
  });

  it('computes exactly MAX_SCRAM_ITERATIONS', async () => {
    // PBKDF2 itself is stubbed: this checks the boundary, not half a second of hashing.
    const derive = vi.spyOn(crypto.subtle, 'deriveBits').mockResolvedValue(new ArrayBuffer(32));
    const client = new ScramClient(['SCRAM-SHA-256'], RFC7677.password);
    await client.finalResponse(scramServer(client, { iterations: MAX_SCRAM_ITERATIONS }).serverFirst);
    expect(derive).toHaveBeenCalledTimes(1);
    expect(derive.mock.calls[0]?.[0]).toMatchObject({ name: 'PBKDF2', iterations: MAX_SCRAM_ITERATIONS });
  });

  const malformed: Array<[string, (nonce: string) => string]> = [
    ['empty', () => ''],
    ['not attributes', () => 'hello'],
    ['no iteration count', (n) => `r=${n}x,s=${RFC7677.salt}`],
    ['a zero iteration count', (n) => `r=${n}x,s=${RFC7677.salt},i=0`],
    ['a negative iteration count', (n) => `r=${n}x,s=${RFC7677.salt},i=-4096`],
    ['a fractional iteration count', (n) => `r=${n}x,s=${RFC7677.salt},i=4096.5`],
    ['a textual iteration count', (n) => `r=${n}x,s=${RFC7677.salt},i=many`],
    ['no salt', (n) => `r=${n}x,i=4096`],
    ['a salt that is not base64', (n) => `r=${n}x,s=not*base64,i=4096`],
    ['no nonce', () => `s=${RFC7677.salt},i=4096`],
    ['a nonce that does not extend the client nonce', () => `r=${RFC7677.serverNonceTail},s=${RFC7677.salt},i=4096`],
    ['the client nonce alone', (n) => `r=${n},s=${RFC7677.salt},i=4096`],
  ];
  it.each(malformed)('refuses a server-first message with %s', async (_, serverFirst) => {
    const derive = vi.spyOn(crypto.subtle, 'deriveBits');
    const client = new ScramClient(['SCRAM-SHA-256'], RFC7677.password);
    await expect(client.finalResponse(serverFirst(scramServer(client).clientNonce))).rejects.toThrow(/^SASL: /);
    expect(derive).not.toHaveBeenCalled();
  });

  it('does not block the event loop while PBKDF2 runs', async () => {
    const events: string[] = [];
    const deriveBits = crypto.subtle.deriveBits.bind(crypto.subtle);
    vi.spyOn(crypto.subtle, 'deriveBits').mockImplementation(async (...args) => {
      events.push('PBKDF2 started');
      const bits = await deriveBits(...args);
      events.push('PBKDF2 done');
      return bits;
    });
    const client = new ScramClient(['SCRAM-SHA-256'], RFC7677.password);
    const server = scramServer(client, { iterations: 200_000 });
    const proof = client.finalResponse(server.serverFirst).then((response) => {
      events.push('proof');
      return response;
    });
    setImmediate(() => events.push('event loop turned'));
    const response = await proof;
    expect(events).toEqual(['PBKDF2 started', 'event loop turned', 'PBKDF2 done', 'proof']);
    expect(response).toBe(server.clientFinal());
  });
});

/** A Postgres stand-in for one connection: reads frontend messages, writes what the test says. */
class FakeServer {
  private readonly server = net.createServer((socket) => this.accept(socket));
  private socket: net.Socket | null = null;
  private buffered = Buffer.alloc(0);
  private startupSeen = false;
  private readonly messages: Array<{ type: string; body: Buffer }> = [];
  private wake: (() => void) | null = null;
  closed = false;

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  private accept(socket: net.Socket): void {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      for (;;) {
        const header = this.startupSeen ? 5 : 4;
        if (this.buffered.length < header) break;
        const end = header - 4 + this.buffered.readInt32BE(header - 4);
        if (this.buffered.length < end) break;
        if (this.startupSeen) this.messages.push({ type: String.fromCharCode(this.buffered[0] as number), body: this.buffered.subarray(5, end) });
        else this.messages.push({ type: 'startup', body: this.buffered.subarray(4, end) });
        this.startupSeen = true;
        this.buffered = this.buffered.subarray(end);
      }
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
  }

  /** The next message from the client; null once it has closed the connection. */
  async next(): Promise<{ type: string; body: Buffer } | null> {
    while (this.messages.length === 0 && !this.closed) await new Promise<void>((resolve) => (this.wake = resolve));
    return this.messages.shift() ?? null;
  }

  write(...messages: Buffer[]): void {
    this.socket?.write(Buffer.concat(messages));
  }

  async close(): Promise<void> {
    this.socket?.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const authSasl = message('R', Buffer.concat([Buffer.from([0, 0, 0, 10]), Buffer.from('SCRAM-SHA-256\0\0')]));
const saslContinue = (data: string): Buffer => message('R', Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from(data)]));
const saslFinal = (data: string): Buffer => message('R', Buffer.concat([Buffer.from([0, 0, 0, 12]), Buffer.from(data)]));

/** The client-first message inside SASLInitialResponse: mechanism, NUL, int32 length, data. */
function clientFirstOf(body: Buffer): string {
  const nul = body.indexOf(0);
  expect(body.subarray(0, nul).toString()).toBe('SCRAM-SHA-256');
  return body.subarray(nul + 5).toString();
}

function targetAt(port: number): BackendTarget {
  return { host: '127.0.0.1', port, database: 'app', user: 'pgfence', password: RFC7677.password, sslmode: 'disable', sslRootCert: undefined };
}

describe('backend handshake over SCRAM', () => {
  it('holds messages that arrive while the proof is computed and handles them after it', async () => {
    const fake = new FakeServer();
    const port = await fake.listen();
    const connecting = BackendConnection.connect(targetAt(port), { connectTimeoutMs: 10_000, maxMessageBytes: 1 << 20, maxPreparedStatements: 200 });
    try {
      expect((await fake.next())?.type).toBe('startup');
      fake.write(authSasl);
      const initial = await fake.next();
      expect(initial?.type).toBe('p');
      const client = new ScramClient(['SCRAM-SHA-256'], RFC7677.password);
      const server = scramServer(client, { clientFirst: clientFirstOf(initial?.body as Buffer) });
      // Everything up to ReadyForQuery in one chunk: the server signature depends only on messages
      // the server already has, so SASLFinal can come before the client-final message is written.
      fake.write(
        saslContinue(server.serverFirst),
        saslFinal(server.serverFinal()),
        AUTHENTICATION_OK,
        parameterStatus('server_version', '18.0'),
        backendKeyData(42, 7),
        readyForQuery('I'),
      );
      const conn = await connecting;
      try {
        expect(conn.processId).toBe(42);
        expect(conn.params.get('server_version')).toBe('18.0');
        const final = await fake.next();
        expect(final?.type).toBe('p');
        expect(final?.body.toString()).toBe(server.clientFinal());
      } finally {
        conn.destroy();
      }
    } finally {
      await connecting.catch(() => undefined);
      await fake.close();
    }
  });

  it('fails the connect when the server asks for too many iterations, sending no proof', async () => {
    const fake = new FakeServer();
    const port = await fake.listen();
    const connecting = BackendConnection.connect(targetAt(port), { connectTimeoutMs: 10_000, maxMessageBytes: 1 << 20, maxPreparedStatements: 200 });
    try {
      await fake.next();
      fake.write(authSasl);
      const initial = await fake.next();
      const client = new ScramClient(['SCRAM-SHA-256'], RFC7677.password);
      const server = scramServer(client, { clientFirst: clientFirstOf(initial?.body as Buffer), iterations: 2 ** 31 - 1 });
      fake.write(saslContinue(server.serverFirst));
      await expect(connecting).rejects.toThrow(`above pgfence's limit of ${MAX_SCRAM_ITERATIONS}`);
      expect(await fake.next()).toBeNull();
    } finally {
      await connecting.catch(() => undefined);
      await fake.close();
    }
  });
});
