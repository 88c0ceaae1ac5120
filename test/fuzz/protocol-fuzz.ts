/**
 * The cases of a seeded, count-bounded fuzzer of what clients send pgfence (run by run-cases.ts,
 * for the suite in protocol-fuzz.test.ts and for long runs in scripts/fuzz-protocol.ts).
 *
 * Each case is one client connection, generated from (seed, mode, case number) alone so that any
 * case can be replayed on its own: a tenant, a state to bring the client into (a mutated startup
 * packet or password message; idle; queued for the only backend in transaction pooling;
 * mid-transaction; mid-batch without Sync; mid-COPY FROM STDIN), and the bytes to send there:
 * valid messages mutated by bit flips, truncation, length fields, type bytes, random bytes,
 * duplication and reordering, split into several writes. The framing functions tell the runner
 * how to complete those bytes to a message boundary, and which of them pgfence must refuse.
 */
import { serialize } from 'pg-protocol';
import type { ConfigInput } from '../../src/config/schema.js';
import { CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, PROTOCOL_3_0, SSL_REQUEST_CODE } from '../../src/protocol/codes.js';
import { MAX_STARTUP_PACKET } from '../../src/protocol/startup.js';
import { mulberry32, type Rng } from '../corpus/mutate.js';
import { passwordMessage, startupMessage } from '../support/wire.js';

export type PoolMode = 'session' | 'transaction';

/** Where the client is when it sends the mutated bytes. */
export type CaseState =
  | 'startup' // the bytes are its startup packet
  | 'password' // the bytes are its password message (and whatever follows it)
  | 'idle' // authenticated, between transactions
  | 'queued' // transaction pooling: the only backend is in another tenant's open transaction
  | 'transaction' // after BEGIN
  | 'batch' // after a Parse and a Bind, no Sync
  | 'copy'; // after COPY items (note) FROM STDIN

/** The largest message the fuzzed pgfence accepts: declared lengths up to it are completed. */
export const FUZZ_MAX_MESSAGE_BYTES = 64 * 1024;

/** The configuration the fuzzer expects pgfence to run with (merged into a test configuration). */
export function fuzzConfig(mode: PoolMode): Pick<ConfigInput, 'listen' | 'pool'> {
  return {
    // The startup timeout is far beyond any case's own limit, so that a hang is never hidden by it.
    listen: { host: '127.0.0.1', port: 0, maxMessageBytes: FUZZ_MAX_MESSAGE_BYTES, startupTimeoutMs: 60_000 },
    // One backend in transaction pooling: every case and every other client share it.
    pool: { mode, size: mode === 'transaction' ? 1 : 8, acquireTimeoutMs: 5_000 },
  };
}

// ---- generation ------------------------------------------------------------------------------

export interface FuzzCase {
  readonly seed: number;
  readonly mode: PoolMode;
  readonly index: number;
  readonly state: CaseState;
  readonly tenant: string;
  /** Another tenant: it holds the backend ('queued'), or used it last ('idle' with `repin`). */
  readonly other: string;
  /** Transaction pooling, 'idle': `other` runs a query first, so the backend must be re-pinned. */
  readonly repin: boolean;
  /** 'password': the startup packet and the bytes go in one write, before pgfence asks. */
  readonly pipelined: boolean;
  /** The mutated bytes. */
  readonly payload: Buffer;
  /** Offsets at which the payload is split into separate writes. */
  readonly splits: readonly number[];
  /** The mutations applied, in order. */
  readonly steps: readonly string[];
}

const STATES: Record<PoolMode, ReadonlyArray<readonly [CaseState, number]>> = {
  session: [['startup', 2], ['password', 2], ['idle', 4], ['transaction', 2], ['batch', 2], ['copy', 2]],
  transaction: [['startup', 1], ['password', 1], ['idle', 3], ['queued', 3], ['transaction', 2], ['batch', 2], ['copy', 2]],
};

/** The seed of one case, mixed from the run's seed, the mode and the case number. */
export function caseSeed(seed: number, mode: PoolMode, index: number): number {
  return fmix32(fmix32(seed >>> 0) ^ fmix32((index + (mode === 'session' ? 0x9e3779b9 : 0x7f4a7c15)) >>> 0));
}

/** murmur3's finalizer: every input bit reaches every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)] as T;
const randomBytes = (rng: Rng, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(rng, 256)));

function weighted<T>(rng: Rng, items: ReadonlyArray<readonly [T, number]>): T {
  let r = rng() * items.reduce((sum, [, w]) => sum + w, 0);
  for (const [item, w] of items) {
    r -= w;
    if (r < 0) return item;
  }
  return (items[items.length - 1] as readonly [T, number])[0];
}

/**
 * One case, from its seed alone. `tokens` gives each tenant's token: a token's bytes differ from
 * run to run but its length does not, so a replayed case mutates the same places.
 */
export function generateCase(seed: number, mode: PoolMode, index: number, tenants: readonly string[], tokens: ReadonlyMap<string, string>): FuzzCase {
  const rng = mulberry32(caseSeed(seed, mode, index));
  const state = weighted(rng, STATES[mode]);
  const tenant = pick(rng, tenants);
  const other = pick(rng, tenants.filter((t) => t !== tenant));
  const repin = rng() < 0.7;
  const pipelined = rng() < 0.25;
  const steps: string[] = [];
  let payload: Buffer;
  if (state === 'startup') {
    payload = mutatedStartup(rng, tenant, steps);
  } else {
    const parts = state === 'password' ? passwordParts(rng, tokens.get(tenant) ?? '') : validMessages(rng, state);
    const count = rng() < 0.05 ? 0 : 1 + int(rng, 3);
    for (let i = 0; i < count; i++) {
      const [name, mutate] = pick(rng, TYPED_MUTATORS);
      steps.push(`${name} ${mutate(parts, rng)}`);
    }
    payload = Buffer.concat(parts);
  }
  const splits = payload.length < 2 ? [] : [...new Set(Array.from({ length: int(rng, 4) }, () => 1 + int(rng, payload.length - 1)))].sort((a, b) => a - b);
  return { seed, mode, index, state, tenant, other, repin, pipelined, payload, splits, steps };
}

const SQL = [
  'SELECT owner FROM items',
  'SELECT 1',
  "SELECT nextval('counter')",
  'BEGIN',
  'COMMIT',
  'ROLLBACK',
  'SELECT id, secret FROM secrets',
  'SHOW search_path',
  'COPY items (note) FROM STDIN',
  'COPY (SELECT owner FROM items) TO STDOUT',
  'SET statement_timeout = 5000',
  'SELECT $1::int + 1',
  'SELECT owner, note FROM items WHERE id = $1',
  '',
];

/** Copies: pg-protocol hands out shared buffers for some messages, and mutations write in place. */
const own = (bytes: Buffer): Buffer => Buffer.from(bytes);

function validMessage(rng: Rng): Buffer {
  switch (int(rng, 14)) {
    case 0:
    case 1:
      return own(serialize.query(pick(rng, SQL)));
    case 2:
      return own(serialize.parse({ name: pick(rng, ['', 's1']), text: pick(rng, SQL), types: pick(rng, [[], [23], [23, 25]]) }));
    case 3:
      return own(serialize.bind({ portal: pick(rng, ['', 'p1']), statement: pick(rng, ['', 's1']), values: pick(rng, [[], ['1'], [null], ['1', 'x']]) }));
    case 4:
      return own(serialize.describe({ type: pick(rng, ['S', 'P'] as const), name: pick(rng, ['', 's1', 'p1']) }));
    case 5:
      return own(serialize.execute({ portal: pick(rng, ['', 'p1']), rows: pick(rng, [0, 1]) }));
    case 6:
      return own(serialize.close({ type: pick(rng, ['S', 'P'] as const), name: pick(rng, ['', 's1', 'p1']) }));
    case 7:
    case 8:
      return own(serialize.sync());
    case 9:
      return own(serialize.flush());
    case 10:
      return own(serialize.copyData(Buffer.from(pick(rng, ['fuzz note\n', 'a\tb\n', '\\.\n', '']))));
    case 11:
      return own(serialize.copyDone());
    case 12:
      return own(serialize.copyFail('fuzz'));
    default:
      return rng() < 0.5 ? functionCall() : own(serialize.end());
  }
}

/** A fast-path FunctionCall of set_config (OID 2078) with no arguments. */
function functionCall(): Buffer {
  const body = Buffer.alloc(10);
  body.writeInt32BE(2078, 0);
  return typed('F', body);
}

function typed(type: string, body: Buffer): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

/** Valid client messages: a coherent exchange for the state, or a random handful. */
function validMessages(rng: Rng, state: CaseState): Buffer[] {
  if (rng() < 0.5) {
    const sql = pick(rng, SQL);
    const sequences: Array<() => Buffer[]> = [
      () => [serialize.query(sql)],
      () => [serialize.parse({ text: sql }), serialize.bind({ values: ['1'] }), serialize.describe({ type: 'P' }), serialize.execute({}), serialize.sync()],
      () => [
        serialize.parse({ name: 's1', text: sql, types: [23] }),
        serialize.bind({ portal: 'p1', statement: 's1', values: ['1'] }),
        serialize.execute({ portal: 'p1', rows: 1 }),
        serialize.close({ type: 'S', name: 's1' }),
        serialize.sync(),
      ],
      () => [serialize.copyData(Buffer.from('fuzz note\n')), serialize.copyData(Buffer.from('more\n')), serialize.copyDone()],
    ];
    const sequence = state === 'copy' && rng() < 0.5 ? (sequences[3] as () => Buffer[]) : pick(rng, sequences);
    return sequence().map(own);
  }
  return Array.from({ length: 1 + int(rng, 5) }, () => validMessage(rng));
}

/** A password message (usually the real token) and, sometimes, messages sent right after it. */
function passwordParts(rng: Rng, token: string): Buffer[] {
  const password = pick(rng, [
    () => passwordMessage(token),
    () => passwordMessage(token),
    () => passwordMessage(token),
    () => typed('p', Buffer.from(token)), // no NUL
    () => typed('p', Buffer.alloc(0)),
    () => passwordMessage(''),
    () => own(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=,r=fuzz')),
  ])();
  return rng() < 0.3 ? [password, ...validMessages(rng, 'idle')] : [password];
}

type Mutator = (parts: Buffer[], rng: Rng) => string;

const TYPE_BYTES = [...'BCDEFHPQSXcdfp', ...'ZTRK1'].map((c) => c.charCodeAt(0));
const LENGTHS = (length: number): number[] => [0, 1, 2, 3, 4, -1, length - 1, length + 1, length + 1 + 64, FUZZ_MAX_MESSAGE_BYTES, FUZZ_MAX_MESSAGE_BYTES + 1, 0x7fffffff, -0x80000000];

function someIndex(parts: Buffer[], rng: Rng, minLength = 1): number {
  const candidates = parts.map((p, i) => (p.length >= minLength ? i : -1)).filter((i) => i >= 0);
  return candidates.length === 0 ? -1 : pick(rng, candidates);
}

/** Mutations of a list of messages; each returns what it did. */
const TYPED_MUTATORS: ReadonlyArray<readonly [string, Mutator]> = [
  ['bit-flip', (parts, rng) => flipBits(parts, rng)],
  ['bit-flip', (parts, rng) => flipBits(parts, rng)],
  [
    'truncate-body', // shorter body, length field made to match: framed right, malformed inside
    (parts, rng) => {
      const i = someIndex(parts, rng, 6);
      if (i < 0) return 'none';
      const part = parts[i] as Buffer;
      const body = part.subarray(5, 5 + int(rng, part.length - 5));
      parts[i] = typed(String.fromCharCode(part[0] as number), body);
      return `#${i} to ${body.length} bytes`;
    },
  ],
  [
    'truncate', // cut short, length field kept: what follows is read as the rest of it
    (parts, rng) => {
      const i = someIndex(parts, rng, 2);
      if (i < 0) return 'none';
      const part = parts[i] as Buffer;
      const cut = 1 + int(rng, part.length - 1);
      parts[i] = part.subarray(0, cut);
      return `#${i} at ${cut}`;
    },
  ],
  [
    'length',
    (parts, rng) => {
      const i = someIndex(parts, rng, 5);
      if (i < 0) return 'none';
      const part = parts[i] as Buffer;
      const length = rng() < 0.3 ? int(rng, FUZZ_MAX_MESSAGE_BYTES) : pick(rng, LENGTHS(part.readInt32BE(1)));
      part.writeInt32BE(length | 0, 1);
      return `#${i} = ${length | 0}`;
    },
  ],
  [
    'type',
    (parts, rng) => {
      const i = someIndex(parts, rng);
      if (i < 0) return 'none';
      const type = rng() < 0.5 ? int(rng, 256) : pick(rng, TYPE_BYTES);
      (parts[i] as Buffer)[0] = type;
      return `#${i} = 0x${type.toString(16)}`;
    },
  ],
  [
    'strip-nul',
    (parts, rng) => {
      const i = someIndex(parts, rng, 6);
      if (i < 0) return 'none';
      const part = parts[i] as Buffer;
      for (let at = 5; at < part.length; at++) if (part[at] === 0) part[at] = 1 + int(rng, 255);
      return `#${i}`;
    },
  ],
  [
    'int16',
    (parts, rng) => {
      const i = someIndex(parts, rng, 7);
      if (i < 0) return 'none';
      const part = parts[i] as Buffer;
      const at = 5 + int(rng, part.length - 6);
      const value = pick(rng, [0xffff, 0x7fff, 0x8000, 1, int(rng, 0x10000)]);
      part.writeUInt16BE(value, at);
      return `#${i}@${at} = ${value}`;
    },
  ],
  [
    'int32',
    (parts, rng) => {
      const i = someIndex(parts, rng, 9);
      if (i < 0) return 'none';
      const part = parts[i] as Buffer;
      const at = 5 + int(rng, part.length - 8);
      const value = pick(rng, [-1, 0x7fffffff, -0x80000000, 0, int(rng, 0x100000000) | 0]);
      part.writeInt32BE(value, at);
      return `#${i}@${at} = ${value}`;
    },
  ],
  [
    'random-message',
    (parts, rng) => {
      const at = int(rng, parts.length + 1);
      const type = rng() < 0.7 ? pick(rng, TYPE_BYTES) : int(rng, 256);
      parts.splice(at, 0, typed(String.fromCharCode(type), randomBytes(rng, int(rng, 65))));
      return `0x${type.toString(16)} at #${at}`;
    },
  ],
  [
    'random-bytes',
    (parts, rng) => {
      const at = int(rng, parts.length + 1);
      const n = 1 + int(rng, 32);
      parts.splice(at, 0, randomBytes(rng, n));
      return `${n} at #${at}`;
    },
  ],
  [
    'duplicate',
    (parts, rng) => {
      const i = someIndex(parts, rng);
      if (i < 0) return 'none';
      const at = int(rng, parts.length + 1);
      parts.splice(at, 0, Buffer.from(parts[i] as Buffer));
      return `#${i} at #${at}`;
    },
  ],
  [
    'drop',
    (parts, rng) => {
      if (parts.length < 2) return 'none';
      const i = int(rng, parts.length);
      parts.splice(i, 1);
      return `#${i}`;
    },
  ],
  [
    'shuffle',
    (parts, rng) => {
      for (let i = parts.length - 1; i > 0; i--) {
        const j = int(rng, i + 1);
        [parts[i], parts[j]] = [parts[j] as Buffer, parts[i] as Buffer];
      }
      return `${parts.length} messages`;
    },
  ],
];

function flipBits(parts: Buffer[], rng: Rng): string {
  const i = someIndex(parts, rng);
  if (i < 0) return 'none';
  const part = parts[i] as Buffer;
  const flips = Array.from({ length: 1 + int(rng, 4) }, () => [int(rng, part.length), int(rng, 8)] as const);
  for (const [at, bit] of flips) part[at] = (part[at] as number) ^ (1 << bit);
  return `#${i} at ${flips.map(([at, bit]) => `${at}.${bit}`).join(',')}`;
}

const STARTUP_CODES = [SSL_REQUEST_CODE, GSSENC_REQUEST_CODE, CANCEL_REQUEST_CODE, PROTOCOL_3_0, PROTOCOL_3_0 + 1, 2 << 16, 1234, 0, -1];

/** A startup packet of the tenant's user, mutated; never longer than the length it declares. */
function mutatedStartup(rng: Rng, tenant: string, steps: string[]): Buffer {
  const params: Record<string, string> = { user: `${tenant}-user`, database: 'app' };
  if (rng() < 0.3) params['application_name'] = 'fuzz';
  if (rng() < 0.2) {
    const [name, value] = pick(rng, [
      ['options', '-c search_path=public'],
      ['replication', 'true'],
      ['client_encoding', 'SQL_ASCII'],
      ['search_path', 'public'],
      ['x'.repeat(300), 'y'],
      ['', 'empty'],
    ] as const);
    params[name] = value;
    steps.push(`param ${name.slice(0, 20)}=${value}`);
  }
  let packet = startupMessage(params);
  const count = rng() < 0.05 ? 0 : 1 + int(rng, 2);
  for (let i = 0; i < count; i++) {
    const op = int(rng, 8);
    switch (op) {
      case 0:
      case 1:
        steps.push(`bit-flip ${flipBits([packet], rng)}`);
        break;
      case 2: {
        const cut = int(rng, packet.length);
        packet = packet.subarray(0, cut);
        steps.push(`truncate at ${cut}`);
        break;
      }
      case 3: {
        const cut = Math.min(packet.length, 8 + int(rng, Math.max(1, packet.length - 8)));
        packet = Buffer.from(packet.subarray(0, cut));
        if (packet.length >= 4) packet.writeInt32BE(packet.length, 0);
        steps.push(`truncate-body to ${cut}`);
        break;
      }
      case 4: {
        if (packet.length < 4) break;
        const length = pick(rng, [0, 4, 7, 8, 9, packet.length - 1, packet.length + 1, MAX_STARTUP_PACKET, MAX_STARTUP_PACKET + 1, 0x7fffffff, -1, int(rng, MAX_STARTUP_PACKET)]);
        packet.writeInt32BE(length, 0);
        steps.push(`length = ${length}`);
        break;
      }
      case 5: {
        if (packet.length < 8) break;
        const code = pick(rng, STARTUP_CODES);
        packet.writeInt32BE(code, 4);
        steps.push(`code = ${code}`);
        break;
      }
      case 6:
        for (let at = 8; at < packet.length; at++) if (packet[at] === 0) packet[at] = 1 + int(rng, 255);
        steps.push('strip-nul');
        break;
      default:
        packet = randomBytes(rng, int(rng, 65));
        steps.push(`random ${packet.length} bytes`);
    }
  }
  // Bytes beyond the declared length would start a second packet: keep a case to one.
  if (packet.length >= 4) {
    const declared = packet.readInt32BE(0);
    if (declared >= 8 && declared <= MAX_STARTUP_PACKET && packet.length > declared) packet = packet.subarray(0, declared);
  }
  return Buffer.from(packet);
}

// ---- framing as pgfence sees it --------------------------------------------------------------

/**
 * How many zero bytes complete the last message of a typed stream, so that pgfence's framer ends
 * on a message boundary; `refused` when a header it must refuse comes first (only the header is
 * completed then); `terminates` when a Terminate (of any length) comes before: pgfence may close
 * there without a word, or drop it and read on, as it (like Postgres) does while it skips to Sync.
 */
export function typedCompletion(bytes: Buffer, maxMessageBytes: number): { padding: number; refused: boolean; terminates: boolean } {
  let offset = 0;
  let terminates = false;
  while (offset < bytes.length) {
    const rest = bytes.length - offset;
    const header = rest >= 5 ? bytes.subarray(offset, offset + 5) : Buffer.concat([bytes.subarray(offset), Buffer.alloc(5 - rest)]);
    const length = header.readInt32BE(1);
    if (length < 4 || length > maxMessageBytes) return { padding: Math.max(0, 5 - rest), refused: true, terminates };
    terminates ||= header[0] === 0x58;
    if (rest < 1 + length) return { padding: 1 + length - rest, refused: false, terminates };
    offset += 1 + length;
  }
  return { padding: 0, refused: false, terminates };
}

/**
 * The first message of a typed stream that is certainly malformed, described; null if none is.
 * Certainly: a Query, Parse, Bind, Describe or Close one of whose fields runs past the end of the
 * message (the issue's shapes). Whatever a stricter validator might also refuse is not judged:
 * counts of 32768 or more, parameter lengths below -1, unknown Describe kinds, trailing bytes.
 * Reading stops at a length pgfence must refuse; a Terminate before it ends the connection anyway.
 */
export function firstMalformedMessage(stream: Buffer, maxMessageBytes: number): string | null {
  let offset = 0;
  for (let n = 0; offset + 5 <= stream.length; n++) {
    const type = stream[offset] as number;
    const length = stream.readInt32BE(offset + 1);
    if (length < 4 || length > maxMessageBytes || offset + 1 + length > stream.length) return null;
    if (fieldRunsPastEnd(type, stream.subarray(offset + 5, offset + 1 + length))) return `message #${n} (${String.fromCharCode(type)}, ${length - 4}-byte body)`;
    offset += 1 + length;
  }
  return null;
}

function fieldRunsPastEnd(type: number, body: Buffer): boolean {
  let at = 0;
  const cstring = (): boolean => {
    const end = body.indexOf(0, at);
    if (end < 0) return false;
    at = end + 1;
    return true;
  };
  const skip = (n: number): boolean => {
    if (at + n > body.length) return false;
    at += n;
    return true;
  };
  /** An int16 count; -1 when missing, -2 when too large to judge. */
  const count = (): number => {
    if (at + 2 > body.length) return -1;
    const value = body.readUInt16BE(at);
    at += 2;
    return value >= 0x8000 ? -2 : value;
  };
  switch (String.fromCharCode(type)) {
    case 'Q':
      return !cstring();
    case 'D':
    case 'C':
      if (body.length === 0) return true;
      if (body[0] !== 0x53 && body[0] !== 0x50) return false; // S or P
      at = 1;
      return !cstring();
    case 'P': {
      if (!cstring() || !cstring()) return true;
      const types = count();
      return types === -1 || (types >= 0 && !skip(4 * types));
    }
    case 'B': {
      if (!cstring() || !cstring()) return true;
      const formats = count();
      if (formats === -2) return false;
      if (formats === -1 || !skip(2 * formats)) return true;
      const values = count();
      if (values === -2) return false;
      if (values === -1) return true;
      for (let i = 0; i < values; i++) {
        if (at + 4 > body.length) return true;
        const size = body.readInt32BE(at);
        at += 4;
        if (size < -1) return false;
        if (size >= 0 && !skip(size)) return true;
      }
      const results = count();
      return results === -1 || (results >= 0 && !skip(2 * results));
    }
    default:
      return false;
  }
}

export type StartupKind = 'refused' | 'ssl' | 'gssenc' | 'cancel' | 'startup' | 'unsupported';

/** How many zero bytes complete a startup packet, and what pgfence will take it for. */
export function startupCompletion(packet: Buffer): { padding: number; kind: StartupKind } {
  const head = packet.length >= 4 ? packet : Buffer.concat([packet, Buffer.alloc(4 - packet.length)]);
  const length = head.readInt32BE(0);
  if (length < 8 || length > MAX_STARTUP_PACKET) return { padding: Math.max(0, 4 - packet.length), kind: 'refused' };
  const padding = Math.max(0, length - packet.length);
  const code = Buffer.concat([packet, Buffer.alloc(padding)]).readInt32BE(4);
  switch (code) {
    case SSL_REQUEST_CODE:
      return { padding, kind: 'ssl' };
    case GSSENC_REQUEST_CODE:
      return { padding, kind: 'gssenc' };
    case CANCEL_REQUEST_CODE:
      return { padding, kind: length === 16 ? 'cancel' : 'refused' };
    case PROTOCOL_3_0:
      return { padding, kind: 'startup' };
    default:
      return { padding, kind: 'unsupported' };
  }
}

/** A case in words and bytes, for a failure report. */
export function describeCase(c: FuzzCase): string {
  const hex = c.payload.toString('hex');
  const where = c.state === 'queued' ? ` (backend held by ${c.other})` : c.state === 'idle' && c.mode === 'transaction' && c.repin ? ` (backend pinned to ${c.other})` : '';
  return (
    `${c.mode} pooling, ${c.tenant} ${c.state}${where}${c.pipelined && c.state === 'password' ? ', pipelined' : ''}; ` +
    `mutations: ${c.steps.length === 0 ? 'none' : c.steps.join('; ')}; splits at ${c.splits.join(',') || 'none'}; ` +
    `${c.payload.length} bytes: ${hex.length > 400 ? `${hex.slice(0, 400)}...` : hex}`
  );
}
