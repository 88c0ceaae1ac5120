/**
 * The client of the large-result section, run as a child process by bench/large-measure.ts so that
 * the CPU time of the benchmark process (where pgfence runs) is not the client's. A raw protocol-3.0
 * socket client that frames messages by type byte and length and never decodes a row: it counts
 * bytes and DataRow/CopyData messages until ReadyForQuery.
 *
 * One JSON object per line on stdin and stdout, one query at a time:
 *   parent: {"endpoint": …, "sql": …}  child: {"ready": true} once connected, authenticated and idle
 *   parent: "go"                       child: the ReaderResult of sending the Query (then it disconnects)
 * A failure is {"error": "…"} in place of either answer. The child exits when stdin closes.
 */
import { message } from '../src/protocol/build.js';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { md5PasswordResponse, ScramClient } from '../src/backend/scram.js';
import type { Endpoint } from './pgbench.js';

export interface ReaderRequest {
  endpoint: Endpoint;
  sql: string;
}

export interface ReaderResult {
  /** Bytes received from sending the Query to the end of ReadyForQuery, every message included. */
  bytes: number;
  /** DataRow ('D') and CopyData ('d') messages among them. */
  rows: number;
  seconds: number;
  /** CPU time (user + system) of this reader process over the same span. */
  cpuMs: number;
}

export type ReaderAnswer = { ready: true } | ReaderResult | { error: string };

const READ_BUFFER_BYTES = 256 * 1024;
/** Bodies the reader keeps (authentication, errors, ReadyForQuery) are small; anything larger is a broken stream. */
const MAX_KEPT_BODY = 1 << 20;
const MAX_MESSAGE = 1 << 30;

/** Frames a byte stream into messages; keeps the body only of the types it is asked to, skips the rest by length. */
class Framer {
  private readonly head = Buffer.alloc(5);
  private headFill = 0;
  private type = 0;
  private bodyLeft = 0;
  private body: Buffer | null = null;
  private bodyFill = 0;
  bytes = 0;
  rows = 0;

  constructor(
    private readonly keeps: (type: number) => boolean,
    private readonly onMessage: (type: string, body: Buffer) => void,
  ) {}

  feed(chunk: Buffer, length: number): void {
    this.bytes += length;
    let i = 0;
    while (i < length) {
      if (this.headFill < 5) {
        if (this.headFill === 0 && i + 5 <= length) {
          this.startBody(chunk[i] as number, chunk.readInt32BE(i + 1));
          i += 5;
        } else {
          const n = Math.min(5 - this.headFill, length - i);
          chunk.copy(this.head, this.headFill, i, i + n);
          this.headFill += n;
          i += n;
          if (this.headFill < 5) return;
          this.startBody(this.head[0] as number, this.head.readInt32BE(1));
        }
        if (this.bodyLeft > 0) continue;
      } else {
        const n = Math.min(this.bodyLeft, length - i);
        if (this.body !== null) chunk.copy(this.body, this.bodyFill, i, i + n);
        this.bodyFill += n;
        this.bodyLeft -= n;
        i += n;
        if (this.bodyLeft > 0) return;
      }
      this.endMessage();
    }
  }

  private startBody(type: number, length: number): void {
    if (length < 4 || length > MAX_MESSAGE) throw new Error(`invalid message length ${length} for type ${String.fromCharCode(type)}`);
    const kept = this.keeps(type);
    if (kept && length - 4 > MAX_KEPT_BODY) throw new Error(`message ${String.fromCharCode(type)} of ${length} bytes`);
    this.type = type;
    this.headFill = 5;
    this.bodyLeft = length - 4;
    this.body = kept ? Buffer.alloc(length - 4) : null;
    this.bodyFill = 0;
  }

  private endMessage(): void {
    this.headFill = 0;
    const type = this.type;
    if (type === 0x44 /* D */ || type === 0x64 /* d */) this.rows++;
    if (this.body !== null) {
      const body = this.body;
      this.body = null;
      this.onMessage(String.fromCharCode(type), body);
    }
  }
}

const KEPT = new Set(['R', 'E', 'Z'].map((c) => c.charCodeAt(0)));

const cstring = (text: string): Buffer => Buffer.from(`${text}\0`, 'utf8');

function startupMessage(endpoint: Endpoint): Buffer {
  const params: Array<[string, string]> = [
    ['user', endpoint.user],
    ['database', endpoint.dbname],
  ];
  const options = endpoint.env['PGOPTIONS'];
  if (options !== undefined && options !== '') params.push(['options', options]);
  const body = Buffer.concat([...params.map(([k, v]) => cstring(`${k}\0${v}`)), Buffer.from([0])]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(196608, 4); // protocol 3.0
  return Buffer.concat([head, body]);
}

function saslInitial(mechanism: string, response: string): Buffer {
  const data = Buffer.from(response, 'utf8');
  const length = Buffer.alloc(4);
  length.writeInt32BE(data.length, 0);
  return message('p', Buffer.concat([cstring(mechanism), length, data]));
}

/** The M (message) field of an ErrorResponse, with its SQLSTATE. */
function errorText(body: Buffer): string {
  let code = '';
  let text = 'unknown error';
  for (const field of body.toString('utf8').split('\0')) {
    if (field.startsWith('C')) code = field.slice(1);
    if (field.startsWith('M')) text = field.slice(1);
  }
  return code === '' ? text : `${code} ${text}`;
}

/** One connection: startup and authentication, then one simple Query timed from write to ReadyForQuery. */
class Reader {
  private readonly buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  private readonly framer: Framer;
  private readonly socket: net.Socket;
  private scram: ScramClient | null = null;
  private phase: 'startup' | 'idle' | 'query' | 'done' = 'startup';
  private queryError: string | null = null;
  private started = 0;
  private cpuStart: NodeJS.CpuUsage | null = null;
  private settle: { resolve: (answer: ReaderAnswer) => void } | null = null;

  constructor(private readonly endpoint: Endpoint) {
    this.framer = new Framer((t) => KEPT.has(t), (type, body) => this.onMessage(type, body));
    this.socket = net.connect({
      host: endpoint.host,
      port: endpoint.port,
      noDelay: true,
      onread: {
        buffer: this.buffer,
        callback: (n) => {
          try {
            this.framer.feed(this.buffer, n);
          } catch (error) {
            this.fail(error instanceof Error ? error.message : String(error));
          }
          return true;
        },
      },
    });
    this.socket.on('error', (error) => this.fail(error.message));
    this.socket.on('close', () => this.fail('connection closed'));
  }

  /** Resolves {ready} once authenticated and idle, or {error}. */
  connect(): Promise<ReaderAnswer> {
    this.socket.once('connect', () => this.socket.write(startupMessage(this.endpoint)));
    return this.wait();
  }

  /** Sends the Query; resolves with the counts at ReadyForQuery. */
  query(sql: string): Promise<ReaderAnswer> {
    if (this.phase !== 'idle') return Promise.resolve({ error: `not idle (${this.phase})` });
    this.phase = 'query';
    const answer = this.wait();
    this.framer.bytes = 0;
    this.framer.rows = 0;
    this.cpuStart = process.cpuUsage();
    this.started = performance.now();
    this.socket.write(message('Q', cstring(sql)));
    return answer;
  }

  close(): void {
    this.phase = 'done';
    if (!this.socket.destroyed) this.socket.end(message('X', Buffer.alloc(0))); // Terminate; the server closes
  }

  private wait(): Promise<ReaderAnswer> {
    return new Promise((resolve) => (this.settle = { resolve }));
  }

  private answer(answer: ReaderAnswer): void {
    const settle = this.settle;
    this.settle = null;
    settle?.resolve(answer);
  }

  private fail(reason: string): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    this.socket.destroy();
    this.answer({ error: reason });
  }

  private onMessage(type: string, body: Buffer): void {
    if (type === 'E') {
      if (this.phase === 'query') this.queryError = errorText(body);
      else this.fail(`server error: ${errorText(body)}`);
      return;
    }
    if (type === 'R' && this.phase === 'startup') {
      this.authenticate(body);
      return;
    }
    if (type !== 'Z') return;
    if (this.phase === 'startup') {
      this.phase = 'idle';
      this.answer({ ready: true });
    } else if (this.phase === 'query') {
      const seconds = (performance.now() - this.started) / 1000;
      const cpu = process.cpuUsage(this.cpuStart ?? undefined);
      this.phase = 'idle';
      if (this.queryError !== null) this.answer({ error: `query failed: ${this.queryError}` });
      else this.answer({ bytes: this.framer.bytes, rows: this.framer.rows, seconds, cpuMs: (cpu.user + cpu.system) / 1000 });
    }
  }

  private authenticate(body: Buffer): void {
    const code = body.readInt32BE(0);
    const password = this.endpoint.env['PGPASSWORD'] ?? '';
    switch (code) {
      case 0: // AuthenticationOk
        return;
      case 3: // cleartext: pgfence takes the tenant's token here
        this.socket.write(message('p', cstring(password)));
        return;
      case 5: // md5
        this.socket.write(message('p', cstring(md5PasswordResponse(this.endpoint.user, password, body.subarray(4, 8)))));
        return;
      case 10: {
        const mechanisms = body.subarray(4).toString('utf8').split('\0').filter((m) => m !== '');
        if (!mechanisms.includes('SCRAM-SHA-256')) return this.fail(`unsupported SASL mechanisms: ${mechanisms.join(', ')}`);
        this.scram = new ScramClient(mechanisms, password);
        this.socket.write(saslInitial('SCRAM-SHA-256', this.scram.initialResponse()));
        return;
      }
      case 11:
        if (this.scram === null) return this.fail('unexpected SASL continue');
        // The server waits for this answer before it sends anything else: no message can overtake it.
        this.scram.finalResponse(body.subarray(4).toString('utf8')).then(
          (final) => this.socket.write(message('p', Buffer.from(final, 'utf8'))),
          (error: unknown) => this.fail(error instanceof Error ? error.message : String(error)),
        );
        return;
      case 12:
        if (this.scram === null) return this.fail('unexpected SASL final');
        try {
          this.scram.verifyServerFinal(body.subarray(4).toString('utf8'));
        } catch (error) {
          this.fail(error instanceof Error ? error.message : String(error));
        }
        return;
      default:
        this.fail(`unsupported authentication request ${code}`);
    }
  }
}

async function main(): Promise<void> {
  const reply = (answer: ReaderAnswer): void => void process.stdout.write(JSON.stringify(answer) + '\n');
  let reader: Reader | null = null;
  let sql = '';
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line === 'go') {
      if (reader === null) {
        reply({ error: 'go without a connection' });
        continue;
      }
      reply(await reader.query(sql));
      reader.close();
      reader = null;
      continue;
    }
    const request = JSON.parse(line) as ReaderRequest;
    reader?.close();
    sql = request.sql;
    reader = new Reader(request.endpoint);
    const answer = await reader.connect();
    if (!('ready' in answer)) reader = null;
    reply(answer);
  }
  reader?.close();
}

main().catch((error: unknown) => {
  process.stdout.write(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }) + '\n');
  process.exitCode = 1;
});
