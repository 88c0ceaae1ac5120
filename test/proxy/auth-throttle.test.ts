import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { errorOfBody, passwordMessage, queryMessage, splitMessages, startupMessage, WireClient } from '../support/wire.js';

/**
 * Failed-authentication throttling through a running pgfence: after two free failures, the
 * failures of 127.0.0.1 are held (20 s here, longer than any step of this test takes), while
 * valid logins, from that address and another, and failures from another address, are answered
 * at once. Nothing is timed: the held clients simply have not been answered when the others have.
 */

let proxy: TestProxy;
let log = '';
/** Resolves when the proxy has held `n` failures in all. */
let heldCount = 0;
const heldWaiters: Array<{ n: number; resolve: () => void }> = [];

beforeAll(async () => {
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => (log += chunk.toString()));
  proxy = await startTestProxy(
    { listen: { host: '127.0.0.1', port: 0, startupTimeoutMs: 60_000, authThrottle: { freeFailures: 2, delayMs: 20_000, maxDelayMs: 30_000 } } },
    { logTo: stream },
  );
  // The throttle reports each held failure to the metrics: observe it as it happens.
  const metrics = proxy.running.metrics;
  const original = metrics.authThrottled.bind(metrics);
  metrics.authThrottled = () => {
    original();
    heldCount++;
    for (const w of heldWaiters.filter((w) => heldCount >= w.n)) {
      heldWaiters.splice(heldWaiters.indexOf(w), 1);
      w.resolve();
    }
  };
});
afterAll(async () => {
  await proxy?.close();
});

function held(n: number): Promise<void> {
  return heldCount >= n ? Promise.resolve() : new Promise((resolve) => heldWaiters.push({ n, resolve }));
}

/** Startup and a password from `from`; the caller reads what comes back. */
async function login(from: string, password: string): Promise<WireClient> {
  const wire = await WireClient.connect(proxy.port, from);
  wire.write(startupMessage({ user: 'acme-user', database: 'app' }));
  await wire.until('R');
  wire.write(passwordMessage(password));
  return wire;
}

async function refusedAtOnce(from: string): Promise<void> {
  const wire = await login(from, 'not-a-jwt');
  const messages = await wire.until('E');
  expect(errorOfBody(messages.at(-1)!.body)).toMatchObject({ severity: 'FATAL', code: expect.stringMatching(/^28/) });
  wire.close();
}

async function servedAtOnce(from: string): Promise<void> {
  const wire = await login(from, await proxy.token('acme'));
  await wire.until('Z');
  wire.write(queryMessage('SELECT 1'));
  const reply = await wire.until('Z');
  expect(reply.map((m) => m.type)).toContain('D');
  wire.close();
}

describe('failed-authentication throttling', () => {
  it('holds the failures of an address past its free ones, and slows neither valid logins nor other addresses', async () => {
    await refusedAtOnce('127.0.0.1');
    await refusedAtOnce('127.0.0.1');
    expect(heldCount).toBe(0);

    const pending = await Promise.all(Array.from({ length: 5 }, () => login('127.0.0.1', 'not-a-jwt')));
    await held(5);

    await servedAtOnce('127.0.0.2'); // another address
    await servedAtOnce('127.0.0.1'); // a valid token from the throttled address itself
    await refusedAtOnce('127.0.0.2'); // another address's failures are its own
    await servedAtOnce('127.0.0.1');

    // The five held failures have still had no answer and their connections are open.
    for (const wire of pending) {
      expect(splitMessages(await wire.bytes(0)).map((m) => m.type)).toEqual(['R']);
      expect(wire.closed).toBe(false);
      wire.close();
    }
    expect(heldCount).toBe(5);

    const lines = log.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { level: number; msg: string; throttled?: boolean });
    expect(lines.filter((l) => l.msg.startsWith('repeated failed logins'))).toHaveLength(1);
    // Logged one by one: the two free failures of 127.0.0.1 and the one of 127.0.0.2; the held ones at debug.
    expect(lines.filter((l) => l.msg === 'authentication failed' && l.level === 40)).toHaveLength(3);
  });

  it('answers a held failure with its FATAL once the hold is over (reloaded to a 1 ms hold)', async () => {
    await proxy.running.reload({ ...proxy.config, listen: { ...proxy.config.listen, authThrottle: { ...proxy.config.listen.authThrottle, delayMs: 1, maxDelayMs: 2 } } });
    const before = heldCount;
    await refusedAtOnce('127.0.0.1');
    expect(heldCount).toBe(before + 1);
  });
});
