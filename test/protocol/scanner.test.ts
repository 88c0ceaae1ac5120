import { describe, expect, it } from 'vitest';
import { FramingError } from '../../src/protocol/framer.js';
import { MessageScanner, Route, type ScanSink } from '../../src/protocol/scanner.js';
import {
  bindComplete,
  commandComplete,
  dataRow,
  errorMessage,
  noData,
  parameterStatusMessage,
  parseComplete,
  readyForQueryMessage,
  rowDescription,
} from '../support/backend-messages.js';
import { mulberry32 } from '../corpus/mutate.js';
import { message } from '../support/wire.js';

type Table = Readonly<Record<string, Route>>;

const chr = (type: number): string => String.fromCharCode(type);

/** The relay's usual routing: rows and tags forwarded, status inspected, pgfence's own replies dropped. */
const RELAY_LIKE: Table = {
  T: Route.Forward,
  D: Route.Forward,
  C: Route.Forward,
  n: Route.Forward,
  E: Route.Inspect,
  S: Route.Inspect,
  Z: Route.Inspect,
  '2': Route.Inspect,
  '1': Route.Drop,
  N: Route.Drop,
};

/** The opposite: rows inspected (the big one too), status forwarded. */
const INVERTED: Table = {
  T: Route.Drop,
  D: Route.Inspect,
  C: Route.Inspect,
  n: Route.Drop,
  E: Route.Forward,
  S: Route.Forward,
  Z: Route.Forward,
  '2': Route.Forward,
  '1': Route.Inspect,
  N: Route.Forward,
};

const BIG_ROW = dataRow([Buffer.alloc(70 * 1024, 0x61)]);

const MESSAGES: readonly Buffer[] = [
  rowDescription(['id', 'name']),
  ...Array.from({ length: 20 }, (_, i) => dataRow([String(i), `row ${i}`, null])),
  BIG_ROW,
  commandComplete('SELECT 21'),
  parseComplete(),
  bindComplete(),
  noData(),
  parameterStatusMessage('application_name', 'psql'),
  dataRow(['before notice']),
  errorMessage({ S: 'NOTICE', C: '00000', M: 'a notice between two rows' }, 'N'),
  dataRow(['after notice']),
  errorMessage({ S: 'ERROR', C: '42P01', M: 'relation "nope" does not exist' }),
  dataRow(['x']),
  commandComplete('SELECT 1'),
  readyForQueryMessage('I'),
];

/** The stream in a buffer of its own (not a slice of Node's shared pool), so memory identity means something. */
function ownBuffer(parts: readonly Buffer[]): Buffer {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = Buffer.alloc(total);
  let at = 0;
  for (const p of parts) at += p.copy(out, at);
  return out;
}

const STREAM = ownBuffer(MESSAGES);

interface Item {
  kind: 'forward' | 'inspect';
  bytes: Buffer;
}

/** What the sink must see: Forward messages run together (across dropped ones), Inspect ones whole, in order. */
function expectedItems(messages: readonly Buffer[], table: Table): Item[] {
  const items: Item[] = [];
  for (const m of messages) {
    const route = table[chr(m[0] as number)] ?? Route.Forward;
    if (route === Route.Drop) continue;
    const last = items[items.length - 1];
    if (route === Route.Forward && last?.kind === 'forward') last.bytes = Buffer.concat([last.bytes, m]);
    else items.push({ kind: route === Route.Forward ? 'forward' : 'inspect', bytes: m });
  }
  return items;
}

/**
 * A sink that checks every call against the expected items as it comes (no concatenation, so a
 * check per split offset stays cheap). The first mismatch is kept in `error`.
 */
class CheckingSink implements ScanSink {
  open = true;
  error: string | null = null;
  forwardedBytes = 0;
  inspectedCount = 0;
  private item = 0;
  private pos = 0;

  constructor(
    private readonly table: Table,
    private readonly items: readonly Item[],
  ) {}

  route(type: number): Route {
    return this.table[chr(type)] ?? Route.Forward;
  }

  forward(bytes: Buffer): void {
    if (this.error !== null || bytes.length === 0) return;
    const item = this.items[this.item];
    if (item?.kind !== 'forward') return this.fail(`forward of ${bytes.length} bytes where item ${this.item} is ${item?.kind ?? 'the end'}`);
    if (this.pos + bytes.length > item.bytes.length) return this.fail(`forward of ${bytes.length} bytes overruns item ${this.item} at ${this.pos}`);
    if (!bytes.equals(item.bytes.subarray(this.pos, this.pos + bytes.length))) return this.fail(`forwarded bytes differ in item ${this.item} at ${this.pos}`);
    this.pos += bytes.length;
    this.forwardedBytes += bytes.length;
    if (this.pos === item.bytes.length) this.next();
  }

  inspect(message: Buffer): void {
    if (this.error !== null) return;
    const item = this.items[this.item];
    if (item?.kind !== 'inspect' || this.pos !== 0) return this.fail(`inspect of ${chr(message[0] as number)} where item ${this.item} is ${item?.kind ?? 'the end'} at ${this.pos}`);
    if (!message.equals(item.bytes)) return this.fail(`inspected message ${this.item} differs`);
    this.inspectedCount++;
    this.next();
  }

  /** Null when everything expected arrived, in order, and nothing else. */
  verdict(): string | null {
    if (this.error !== null) return this.error;
    return this.item === this.items.length ? null : `stopped at item ${this.item} of ${this.items.length} (offset ${this.pos})`;
  }

  private next(): void {
    this.item++;
    this.pos = 0;
  }

  private fail(why: string): void {
    this.error = why;
  }
}

const OFFSETS = MESSAGES.map((_, i) => MESSAGES.slice(0, i).reduce((n, m) => n + m.length, 0));

/**
 * What must have reached the sink once the first `received` bytes were pushed: every message
 * received whole, and of a Forward message still arriving, every byte after its header.
 */
function dueAt(received: number, table: Table): { forwardedBytes: number; inspectedCount: number } {
  let forwardedBytes = 0;
  let inspectedCount = 0;
  MESSAGES.forEach((m, i) => {
    const start = OFFSETS[i] as number;
    const got = Math.max(0, Math.min(m.length, received - start));
    const route = table[chr(m[0] as number)] ?? Route.Forward;
    if (route === Route.Forward && got >= 5) forwardedBytes += got;
    if (route === Route.Inspect && got === m.length) inspectedCount++;
  });
  return { forwardedBytes, inspectedCount };
}

/** Scans `chunks` in order; null when the sink saw exactly what it should, each part as soon as it could. */
function scan(chunks: readonly Buffer[], table: Table, max = 1 << 20): string | null {
  const sink = new CheckingSink(table, expectedItems(MESSAGES, table));
  const scanner = new MessageScanner(max);
  let received = 0;
  for (const chunk of chunks) {
    scanner.push(chunk, sink);
    received += chunk.length;
    const due = dueAt(received, table);
    if (sink.error === null && (sink.forwardedBytes !== due.forwardedBytes || sink.inspectedCount !== due.inspectedCount)) {
      return `after ${received} bytes: ${sink.forwardedBytes} bytes forwarded and ${sink.inspectedCount} inspected, ${due.forwardedBytes} and ${due.inspectedCount} due`;
    }
  }
  return sink.verdict();
}

/** A sink that records every call as is. */
class RecordingSink implements ScanSink {
  open = true;
  readonly calls: Array<{ kind: 'forward' | 'inspect'; bytes: Buffer }> = [];

  constructor(
    private readonly table: Table,
    private readonly closeOn: string | null = null,
  ) {}

  route(type: number): Route {
    return this.table[chr(type)] ?? Route.Forward;
  }

  forward(bytes: Buffer): void {
    if (bytes.length > 0) this.calls.push({ kind: 'forward', bytes });
  }

  inspect(message: Buffer): void {
    this.calls.push({ kind: 'inspect', bytes: message });
    if (this.closeOn !== null && chr(message[0] as number) === this.closeOn) this.open = false;
  }

  forwarded(): Buffer {
    return Buffer.concat(this.calls.filter((c) => c.kind === 'forward').map((c) => c.bytes));
  }
}

describe('MessageScanner', () => {
  describe.each([
    ['relay-like routes', RELAY_LIKE],
    ['inverted routes (the 70 KB row inspected)', INVERTED],
  ])('with %s', (_name, table) => {
    it('sees the stream as one chunk', () => {
      expect(scan([STREAM], table)).toBeNull();
    });

    it('sees the same messages whatever offset the stream is split at', () => {
      const failures: string[] = [];
      for (let cut = 0; cut <= STREAM.length; cut++) {
        const verdict = scan([STREAM.subarray(0, cut), STREAM.subarray(cut)], table);
        if (verdict !== null && failures.push(`cut ${cut}: ${verdict}`) >= 5) break;
      }
      expect(failures).toEqual([]);
    });

    it('sees the same messages delivered one byte at a time', () => {
      const bytes = Array.from({ length: STREAM.length }, (_, i) => STREAM.subarray(i, i + 1));
      expect(scan(bytes, table)).toBeNull();
    });

    it('sees the same messages in random chunkings', () => {
      const rng = mulberry32(0x5ca11e);
      const failures: string[] = [];
      for (let round = 0; round < 200; round++) {
        const chunks: Buffer[] = [];
        // Mostly short chunks (header splits), now and then long ones (several messages, or most of the big row).
        for (let at = 0; at < STREAM.length; ) {
          const size = rng() < 0.8 ? 1 + Math.floor(rng() * 24) : 1 + Math.floor(rng() * 40_000);
          chunks.push(STREAM.subarray(at, at + size));
          at += size;
        }
        const verdict = scan(chunks, table);
        if (verdict !== null && failures.push(`round ${round}: ${verdict}`) >= 5) break;
      }
      expect(failures).toEqual([]);
    });
  });

  it('forwards each run of consecutive Forward messages in one chunk as one range of that chunk (zero copy)', () => {
    const sink = new RecordingSink(RELAY_LIKE);
    new MessageScanner(1 << 20).push(STREAM, sink);

    // Runs of Forward messages not interrupted by any other message, as [offset, length] in the stream.
    const runs: Array<[number, number]> = [];
    let at = 0;
    let runStart = -1;
    for (const m of MESSAGES) {
      const forward = (RELAY_LIKE[chr(m[0] as number)] ?? Route.Forward) === Route.Forward;
      if (forward && runStart < 0) runStart = at;
      if (!forward && runStart >= 0) {
        runs.push([runStart, at - runStart]);
        runStart = -1;
      }
      at += m.length;
    }
    if (runStart >= 0) runs.push([runStart, at - runStart]);

    const forwards = sink.calls.filter((c) => c.kind === 'forward').map((c) => c.bytes);
    expect(forwards.map((b) => [b.byteOffset - STREAM.byteOffset, b.length])).toEqual(runs);
    // The header, 20 rows, the 70 KB row and the tag arrive as a single call.
    expect(runs[0]?.[1]).toBe(MESSAGES.slice(0, 23).reduce((n, m) => n + m.length, 0));
    for (const b of forwards) expect(b.buffer).toBe(STREAM.buffer);
    // Shared memory, not a copy: a write through the chunk shows in what was forwarded.
    const first = forwards[0] as Buffer;
    const saved = STREAM[10] as number;
    STREAM[10] = saved ^ 0xff;
    try {
      expect(first[10]).toBe(saved ^ 0xff);
    } finally {
      STREAM[10] = saved;
    }
  });

  it('hands an inspected message that arrived whole as a subarray of its chunk', () => {
    const chunk = ownBuffer([dataRow(['a']), readyForQueryMessage('T')]);
    const sink = new RecordingSink(RELAY_LIKE);
    new MessageScanner(1 << 20).push(chunk, sink);
    const inspected = sink.calls.find((c) => c.kind === 'inspect')?.bytes;
    expect(inspected?.buffer).toBe(chunk.buffer);
    expect(inspected?.toString('latin1')).toBe('Z\0\0\0\x05T');
  });

  it('streams a Forward message larger than maxInspectedBytes, whole or split', () => {
    const messages = [rowDescription(['big']), BIG_ROW, commandComplete('SELECT 1'), readyForQueryMessage('I')];
    const stream = ownBuffer(messages);
    for (const chunks of [[stream], [stream.subarray(0, 100), stream.subarray(100, 30_000), stream.subarray(30_000)]]) {
      const sink = new RecordingSink(RELAY_LIKE);
      const scanner = new MessageScanner(1024);
      for (const chunk of chunks) scanner.push(chunk, sink);
      expect(sink.forwarded().equals(Buffer.concat(messages.slice(0, 3)))).toBe(true);
      expect(sink.calls.filter((c) => c.kind === 'inspect').map((c) => c.bytes.toString('latin1'))).toEqual(['Z\0\0\0\x05I']);
    }
  });

  it('refuses an Inspect message larger than maxInspectedBytes, before its body arrives', () => {
    const big = errorMessage({ S: 'ERROR', C: 'XX000', M: 'x'.repeat(2000) });
    const row = dataRow(['kept']);

    // Whole in one chunk, after a forwarded row: the row is passed on before the refusal.
    const whole = new RecordingSink(RELAY_LIKE);
    expect(() => new MessageScanner(1024).push(ownBuffer([row, big]), whole)).toThrow(FramingError);
    expect(whole.forwarded().equals(row)).toBe(true);
    expect(whole.calls.some((c) => c.kind === 'inspect')).toBe(false);

    // Only its header received.
    expect(() => new MessageScanner(1024).push(big.subarray(0, 5), new RecordingSink(RELAY_LIKE))).toThrow(/exceeds the limit of 1024/);

    // Its header split across chunks.
    const scanner = new MessageScanner(1024);
    const sink = new RecordingSink(RELAY_LIKE);
    scanner.push(big.subarray(0, 2), sink);
    expect(() => scanner.push(big.subarray(2, 5), sink)).toThrow(FramingError);

    // A message exactly at the limit passes.
    const atLimit = errorMessage({ M: 'y'.repeat(1024 - 8) });
    expect(atLimit.length).toBe(1024);
    const ok = new RecordingSink(RELAY_LIKE);
    new MessageScanner(1024).push(atLimit, ok);
    expect(ok.calls.map((c) => c.kind)).toEqual(['inspect']);
  });

  it('refuses a length field below 4, whatever the route and however the header is split', () => {
    for (const type of ['D', 'E', '1']) {
      for (const length of [3, 0, -1, -0x80000000]) {
        const bad = Buffer.alloc(5);
        bad.write(type, 0, 'latin1');
        bad.writeInt32BE(length, 1);
        expect(() => new MessageScanner(1 << 20).push(ownBuffer([dataRow(['a']), bad]), new RecordingSink(RELAY_LIKE))).toThrow(
          /invalid message length/,
        );
        const scanner = new MessageScanner(1 << 20);
        const sink = new RecordingSink(RELAY_LIKE);
        scanner.push(ownBuffer([dataRow(['a']), bad.subarray(0, 3)]), sink);
        expect(() => scanner.push(bad.subarray(3), sink)).toThrow(FramingError);
      }
    }
    // A length of exactly 4 (no body) is a message.
    const sink = new RecordingSink(RELAY_LIKE);
    new MessageScanner(1 << 20).push(message('n', ''), sink);
    expect(sink.forwarded().toString('latin1')).toBe('n\0\0\0\x04');
  });

  it('stops scanning when the sink closes inside inspect, however the stream is split', () => {
    const before = [dataRow(['a']), dataRow(['b'])];
    const error = errorMessage({ S: 'FATAL', C: '57P01', M: 'terminating connection' });
    const stream = ownBuffer([...before, error, dataRow(['after']), readyForQueryMessage('I')]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const sink = new RecordingSink(RELAY_LIKE, 'E');
      const scanner = new MessageScanner(1 << 20);
      for (const chunk of [stream.subarray(0, cut), stream.subarray(cut)]) {
        if (!sink.open) break;
        scanner.push(chunk, sink);
      }
      const last = sink.calls[sink.calls.length - 1];
      expect({ cut, kind: last?.kind, bytes: last?.bytes.equals(error) }).toEqual({ cut, kind: 'inspect', bytes: true });
      expect(sink.forwarded().equals(Buffer.concat(before))).toBe(true);
    }
  });
});
