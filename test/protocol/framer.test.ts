import { describe, expect, it } from 'vitest';
import { type FramedMessage, FramingError, MessageFramer } from '../../src/protocol/framer.js';
import { StartupReader } from '../../src/protocol/startup.js';
import { message } from '../support/wire.js';

const msg = message;

const stream = Buffer.concat([
  msg('Q', 'SELECT 1\0'),
  msg('S', ''),
  msg('d', Buffer.alloc(70_000, 7)),
  msg('H', ''),
  msg('P', '\0SELECT $1\0\0\0'),
]);

function frameAll(chunks: Buffer[], max = 1 << 20): FramedMessage[] {
  const framer = new MessageFramer(max);
  const out: FramedMessage[] = [];
  for (const chunk of chunks) framer.push(chunk, out);
  return out;
}

describe('MessageFramer', () => {
  it('frames the same messages whatever offset the stream is split at', () => {
    const whole = frameAll([stream]).map((m) => Buffer.from(m.bytes).toString('hex'));
    expect(whole).toHaveLength(5);
    for (let cut = 0; cut <= stream.length; cut += cut < 200 || cut > stream.length - 200 ? 1 : 997) {
      const split = frameAll([stream.subarray(0, cut), stream.subarray(cut)]).map((m) => Buffer.from(m.bytes).toString('hex'));
      expect(split).toEqual(whole);
    }
  });

  it('frames a stream delivered one byte at a time', () => {
    const small = Buffer.concat([msg('Q', 'SELECT 1\0'), msg('S', ''), msg('X', '')]);
    const bytes = [...small].map((b) => Buffer.from([b]));
    expect(frameAll(bytes).map((m) => String.fromCharCode(m.type))).toEqual(['Q', 'S', 'X']);
  });

  it('hands out whole messages as subarrays of the chunk without copying', () => {
    const chunk = Buffer.concat([msg('Q', 'SELECT 1\0'), msg('S', '')]);
    const [first] = frameAll([chunk]);
    expect(first?.bytes.buffer).toBe(chunk.buffer);
  });

  it('refuses a length below 4 and above the maximum before buffering', () => {
    const tooSmall = Buffer.from([0x51, 0, 0, 0, 3]);
    expect(() => frameAll([tooSmall])).toThrow(FramingError);
    const tooBig = Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff]);
    expect(() => frameAll([tooBig], 1024 * 1024)).toThrow(/invalid message length/);
  });

  it('keeps a half-received message pending', () => {
    const framer = new MessageFramer(1024);
    const out: FramedMessage[] = [];
    const m = msg('Q', 'SELECT 1\0');
    framer.push(m.subarray(0, 7), out);
    expect(out).toHaveLength(0);
    expect(framer.midMessage).toBe(true);
    framer.push(m.subarray(7), out);
    expect(out).toHaveLength(1);
    expect(framer.midMessage).toBe(false);
  });

  it('limit() lowers the cap: a header declaring more throws before any body arrives', () => {
    const header = (type: string, length: number): Buffer => {
      const b = Buffer.alloc(5);
      b.write(type, 0, 'latin1');
      b.writeInt32BE(length, 1);
      return b;
    };
    const out: FramedMessage[] = [];
    const framer = new MessageFramer(1 << 20);
    framer.limit(100);
    // At the cap: accepted, and waiting for its body.
    framer.push(header('p', 100), out);
    expect(framer.midMessage).toBe(true);
    framer.push(Buffer.alloc(96, 0x41), out);
    expect(out.map((m) => m.bytes.length)).toEqual([101]);
    // One byte over: refused from the header alone, whole or split.
    expect(() => framer.push(header('p', 101), out)).toThrow(FramingError);
    const split = new MessageFramer(1 << 20);
    split.limit(100);
    split.push(header('p', 101).subarray(0, 2), out);
    expect(() => split.push(header('p', 101).subarray(2), out)).toThrow(/invalid message length 101/);
  });

  it('limit() raises the cap again', () => {
    const framer = new MessageFramer(64);
    const big = msg('Q', `SELECT '${'x'.repeat(1000)}'\0`);
    expect(() => framer.push(big, [])).toThrow(FramingError);
    const raised = new MessageFramer(64);
    raised.limit(4096);
    const out: FramedMessage[] = [];
    raised.push(big, out);
    expect(out.map((m) => m.bytes.equals(big))).toEqual([true]);
  });

  it('does not reserve a split message at its declared size: 10 bytes of a 1 MB message are just held', () => {
    const body = Buffer.alloc((1 << 20) - 4);
    for (let i = 0; i < body.length; i++) body[i] = i % 251;
    const big = msg('d', body);
    expect(big.readInt32BE(1)).toBe(1 << 20);
    const framer = new MessageFramer(2 << 20);
    const out: FramedMessage[] = [];
    expect(() => framer.push(big.subarray(0, 10), out)).not.toThrow();
    expect(framer.midMessage).toBe(true);
    expect(out).toHaveLength(0);
    // The rest in 64 KB pieces, then the next message in the same chunk as the last piece.
    let at = 10;
    for (; big.length - at > 65_536; at += 65_536) framer.push(big.subarray(at, at + 65_536), out);
    expect(out).toHaveLength(0);
    framer.push(Buffer.concat([big.subarray(at), msg('S', '')]), out);
    expect(out.map((m) => String.fromCharCode(m.type))).toEqual(['d', 'S']);
    expect(out[0]?.bytes.equals(big)).toBe(true);
    expect(framer.midMessage).toBe(false);
  });
});

describe('StartupReader', () => {
  function startup(params: Record<string, string>): Buffer {
    const body = Buffer.concat([
      Buffer.from([0, 3, 0, 0]),
      ...Object.entries(params).map(([k, v]) => Buffer.from(`${k}\0${v}\0`)),
      Buffer.from([0]),
    ]);
    const len = Buffer.alloc(4);
    len.writeInt32BE(body.length + 4);
    return Buffer.concat([len, body]);
  }

  it('decodes a StartupMessage split at every offset', () => {
    const packet = startup({ user: 'alice', database: 'app', application_name: 'psql' });
    for (let cut = 0; cut <= packet.length; cut++) {
      const reader = new StartupReader();
      const first = reader.next(packet.subarray(0, cut));
      const result = first ?? reader.next(packet.subarray(cut));
      expect(result).toEqual({ kind: 'startup', params: new Map([['user', 'alice'], ['database', 'app'], ['application_name', 'psql']]), minor: 0, protocolOptions: [] });
    }
  });

  it('recognises SSLRequest, GSSENCRequest, CancelRequest and other versions', () => {
    const code = (n: number, extra: number[] = []): Buffer => {
      const b = Buffer.alloc(8 + extra.length * 4);
      b.writeInt32BE(b.length, 0);
      b.writeInt32BE(n, 4);
      extra.forEach((v, i) => b.writeInt32BE(v, 8 + i * 4));
      return b;
    };
    expect(new StartupReader().next(code(80877103))).toEqual({ kind: 'ssl' });
    expect(new StartupReader().next(code(80877104))).toEqual({ kind: 'gssenc' });
    expect(new StartupReader().next(code(80877102, [42, 7]))).toEqual({ kind: 'cancel', processId: 42, secretKey: 7 });
    expect(new StartupReader().next(code(2 << 16))).toEqual({ kind: 'unsupported-version', major: 2, minor: 0 });
    expect(new StartupReader().next(code((4 << 16) | 0))).toEqual({ kind: 'unsupported-version', major: 4, minor: 0 });
    expect(new StartupReader().next(code((7 << 16) | 1))).toEqual({ kind: 'unsupported-version', major: 7, minor: 1 });
  });

  it('reads a 3.x StartupMessage with its minor version and sets the _pq_. protocol options apart', () => {
    const packet = startup({ user: 'alice', '_pq_.compression': 'on', database: 'app', '_pq_.other': 'x' });
    packet.writeInt32BE((3 << 16) | 2, 4);
    expect(new StartupReader().next(packet)).toEqual({
      kind: 'startup',
      params: new Map([['user', 'alice'], ['database', 'app']]),
      minor: 2,
      protocolOptions: ['_pq_.compression', '_pq_.other'],
    });
  });

  it('refuses absurd startup lengths', () => {
    const huge = Buffer.from([0x7f, 0, 0, 0, 0, 3, 0, 0]);
    expect(() => new StartupReader().next(huge)).toThrow(FramingError);
    const tiny = Buffer.from([0, 0, 0, 2]);
    expect(() => new StartupReader().next(tiny)).toThrow(FramingError);
  });
});
