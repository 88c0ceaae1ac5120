import type pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PoolConfig } from '../../src/config/schema.js';
import { authenticatedWire } from '../support/helpers.js';
import { describeProcessError, type ProcessErrorWatch, watchProcessErrors } from '../support/process-errors.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { errorOfBody, message, queryMessage, startupMessage, WireClient } from '../support/wire.js';

/**
 * A client message that is framed correctly but malformed inside ends the client that sent it,
 * with FATAL 08P01, whatever state it is in, and nobody else: pgfence keeps running and serves
 * every other client, of any tenant, correctly. (Fuzzed more widely by test/fuzz/protocol-fuzz.)
 */
const MALFORMED: ReadonlyArray<readonly [string, string]> = [
  ['Parse whose body has no NUL', '5000000007616263'],
  ['empty Describe', '4400000004'],
  ['Describe of a statement name without NUL', '440000000753616263'],
  ['Close of a statement name without NUL', '430000000753616263'],
  ['Query whose text has no NUL', '5100000007616263'],
  ['truncated Bind', '4200000007616263'],
  ['Parse declaring more parameter types than it holds', '500000000d0053454c4543542031000005'],
];

/** Bounds every wait; a correct pgfence answers in milliseconds. */
const WAIT_MS = 10_000;
/** Longer than any wait, so that a refusal is never the startup timeout's FATAL in disguise. */
const STARTUP_TIMEOUT_MS = 60_000;

type Mode = PoolConfig['mode'];
const proxies = new Map<Mode, TestProxy>();
let crashes: ProcessErrorWatch;

beforeAll(async () => {
  crashes = watchProcessErrors();
  const listen = { host: '127.0.0.1', port: 0, startupTimeoutMs: STARTUP_TIMEOUT_MS };
  const [session, transaction] = await Promise.all([
    startTestProxy({ listen, pool: { mode: 'session', size: 4, acquireTimeoutMs: 5_000 } }),
    startTestProxy({ listen, pool: { mode: 'transaction', size: 1, acquireTimeoutMs: 5_000 } }),
  ]);
  proxies.set('session', session);
  proxies.set('transaction', transaction);
});
afterAll(async () => {
  crashes?.stop();
  await Promise.all([...proxies.values()].map((p) => p.close()));
});
afterEach(() => {
  expect(crashes.take().map(describeProcessError), 'unhandled errors in the pgfence process').toEqual([]);
});

const proxyFor = (mode: Mode): TestProxy => proxies.get(mode) as TestProxy;

/** Resolves once the bytes are handed to the kernel. */
function written(wire: WireClient, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => wire.socket.write(bytes, () => resolve()));
}

/** The client's next reply is FATAL 08P01, then pgfence closes the connection. */
async function expectFatalClose(wire: WireClient): Promise<void> {
  const crashed = new Error('pgfence raised an unhandled error instead of answering (see the error below)');
  const reply = await Promise.race([
    wire.until('E', WAIT_MS).then(
      (messages) => errorOfBody((messages.at(-1) as { body: Buffer }).body),
      (error: Error) => error,
    ),
    crashes.next().then(() => crashed),
  ]);
  if (reply instanceof Error) throw reply;
  expect(reply).toMatchObject({ severity: 'FATAL', code: '08P01' });
  await wire.untilClosed(WAIT_MS);
  expect(wire.closed, 'connection closed after the FATAL').toBe(true);
}

/** `SELECT owner FROM items` as `tenant` returns rows, all of them the tenant's own. */
async function expectOwnRows(proxy: TestProxy, tenant: string, client?: pg.Client): Promise<void> {
  const c = client ?? (await proxy.connect(tenant));
  try {
    const r = await c.query<{ owner: string }>('SELECT owner FROM items');
    expect(r.rows.length, `${tenant} rows`).toBeGreaterThan(0);
    expect(new Set(r.rows.map((row) => row.owner)), `owners seen by ${tenant}`).toEqual(new Set([tenant]));
  } finally {
    if (client === undefined) await c.end();
  }
}

interface Scenario {
  mode: Mode;
  name: string;
  /** Brings the authenticated acme client (and the globex client) into the state. */
  prepare(acme: WireClient, globex: pg.Client): Promise<void>;
  /** Runs once the malformed bytes are written. */
  afterSend?(globex: pg.Client): Promise<void>;
}

const midTransaction = async (acme: WireClient): Promise<void> => {
  acme.write(queryMessage('BEGIN'));
  await acme.until('Z');
};
const midBatch = async (acme: WireClient): Promise<void> => {
  acme.write(
    Buffer.concat([
      serialize.parse({ text: 'SELECT owner FROM items WHERE id = $1', types: [23] }),
      serialize.bind({ values: ['1'] }),
      serialize.flush(), // answers ParseComplete and BindComplete without ending the batch
    ]),
  );
  await acme.until('2');
};
const midCopy = async (acme: WireClient): Promise<void> => {
  acme.write(queryMessage('COPY items (note) FROM STDIN'));
  await acme.until('G');
};

const SCENARIOS: Scenario[] = [
  { mode: 'session', name: 'idle', prepare: async () => undefined },
  { mode: 'session', name: 'mid-transaction', prepare: midTransaction },
  { mode: 'session', name: 'mid-batch (Parse and Bind, no Sync)', prepare: midBatch },
  { mode: 'session', name: 'mid-COPY FROM STDIN', prepare: midCopy },
  {
    mode: 'transaction',
    name: 'queued while the only backend, pinned to globex, must be re-pinned',
    prepare: async (_acme, globex) => {
      await globex.query('SELECT 1');
    },
  },
  {
    mode: 'transaction',
    name: 'queued while the only backend is held by an open globex transaction',
    prepare: async (_acme, globex) => {
      await globex.query('BEGIN');
      await globex.query('SELECT 1');
    },
    afterSend: async (globex) => {
      await globex.query('COMMIT');
    },
  },
  { mode: 'transaction', name: 'mid-transaction', prepare: midTransaction },
  { mode: 'transaction', name: 'mid-batch (Parse and Bind, no Sync)', prepare: midBatch },
  { mode: 'transaction', name: 'mid-COPY FROM STDIN', prepare: midCopy },
];

describe.each(SCENARIOS)('a malformed message, $mode pooling, $name', (scenario) => {
  it.each(MALFORMED)('%s: FATAL 08P01 for the sender, every other client served', async (_name, hex) => {
    const proxy = proxyFor(scenario.mode);
    const globex = await proxy.connect('globex');
    const acme = await authenticatedWire(proxy, 'acme');
    let settled: Promise<void> = Promise.resolve();
    try {
      await scenario.prepare(acme, globex);
      await written(acme, Buffer.from(hex, 'hex'));
      settled = scenario.afterSend?.(globex) ?? settled;
      await expectFatalClose(acme);
      await settled;
      await expectOwnRows(proxy, 'globex', globex);
      await expectOwnRows(proxy, 'globex');
      await expectOwnRows(proxy, 'acme');
    } finally {
      acme.close();
      await settled.catch(() => undefined); // already reported when the test got that far
      await globex.end();
    }
  });
});

describe.each(['session', 'transaction'] as const)('limits before authentication, %s pooling', (mode) => {
  it('refuses a password message declaring 100 MB at its header, before any of it arrives', async () => {
    const proxy = proxyFor(mode);
    const wire = await WireClient.connect(proxy.port);
    try {
      wire.write(startupMessage({ user: 'acme-user', database: 'app' }));
      await wire.until('R');
      const header = Buffer.alloc(5);
      header.write('p', 0, 'latin1');
      header.writeInt32BE(100_000_000, 1);
      wire.write(Buffer.concat([header, Buffer.from('eyJhbGciOi')]));
      await expectFatalClose(wire);
    } finally {
      wire.close();
    }
    await expectOwnRows(proxy, 'acme');
  });

  it('closes a startup packet declaring more than 10,000 bytes', async () => {
    const proxy = proxyFor(mode);
    const wire = await WireClient.connect(proxy.port);
    try {
      const packet = Buffer.alloc(16);
      packet.writeInt32BE(10_001, 0);
      packet.writeInt32BE(196608, 4);
      packet.write('user\0', 8, 'latin1');
      wire.write(packet);
      // Closed without a word, as Postgres closes it (its "invalid length of startup packet" is logged only).
      const received = await wire.untilClosed();
      expect(wire.closed).toBe(true);
      expect(received.length).toBe(0);
    } finally {
      wire.close();
    }
    await expectOwnRows(proxy, 'acme');
  });

  it('still accepts a password message as long as a real token', async () => {
    const proxy = proxyFor(mode);
    const wire = await WireClient.connect(proxy.port);
    try {
      wire.write(startupMessage({ user: 'acme-user', database: 'app' }));
      await wire.until('R');
      const token = await proxy.token('acme', { padding: 'x'.repeat(2_000) });
      wire.write(message('p', `${token}\0`));
      await wire.until('Z');
    } finally {
      wire.close();
    }
  });
});
