import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { Frontend, frontendMessageProblem } from '../../src/protocol/frontend-checks.js';
import { message } from '../support/wire.js';

const RUNS = { numRuns: 300 };

function problem(bytes: Buffer): string | null {
  return frontendMessageProblem(bytes[0] as number, bytes);
}

/** A frame of type `type` around `body`, its length field set to match. */
function frame(type: number, body: Buffer): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

/** The same message with its body replaced (length fixed), never touching pg-protocol's shared buffers. */
function withBody(bytes: Buffer, body: Buffer): Buffer {
  return frame(bytes[0] as number, body);
}

const body = (bytes: Buffer): Buffer => bytes.subarray(5);
const int16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
};
const int32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const cstring = (s: string): Buffer => Buffer.from(`${s}\0`);

/** A FunctionCall (pg-protocol does not build one). */
function functionCall(oid: number, formats: number[], args: Array<Buffer | null>, resultFormat: number): Buffer {
  const parts = [int32(oid), int16(formats.length), ...formats.map(int16), int16(args.length)];
  for (const arg of args) parts.push(arg === null ? int32(-1) : Buffer.concat([int32(arg.length), arg]));
  parts.push(int16(resultFormat));
  return message('F', Buffer.concat(parts));
}

const WELL_FORMED: Array<[string, Buffer]> = [
  ['query', serialize.query('SELECT 1')],
  ['empty query', serialize.query('')],
  ['parse without types', serialize.parse({ text: 'SELECT $1' })],
  ['named parse with types', serialize.parse({ name: 's1', text: 'SELECT $1, $2', types: [23, 25] })],
  ['bind without values', serialize.bind()],
  ['bind with text values and NULLs', serialize.bind({ portal: 'p', statement: 's1', values: ['a', null, '', 'x\0y'] })],
  ['bind with binary values', serialize.bind({ statement: 's1', values: [Buffer.from([0, 0, 0, 1]), null], binary: true })],
  ['describe statement', serialize.describe({ type: 'S', name: 's1' })],
  ['describe unnamed portal', serialize.describe({ type: 'P' })],
  ['close statement', serialize.close({ type: 'S', name: 's1' })],
  ['close unnamed portal', serialize.close({ type: 'P' })],
  ['execute', serialize.execute()],
  ['execute named portal with a row limit', serialize.execute({ portal: 'p', rows: 100 })],
  ['sync', serialize.sync()],
  ['flush', serialize.flush()],
  ['copyData', serialize.copyData(Buffer.from('1\tone\n'))],
  ['empty copyData', serialize.copyData(Buffer.alloc(0))],
  ['copyDone', serialize.copyDone()],
  ['copyFail', serialize.copyFail('client gave up')],
  ['end (Terminate)', serialize.end()],
  ['cleartext password', serialize.password('secret')],
  ['SASL initial response', serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=abc')],
  ['SASL response', serialize.sendSCRAMClientFinalMessage('c=biws,r=abc,p=xyz')],
  ['function call', functionCall(1598, [0], [Buffer.from('42'), null], 1)],
  ['function call without arguments', functionCall(2259, [], [], 0)],
];

describe('frontendMessageProblem: well-formed messages', () => {
  it.each(WELL_FORMED)('accepts %s', (_label, bytes) => {
    expect(problem(bytes)).toBeNull();
  });

  it('accepts counts above 32767: they are unsigned, as the server reads them (libpq allows 65535)', () => {
    const types = Array.from({ length: 40_000 }, () => 23);
    expect(problem(serialize.parse({ text: 'SELECT 1', types }))).toBeNull();
    expect(problem(serialize.bind({ values: Array.from({ length: 65_535 }, () => null) }))).toBeNull();
  });

  it('leaves a Bind format count that matches neither 1 nor the parameter count to the server', () => {
    // The server answers this one with a clean ERROR once it has looked the statement up.
    const bind = message('B', Buffer.concat([cstring(''), cstring(''), int16(2), int16(0), int16(0), int16(3),
      int32(-1), int32(-1), int32(-1), int16(0)]));
    expect(problem(bind)).toBeNull();
  });
});

describe('frontendMessageProblem: malformed messages', () => {
  it.each([
    ['5000000007616263', 'Parse message: statement name is not NUL-terminated'],
    ['4400000004', 'Describe message: target kind is missing'],
    ['440000000753616263', 'Describe message: name is not NUL-terminated'],
    ['430000000753616263', 'Close message: name is not NUL-terminated'],
    ['5100000007616263', 'Query message: query string is not NUL-terminated'],
    ['4200000007616263', 'Bind message: portal name is not NUL-terminated'],
    ['500000000d0053454c4543542031000005', 'Parse message: declares more parameter types than it holds'],
  ])('reports %s', (hex, expected) => {
    const given = Buffer.from(hex, 'hex');
    expect(problem(given)).toEqual(expect.any(String));
    // Three of these byte strings carry a length field that is off (7 for 8 body-and-length
    // bytes, 13 for 16), which the framer would never hand over as one message; with the length
    // fixed, each is reported for the fault it was written to show.
    expect(problem(withBody(given, body(given)))).toBe(expected);
  });

  const structured = WELL_FORMED.filter(([, bytes]) => bytes[0] !== Frontend.CopyData && bytes[0] !== Frontend.Password);
  it.each(structured)('reports a byte of trailing garbage after %s', (_label, bytes) => {
    const garbage = withBody(bytes, Buffer.concat([body(bytes), Buffer.from([0x21])]));
    expect(problem(garbage)).toMatch(/unexpected (data|body)/);
  });

  it('reports counts that do not fit (what a negative int16 count reads as)', () => {
    expect(problem(message('P', Buffer.concat([cstring(''), cstring('SELECT 1'), int16(-1)])))).toBe(
      'Parse message: declares more parameter types than it holds',
    );
    expect(problem(message('B', Buffer.concat([cstring(''), cstring(''), int16(-1), int16(0), int16(0)])))).toBe(
      'Bind message: declares more parameter formats than it holds',
    );
    expect(problem(message('B', Buffer.concat([cstring(''), cstring(''), int16(0), int16(-1), int16(0)])))).toBe(
      'Bind message: a parameter length is missing',
    );
    expect(problem(message('B', Buffer.concat([cstring(''), cstring(''), int16(0), int16(0), int16(-32768)])))).toBe(
      'Bind message: declares more result formats than it holds',
    );
    expect(problem(message('F', Buffer.concat([int32(1598), int16(-2), int16(0), int16(0)])))).toBe(
      'FunctionCall message: declares more argument formats than it holds',
    );
  });

  it('reports a Bind parameter length that runs past the end or is negative but not -1', () => {
    const past = message('B', Buffer.concat([cstring(''), cstring(''), int16(0), int16(1), int32(10), Buffer.from('abc'), int16(0)]));
    expect(problem(past)).toBe('Bind message: a parameter value runs past the end of the message');
    const huge = message('B', Buffer.concat([cstring(''), cstring(''), int16(0), int16(1), int32(0x7fffffff), int16(0)]));
    expect(problem(huge)).toBe('Bind message: a parameter value runs past the end of the message');
    const negative = message('B', Buffer.concat([cstring(''), cstring(''), int16(0), int16(1), int32(-2), int16(0)]));
    expect(problem(negative)).toBe('Bind message: invalid parameter length');
    const argument = message('F', Buffer.concat([int32(1598), int16(0), int16(1), int32(-5), int16(0)]));
    expect(problem(argument)).toBe('FunctionCall message: invalid argument length');
  });

  it("reports a Describe or Close whose kind is not 'S' or 'P'", () => {
    expect(problem(message('D', 'Xname\0'))).toBe("Describe message: target kind must be 'S' or 'P'");
    expect(problem(message('C', 's\0'))).toBe("Close message: target kind must be 'S' or 'P'");
  });

  it('reports a body on messages that have none', () => {
    expect(problem(message('S', '\0'))).toBe('Sync message: unexpected body');
    expect(problem(message('H', 'x'))).toBe('Flush message: unexpected body');
    expect(problem(message('c', 'x'))).toBe('CopyDone message: unexpected body');
    expect(problem(message('X', 'x'))).toBe('Terminate message: unexpected body');
  });

  it('reports an empty password message and an Execute without its row limit', () => {
    expect(problem(message('p', ''))).toBe('Password message: body is empty');
    expect(problem(message('E', '\0\0\0'))).toBe('Execute message: row limit is missing');
  });

  it('reports unknown type bytes, with the hex code when the byte is not printable', () => {
    expect(problem(message('Z', ''))).toBe('unknown message type "Z"');
    expect(problem(message('A', 'x\0'))).toBe('unknown message type "A"');
    expect(problem(frame(0x00, Buffer.alloc(0)))).toBe('unknown message type 0x00');
    expect(problem(frame(0xff, Buffer.from('x')))).toBe('unknown message type 0xff');
  });

  it('reports a length field that disagrees with the message', () => {
    const query = Buffer.from(serialize.query('SELECT 1'));
    query.writeInt32BE(query.length, 1);
    expect(problem(query)).toBe('message length does not match its length field');
    expect(problem(Buffer.from([0x53, 0, 0]))).toBe('message length does not match its length field');
  });
});

// ---- properties ------------------------------------------------------------------------------

const name = fc.string({ unit: 'binary', maxLength: 12 }).map((s) => s.replaceAll('\0', ''));
const text = fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.replaceAll('\0', ''));
const bytes = fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a));
const value = fc.oneof(fc.constant(null), fc.string({ unit: 'binary', maxLength: 16 }), bytes);

/** Every kind of message a driver sends, as pg-protocol's serializer builds it. */
const wellFormed: fc.Arbitrary<Buffer> = fc.oneof(
  text.map((t) => serialize.query(t)),
  fc.record({ name, text, types: fc.array(fc.nat(), { maxLength: 6 }) }).map((p) => serialize.parse(p)),
  fc.record({ portal: name, statement: name, values: fc.array(value, { maxLength: 6 }), binary: fc.boolean() })
    .map((b) => serialize.bind(b)),
  fc.record({ type: fc.constantFrom<'S' | 'P'>('S', 'P'), name }).map((d) => serialize.describe(d)),
  fc.record({ type: fc.constantFrom<'S' | 'P'>('S', 'P'), name }).map((d) => serialize.close(d)),
  fc.record({ portal: name, rows: fc.nat() }).map((e) => serialize.execute(e)),
  fc.constantFrom(serialize.sync(), serialize.flush(), serialize.copyDone(), serialize.end()),
  bytes.map((b) => serialize.copyData(b)),
  text.map((t) => serialize.copyFail(t)),
  fc.tuple(name, text).map(([mechanism, response]) => serialize.sendSASLInitialResponseMessage(mechanism, response)),
  fc.tuple(fc.nat(), fc.array(fc.constantFrom(0, 1), { maxLength: 3 }), fc.array(fc.oneof(fc.constant(null), bytes), { maxLength: 4 }), fc.constantFrom(0, 1))
    .map(([oid, formats, args, result]) => functionCall(oid, formats, args, result)),
).map((m) => Buffer.from(m)); // a private copy: pg-protocol reuses some buffers

const anyType = fc.oneof(
  fc.constantFrom(...'QPBDCESHdcfFXpZA'.split('').map((c) => c.charCodeAt(0))),
  fc.integer({ min: 0, max: 255 }),
);

/**
 * The server's way of reading each message, written the plain way (a cursor, reads that throw
 * when the data runs out, as pq_getmsgstring / pq_getmsgint / pq_getmsgbytes / pq_getmsgend do),
 * plus the rules pgfence adds: an 'S'/'P' kind, nothing after CopyFail's string, no body on
 * CopyDone and Terminate. The checker must agree with it on every message.
 */
function acceptedByReference(msg: Buffer): boolean {
  if (msg.length < 5 || msg.readInt32BE(1) !== msg.length - 1) return false;
  let at = 5;
  const need = (n: number): void => {
    if (n < 0 || msg.length - at < n) throw new Error('insufficient data left in message');
  };
  const string = (): void => {
    const nul = msg.indexOf(0, at);
    if (nul < 0) throw new Error('invalid string in message');
    at = nul + 1;
  };
  const uint16 = (): number => (need(2), (at += 2), msg.readUInt16BE(at - 2));
  const int32 = (): number => (need(4), (at += 4), msg.readInt32BE(at - 4));
  const counted = (): void => {
    const n = int32();
    if (n !== -1) {
      need(n);
      at += n;
    }
  };
  const end = (): void => {
    if (at !== msg.length) throw new Error('invalid message format');
  };
  try {
    switch (String.fromCharCode(msg[0] as number)) {
      case 'Q':
      case 'f':
        string();
        break;
      case 'P': {
        string();
        string();
        for (let n = uint16(); n > 0; n--) int32();
        break;
      }
      case 'B': {
        string();
        string();
        for (let n = uint16(); n > 0; n--) uint16();
        for (let n = uint16(); n > 0; n--) counted();
        for (let n = uint16(); n > 0; n--) uint16();
        break;
      }
      case 'D':
      case 'C': {
        need(1);
        const kind = msg[at++];
        if (kind !== 0x53 && kind !== 0x50) return false;
        string();
        break;
      }
      case 'E':
        string();
        int32();
        break;
      case 'F': {
        int32();
        for (let n = uint16(); n > 0; n--) uint16();
        for (let n = uint16(); n > 0; n--) counted();
        uint16();
        break;
      }
      case 'S':
      case 'H':
      case 'c':
      case 'X':
        break;
      case 'd':
        return true;
      case 'p':
        return msg.length > 5;
      default:
        return false;
    }
    end();
    return true;
  } catch {
    return false;
  }
}

type Mutation = (b: Buffer) => Buffer;
const interesting = fc.oneof(fc.constantFrom(0x00, 0xff, 0x80, 0x7f, 0x01, 0x53, 0x50), fc.integer({ min: 0, max: 255 }));
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.tuple(fc.nat(), interesting).map(([i, v]): Mutation => (b) => {
    const out = Buffer.from(b);
    if (out.length > 0) out[i % out.length] = v;
    return out;
  }),
  fc.tuple(fc.nat(), interesting).map(([i, v]): Mutation => (b) => {
    const at = i % (b.length + 1);
    return Buffer.concat([b.subarray(0, at), Buffer.from([v]), b.subarray(at)]);
  }),
  fc.nat().map((i): Mutation => (b) => {
    const at = i % (b.length + 1);
    return Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
  }),
);

describe('frontendMessageProblem: properties', () => {
  it('never throws on arbitrary bytes, whether or not the length field is right', () => {
    fc.assert(
      fc.property(anyType, fc.uint8Array({ maxLength: 64 }), fc.boolean(), (type, raw, fixLength) => {
        const msg = fixLength ? frame(type, Buffer.from(raw)) : Buffer.concat([Buffer.from([type]), Buffer.from(raw)]);
        const result = frontendMessageProblem(type, msg);
        expect(result === null || (typeof result === 'string' && result.length > 0)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('accepts every well-formed message and reports every truncation of a structured one', () => {
    fc.assert(
      fc.property(wellFormed, (msg) => {
        expect(problem(msg)).toBeNull();
        const type = msg[0] as number;
        const whole = body(msg);
        for (let cut = 0; cut < whole.length; cut++) {
          const result = problem(withBody(msg, whole.subarray(0, cut)));
          // Message bodies are self-delimiting, so no strict prefix is well-formed; only CopyData
          // (any bytes) and a non-empty password message (opaque here) may be cut anywhere.
          if (type === Frontend.CopyData || (type === Frontend.Password && cut > 0)) expect(result).toBeNull();
          else expect(result).toEqual(expect.any(String));
        }
      }),
      RUNS,
    );
  });

  it('agrees with a plain reading of each message after random byte edits', () => {
    fc.assert(
      fc.property(wellFormed, fc.array(mutation, { minLength: 1, maxLength: 3 }), (msg, edits) => {
        let edited = body(msg);
        for (const edit of edits) edited = edit(edited);
        const candidate = withBody(msg, edited);
        expect(problem(candidate) === null).toBe(acceptedByReference(candidate));
      }),
      { numRuns: 3000 },
    );
  });
});
