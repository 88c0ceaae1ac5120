import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import {
  errorOfBody,
  message,
  passwordMessage,
  queryMessage,
  splitMessages,
  startupMessage,
  WireClient,
} from '../support/wire.js';

let proxy: TestProxy;

beforeAll(async () => {
  proxy = await startTestProxy({ listen: { host: '127.0.0.1', port: 0, startupTimeoutMs: 1_000 } });
});
afterAll(async () => {
  await proxy?.close();
});

/** After each attack, a well-behaved client must still be served. */
async function stillServes(): Promise<void> {
  const client = await proxy.connect('acme');
  try {
    const r = await client.query('SELECT count(*)::int AS n FROM items');
    expect(r.rows[0].n).toBeGreaterThan(0);
  } finally {
    await client.end();
  }
}

function fatalIn(received: Buffer): { code: string; message: string; severity: string } {
  const error = splitMessages(received).find((m) => m.type === 'E');
  if (error === undefined) throw new Error(`no ErrorResponse in ${received.toString('hex')}`);
  return errorOfBody(error.body);
}

describe('bad input from clients', () => {
  it('answers a garbage first packet with a close and keeps serving', async () => {
    const wire = await WireClient.connect(proxy.port);
    wire.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await wire.untilClosed();
    expect(wire.closed).toBe(true);
    await stillServes();
  });

  it('refuses an unsupported protocol version with a FATAL', async () => {
    const wire = await WireClient.connect(proxy.port);
    wire.write(startupMessage({ user: 'x' }, 2 << 16));
    const err = fatalIn(await wire.untilClosed());
    expect(err).toMatchObject({ severity: 'FATAL', code: '0A000' });
    await stillServes();
  });

  it('answers SSLRequest and GSSENCRequest with N, then proceeds with the startup', async () => {
    const wire = await WireClient.connect(proxy.port);
    const ssl = Buffer.alloc(8);
    ssl.writeInt32BE(8, 0);
    ssl.writeInt32BE(80877103, 4);
    wire.write(ssl);
    expect((await wire.bytes(1)).toString()).toBe('N');
    wire.close();
  });

  it('closes a connection that sends an oversized message length', async () => {
    const wire = await WireClient.connect(proxy.port);
    wire.write(startupMessage({ user: 'acme-user', database: 'app' }));
    await wire.until('R');
    const huge = Buffer.from([0x70, 0x7f, 0xff, 0xff, 0xff]);
    wire.write(huge);
    const err = fatalIn(await wire.untilClosed());
    expect(err.code).toBe('08P01');
    await stillServes();
  });

  it('closes a client that sends a length below 4', async () => {
    const wire = await WireClient.connect(proxy.port);
    wire.write(startupMessage({ user: 'acme-user' }));
    await wire.until('R');
    wire.write(Buffer.from([0x70, 0, 0, 0, 2]));
    expect(fatalIn(await wire.untilClosed()).code).toBe('08P01');
    await stillServes();
  });

  it('closes a client that sends Terminate before its startup packet without a word, as Postgres does', async () => {
    const wire = await WireClient.connect(proxy.port);
    wire.write(message('X', ''));
    const received = await wire.untilClosed();
    expect(wire.closed).toBe(true);
    expect(received.length).toBe(0);
    await stillServes();
  });

  it('closes a client whose startup packet is absurdly long', async () => {
    const wire = await WireClient.connect(proxy.port);
    const packet = Buffer.alloc(8);
    packet.writeInt32BE(1_000_000, 0);
    packet.writeInt32BE(196608, 4);
    wire.write(packet);
    await wire.untilClosed();
    expect(wire.closed).toBe(true);
    await stillServes();
  });

  it('times out a client that never finishes its startup', async () => {
    const wire = await WireClient.connect(proxy.port);
    wire.write(startupMessage({ user: 'acme-user' }).subarray(0, 10)); // a truncated startup packet
    const received = await wire.untilClosed(4_000);
    expect(wire.closed).toBe(true);
    expect(fatalIn(received).code).toBe('08P01');
    await stillServes();
  });

  it('times out a client that never sends its password', async () => {
    const wire = await WireClient.connect(proxy.port);
    wire.write(startupMessage({ user: 'acme-user' }));
    await wire.until('R');
    const received = await wire.untilClosed(4_000);
    expect(wire.closed).toBe(true);
    expect(fatalIn(received).message).toMatch(/did not finish in time/);
  });

  it('refuses a query sent instead of the password', async () => {
    const wire = await WireClient.connect(proxy.port);
    wire.write(startupMessage({ user: 'acme-user' }));
    await wire.until('R');
    wire.write(queryMessage('SELECT 1'));
    expect(fatalIn(await wire.untilClosed()).code).toBe('08P01');
  });

  it('closes a session that sends a truncated message and then disconnects, and the backend is reused', async () => {
    // A pool of one: the next client gets the same server process if the backend went back to
    // the pool, and a new one if it was closed (its acquire waits until one or the other).
    const single = await startTestProxy({ pool: { size: 1, acquireTimeoutMs: 5_000 } });
    try {
      const wire = await WireClient.connect(single.port);
      wire.write(startupMessage({ user: 'acme-user' }));
      await wire.until('R');
      wire.write(passwordMessage(await single.token('acme')));
      await wire.until('Z');
      wire.write(queryMessage('SELECT pg_backend_pid()'));
      const row = (await wire.until('Z')).find((m) => m.type === 'D') as { body: Buffer };
      const pid = Number(row.body.subarray(6).toString());
      expect(pid).toBeGreaterThan(0);
      wire.write(queryMessage('SELECT 1').subarray(0, 7));
      wire.close();
      const next = await single.connect('acme');
      try {
        const r = await next.query('SELECT pg_backend_pid() AS pid, count(*)::int AS n FROM items');
        expect(r.rows[0].pid).toBe(pid);
        expect(r.rows[0].n).toBeGreaterThan(0);
      } finally {
        await next.end();
      }
    } finally {
      await single.close();
    }
  });

  it('refuses an unknown message type with 08P01', async () => {
    const wire = await WireClient.connect(proxy.port);
    wire.write(startupMessage({ user: 'acme-user' }));
    await wire.until('R');
    wire.write(passwordMessage(await proxy.token('acme')));
    await wire.until('Z');
    wire.write(message('y', 'whatever'));
    expect(fatalIn(await wire.untilClosed()).code).toBe('08P01');
    await stillServes();
  });

  it('refuses invalid UTF-8 in a query so the guard never reads other text than the server', async () => {
    const wire = await WireClient.connect(proxy.port);
    wire.write(startupMessage({ user: 'acme-user' }));
    await wire.until('R');
    wire.write(passwordMessage(await proxy.token('acme')));
    await wire.until('Z');
    const bad = Buffer.concat([Buffer.from('SELECT \''), Buffer.from([0xc0, 0xaf]), Buffer.from("'\0")]);
    wire.write(message('Q', bad));
    const messages = await wire.until('E');
    expect(errorOfBody((messages.at(-1) as { body: Buffer }).body).code).toBe('22021');
    wire.close();
  });

  it('refuses the fast-path FunctionCall protocol, which could call set_config by OID', async () => {
    const wire = await WireClient.connect(proxy.port);
    wire.write(startupMessage({ user: 'acme-user' }));
    await wire.until('R');
    wire.write(passwordMessage(await proxy.token('acme')));
    await wire.until('Z');
    const call = Buffer.alloc(4 + 2 + 2 + 2);
    call.writeInt32BE(2078, 0); // set_config's OID
    wire.write(message('F', call));
    const all = await wire.until('E');
    expect(errorOfBody((all.at(-1) as { body: Buffer }).body).code).toBe('42501');
    expect((await wire.until('Z')).map((m) => m.type)).toEqual(['Z']);
    wire.close();
  });
});
