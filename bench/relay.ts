/**
 * npm run bench:relay: the relay core's own cost, no sockets and no Postgres. Server → client: ns
 * per forwarded 117-byte DataRow through MessageScanner + ServerToClient, in 64 KiB chunks, against
 * framing each message with MessageFramer and merging adjacent ones (what the relay did before it
 * scanned headers). Client → server → client: µs per pgbench select-only transaction (Parse, Bind,
 * Describe, Execute, Sync and its six replies) through Relay with the guard's cache warm, in both
 * pool modes (in transaction mode a backend is attached and detached per transaction, as the
 * binding does). Medians of BENCH_RELAY_ROUNDS (default 7) rounds, with min and max.
 */
import { serialize } from 'pg-protocol';
import pino from 'pino';
import { QueryTimer } from '../src/admin/metrics.js';
import { message } from '../src/protocol/build.js';
import { PreparedStatements } from '../src/backend/prepared-statements.js';
import { Guard, type TenantFence } from '../src/guard/index.js';
import { type FramedMessage, MessageFramer } from '../src/protocol/framer.js';
import { MessageScanner, type ScanSink } from '../src/protocol/scanner.js';
import { Relay } from '../src/relay/relay.js';
import { ReplyTracker } from '../src/relay/reply-tracker.js';
import { ServerToClient } from '../src/relay/server-to-client.js';
import { StatementInspector } from '../src/relay/statement-inspector.js';
import { ClientStatements } from '../src/relay/statements.js';
import { positiveInt } from './environment.js';

const ROUNDS = positiveInt('BENCH_RELAY_ROUNDS', 7);
const ROWS = 20_000;

/** A DataRow of (int, 100 x's) as `SELECT g, repeat('x', 100)` sends it. */
function dataRow(n: number): Buffer {
  const body = Buffer.alloc(2 + 4 + 7 + 4 + 100, 0x78);
  body.writeInt16BE(2, 0);
  body.writeInt32BE(7, 2);
  body.write(String(n).padStart(7, '0'), 6, 'latin1');
  body.writeInt32BE(100, 13);
  return message('D', body);
}

const binding = (statements: PreparedStatements) => ({
  searchPath: '"tenant_t1", "public"',
  superuser: undefined,
  user: 'pool',
  allowsSearchPath: () => false,
  params: new Map<string, string>(),
  backendPid: 1,
  statements,
});

function median(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)] as number, min: s[0] as number, max: s[s.length - 1] as number };
}

function timed(runs: number, fn: () => void): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) fn();
  return Number(process.hrtime.bigint() - start);
}

function forwarding(): { scanner: number[]; framer: number[] } {
  const stream = Buffer.concat(Array.from({ length: ROWS }, (_, i) => dataRow(i)));
  const chunks: Buffer[] = [];
  for (let at = 0; at < stream.length; at += 65_536) chunks.push(stream.subarray(at, Math.min(stream.length, at + 65_536)));
  const toClient = new ServerToClient(new ReplyTracker(), 't1', { clientPid: 1 }, new QueryTimer(() => undefined), true);
  toClient.startBinding(binding(new PreparedStatements(10)));
  const scanner = new MessageScanner(1 << 20);
  const sink: ScanSink = { route: (t) => toClient.route(t), inspect: (m) => toClient.inspect(m), forward: (b) => toClient.forward(b), open: true };
  const viaScanner = (): void => {
    for (const chunk of chunks) {
      scanner.push(chunk, sink);
      toClient.take();
    }
  };
  const framer = new MessageFramer(1 << 30);
  const batch: FramedMessage[] = [];
  const viaFramer = (): void => {
    for (const chunk of chunks) {
      batch.length = 0;
      framer.push(chunk, batch);
      const out: Buffer[] = [];
      for (const m of batch) {
        const last = out[out.length - 1];
        if (last !== undefined && last.buffer === m.bytes.buffer && last.byteOffset + last.length === m.bytes.byteOffset) {
          out[out.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + m.bytes.length);
        } else out.push(m.bytes);
      }
    }
  };
  const scannerNs: number[] = [];
  const framerNs: number[] = [];
  for (let i = 0; i < 20; i++) {
    viaScanner();
    viaFramer();
  }
  for (let r = 0; r < ROUNDS; r++) {
    scannerNs.push(timed(50, viaScanner) / (50 * ROWS));
    framerNs.push(timed(50, viaFramer) / (50 * ROWS));
  }
  return { scanner: scannerNs, framer: framerNs };
}

async function transactions(mode: 'session' | 'transaction'): Promise<number[]> {
  const guard = await Guard.create({ cacheSize: 1000 });
  const fence: TenantFence = { ownSchema: 'tenant_t1', sharedSchemas: ['public'], tenantGuc: 'app.current_tenant_id' };
  const metrics = { statement: () => undefined, rejected: () => undefined } as unknown as ConstructorParameters<typeof StatementInspector>[0]['metrics'];
  const inspector = new StatementInspector({ guard: () => guard, fence, tenantId: 't1', metrics, log: pino({ level: 'silent' }), transactionMode: mode === 'transaction' });
  const host = { writeClient: () => undefined, onBreach: () => undefined, onServerBatch: () => undefined, onBackendLost: () => undefined, clientPid: 1, repinSql: () => 'SELECT 1' };
  const relay = new Relay(host, {
    sessionId: 1,
    tenantId: 't1',
    inspector,
    statements: mode === 'transaction' ? new ClientStatements('t1') : null,
    timer: new QueryTimer(() => undefined),
    notificationsFromBackend: mode === 'session',
  });
  const prepared = new PreparedStatements(200);
  const backend = { statements: prepared, writeAll: () => undefined, txnStatus: 'I' } as unknown as Parameters<Relay['attach']>[0];
  const serverBinding = binding(prepared);
  relay.attach(backend, serverBinding);
  // Transaction pooling binds a backend for each transaction and lets it go at its ReadyForQuery.
  const perTransaction = mode === 'transaction';
  const framer = new MessageFramer(1 << 20);
  const scanner = new MessageScanner(1 << 20);
  const sink: ScanSink = { route: (t) => relay.route(t), inspect: (m) => relay.inspect(m), forward: (b) => relay.forward(b), open: true };
  const replies = Buffer.concat([
    message('1', Buffer.alloc(0)),
    message('2', Buffer.alloc(0)),
    message('T', Buffer.from('\0\x01abalance\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0', 'latin1')),
    message('D', Buffer.from('\0\x01\0\0\0\x011', 'latin1')),
    message('C', Buffer.from('SELECT 1\0')),
    message('Z', Buffer.from('I')),
  ]);
  // The client's messages are built once, as a driver's chunk: the relay's cost, not pg-protocol's.
  const chunk = Buffer.concat([
    serialize.parse({ text: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;' }),
    serialize.bind({ values: ['42'] }),
    serialize.describe({ type: 'P' }),
    serialize.execute({}),
    serialize.sync(),
  ]);
  const framed: FramedMessage[] = [];
  const one = (): void => {
    framed.length = 0;
    framer.push(chunk, framed);
    if (perTransaction) relay.attach(backend, serverBinding);
    relay.send(framed);
    scanner.push(replies, sink);
    relay.flush();
    if (perTransaction) relay.detach();
  };
  const runs = 100_000;
  for (let i = 0; i < 20_000; i++) one();
  const us: number[] = [];
  for (let r = 0; r < ROUNDS; r++) us.push(timed(runs, one) / runs / 1000);
  return us;
}

const fmt = (x: { median: number; min: number; max: number }, digits: number): string =>
  `${x.median.toFixed(digits)} (${x.min.toFixed(digits)}–${x.max.toFixed(digits)})`;

const f = forwarding();
console.log(`relay core, ${ROUNDS} rounds, median (min–max)`);
console.log(`server → client, ns per 117-byte DataRow: scanner ${fmt(median(f.scanner), 1)}; framing each message ${fmt(median(f.framer), 1)}`);
for (const mode of ['session', 'transaction'] as const) {
  console.log(`select-only transaction through Relay, ${mode} mode, µs: ${fmt(median(await transactions(mode)), 2)}`);
}
