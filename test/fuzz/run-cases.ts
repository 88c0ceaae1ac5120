/**
 * Runs protocol-fuzz.ts's cases against a pgfence, one connection at a time. Whatever a case sent
 * is completed with zero bytes to a message boundary (so pgfence never just waits for more) and
 * followed by a probe query; the case ends when the probe is answered or pgfence closes the
 * connection. It fails when pgfence does neither in time, raises an unhandled error, answers the
 * probe after a malformed message, sends a partial message, an internal error or anything but
 * FATALs after a FATAL, closes without a FATAL, or shows the client another tenant's name. After
 * every batch of cases one long-lived client per tenant and one new client must still read only
 * their own tenant's rows.
 */
import { MAX_PASSWORD_MESSAGE } from '../../src/protocol/startup.js';
import net from 'node:net';
import type pg from 'pg';
import { serialize } from 'pg-protocol';
import { describeProcessError, type ProcessErrorWatch } from '../support/process-errors.js';
import { errorOfBody, passwordMessage, queryMessage, startupMessage } from '../support/wire.js';
import {
  type CaseState,
  describeCase,
  type FuzzCase,
  firstMalformedMessage,
  FUZZ_MAX_MESSAGE_BYTES,
  generateCase,
  type PoolMode,
  startupCompletion,
  typedCompletion,
} from './protocol-fuzz.js';

/** A running pgfence to fuzz; its database holds test/support/seed.ts's tenants. */
export interface FuzzTarget {
  readonly port: number;
  readonly mode: PoolMode;
  readonly tenants: readonly string[];
  /** A valid token of the tenant. */
  token(tenant: string): Promise<string>;
  /** A node-postgres client through pgfence, connected as the tenant. */
  connect(tenant: string, extra: pg.ClientConfig): Promise<pg.Client>;
}

interface Frame {
  type: string;
  body: Buffer;
}

/** Server messages in `buf`; `partial` when bytes are left over, `malformed` for a length below 4. */
function framesOf(buf: Buffer): { frames: Frame[]; partial: boolean; malformed: boolean } {
  const frames: Frame[] = [];
  let offset = 0;
  while (offset + 5 <= buf.length) {
    const length = buf.readInt32BE(offset + 1);
    if (length < 4) return { frames, partial: false, malformed: true };
    if (offset + 1 + length > buf.length) break;
    frames.push({ type: String.fromCharCode(buf[offset] as number), body: buf.subarray(offset + 5, offset + 1 + length) });
    offset += 1 + length;
  }
  return { frames, partial: offset < buf.length, malformed: false };
}

// ---- one raw client connection ---------------------------------------------------------------

type WaitOutcome = 'done' | 'closed' | 'timeout' | 'crashed';

class RawConnection {
  received: Buffer = Buffer.alloc(0);
  /** Leading bytes that are not messages (the 'N' answering an SSLRequest). */
  skip = 0;
  /** Messages already matched by `waitFor`. */
  private seen = 0;
  closed = false;
  /** The peer reset the connection: what it sent last may be lost. */
  reset = false;
  private crashed = false;
  private wake: (() => void) | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk]);
      this.notify();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') this.reset = true;
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, noDelay: true }, () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** pgfence's process raised an unhandled error: every wait ends at once. */
  interrupt(): void {
    this.crashed = true;
    this.notify();
  }

  /** Writes each chunk separately, each once the previous one is handed to the kernel. */
  async send(chunks: readonly Buffer[]): Promise<void> {
    for (const chunk of chunks) {
      if (chunk.length === 0) continue;
      if (this.closed || this.socket.destroyed) return;
      await new Promise<void>((resolve) => this.socket.write(chunk, () => resolve()));
    }
  }

  frames(): Frame[] {
    return framesOf(this.received.subarray(this.skip)).frames;
  }

  /** Waits until `done()` holds, the connection closes, pgfence crashes or `timeoutMs` passes. */
  async wait(done: () => boolean, timeoutMs: number): Promise<WaitOutcome> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.crashed) return 'crashed';
      if (done()) return 'done';
      if (this.closed) return 'closed';
      const left = deadline - Date.now();
      if (left <= 0) return 'timeout';
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Waits for the next message of `type` after those already matched. */
  async waitFor(type: string, timeoutMs: number): Promise<WaitOutcome> {
    let found = -1;
    const outcome = await this.wait(() => {
      found = this.frames().findIndex((f, i) => i >= this.seen && f.type === type);
      return found >= 0;
    }, timeoutMs);
    if (outcome === 'done') this.seen = found + 1;
    return outcome;
  }

  /** From now on, messages so far count as matched. */
  markSeen(): number {
    this.seen = this.frames().length;
    return this.seen;
  }

  destroy(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.destroy();
    });
  }
}

// ---- running a case --------------------------------------------------------------------------

export interface FuzzOptions {
  seed: number;
  /** The first case number (a failure names its case; start there to replay it). */
  from?: number;
  /** How many cases to run. */
  count: number;
  /** Cases between two checks of the other clients (default 50). */
  batchSize?: number;
  /** The safety net: how long one step of a case may wait for pgfence (default 10 s). */
  caseTimeoutMs?: number;
  /** Stop after this many failures (default 1). */
  maxFailures?: number;
  /** Unhandled errors of the process pgfence runs in. */
  processErrors: ProcessErrorWatch;
  onFailure?(failure: FuzzFailure): void;
  onBatch?(progress: { casesRun: number; failures: number }): void;
}

export interface FuzzFailure {
  readonly mode: PoolMode;
  readonly seed: number;
  /** The case that failed; null when the checks after a batch failed. */
  readonly caseNumber: number | null;
  /** The batch it happened in: cases [from, to). */
  readonly batch: readonly [number, number];
  readonly problem: string;
  /** The case (state, tenants, mutations, bytes), when one failed. */
  readonly detail: string;
}

export interface FuzzReport {
  readonly mode: PoolMode;
  readonly seed: number;
  readonly from: number;
  readonly casesRun: number;
  readonly failures: readonly FuzzFailure[];
  /** Cases run per state. */
  readonly states: Readonly<Record<CaseState, number>>;
}

const CLIENT_OPTIONS: pg.ClientConfig = { connectionTimeoutMillis: 10_000, query_timeout: 10_000 };

interface CaseContext {
  target: FuzzTarget;
  tokens: ReadonlyMap<string, string>;
  /** One long-lived client per tenant: the other clients that must keep being served. */
  bystanders: ReadonlyMap<string, pg.Client>;
  timeoutMs: number;
  processErrors: ProcessErrorWatch;
}

/** Runs `count` cases from `from` on, checking the other clients after every batch. */
export async function runProtocolFuzz(target: FuzzTarget, options: FuzzOptions): Promise<FuzzReport> {
  const from = options.from ?? 0;
  const batchSize = options.batchSize ?? 50;
  const maxFailures = options.maxFailures ?? 1;
  const failures: FuzzFailure[] = [];
  const states = { startup: 0, password: 0, idle: 0, queued: 0, transaction: 0, batch: 0, copy: 0 };
  const fail = (failure: FuzzFailure): void => {
    failures.push(failure);
    options.onFailure?.(failure);
  };
  const bystanders = new Map<string, pg.Client>();
  let casesRun = 0;
  try {
    for (const tenant of target.tenants) bystanders.set(tenant, await target.connect(tenant, CLIENT_OPTIONS));
    for (let start = from; start < from + options.count && failures.length < maxFailures; start += batchSize) {
      const end = Math.min(start + batchSize, from + options.count);
      const batch = [start, end] as const;
      const tokens = new Map(await Promise.all(target.tenants.map(async (t) => [t, await target.token(t)] as const)));
      const ctx: CaseContext = { target, tokens, bystanders, timeoutMs: options.caseTimeoutMs ?? 10_000, processErrors: options.processErrors };
      for (let index = start; index < end && failures.length < maxFailures; index++) {
        const c = generateCase(options.seed, target.mode, index, target.tenants, tokens);
        const problems: string[] = [];
        const problem = await runCase(c, ctx).catch((error: unknown) => `the case could not run: ${describeProcessError(error)}`);
        if (problem !== null) problems.push(problem);
        const crashes = options.processErrors.take();
        if (crashes.length > 0) problems.push(`unhandled error in pgfence's process: ${crashes.map(describeProcessError).join('; ')}`);
        casesRun++;
        states[c.state]++;
        if (problems.length > 0) fail({ mode: target.mode, seed: options.seed, caseNumber: index, batch, problem: problems.join('; '), detail: describeCase(c) });
      }
      const problem = await checkBystanders(target, bystanders, Math.floor(start / batchSize), options.processErrors);
      if (problem !== null) {
        fail({ mode: target.mode, seed: options.seed, caseNumber: null, batch, problem, detail: '' });
        break; // the other clients are what the run protects: nothing after this can be trusted
      }
      options.onBatch?.({ casesRun, failures: failures.length });
    }
  } finally {
    await Promise.all([...bystanders.values()].map((c) => c.end().catch(() => undefined)));
  }
  return { mode: target.mode, seed: options.seed, from, casesRun, failures, states };
}

/** Every tenant's long-lived client, and one new client, read only their own tenant's rows. */
async function checkBystanders(target: FuzzTarget, bystanders: ReadonlyMap<string, pg.Client>, batchNumber: number, processErrors: ProcessErrorWatch): Promise<string | null> {
  const problems: string[] = [];
  const check = async (tenant: string, client: pg.Client, what: string): Promise<void> => {
    try {
      const owners = (await client.query<{ owner: string }>('SELECT owner FROM items')).rows.map((r) => r.owner);
      if (owners.length === 0 || owners.some((o) => o !== tenant)) problems.push(`${what} of ${tenant} read owners ${JSON.stringify(owners)}`);
    } catch (error) {
      problems.push(`${what} of ${tenant} failed: ${describeProcessError(error)}`);
    }
  };
  for (const [tenant, client] of bystanders) await check(tenant, client, 'the long-lived client');
  const tenant = target.tenants[batchNumber % target.tenants.length] as string;
  try {
    const fresh = await target.connect(tenant, CLIENT_OPTIONS);
    await check(tenant, fresh, 'a new client');
    await fresh.end();
  } catch (error) {
    problems.push(`a new client of ${tenant} could not connect: ${describeProcessError(error)}`);
  }
  const crashes = processErrors.take();
  if (crashes.length > 0) problems.push(`unhandled error in pgfence's process: ${crashes.map(describeProcessError).join('; ')}`);
  return problems.length === 0 ? null : problems.join('; ');
}

/** Runs one case; what went wrong, or null. */
async function runCase(c: FuzzCase, ctx: CaseContext): Promise<string | null> {
  const conn = await RawConnection.open(ctx.target.port);
  const stopWatching = ctx.processErrors.onError(() => conn.interrupt());
  const holder = { client: null as pg.Client | null };
  try {
    return await drive(c, conn, ctx, holder);
  } finally {
    stopWatching();
    await conn.destroy();
    // A case that failed before the holder's COMMIT must not leave its transaction open.
    await holder.client?.query('ROLLBACK').catch(() => undefined);
  }
}

const probeMarker = (index: number): string => `pgfence-fuzz-probe-${index}`;

/** Ends whatever the client was in (COPY, a batch, a failed transaction), then asks for a marker. */
function probe(index: number): Buffer {
  return Buffer.concat([serialize.copyDone(), serialize.sync(), queryMessage('ROLLBACK'), queryMessage(`SELECT '${probeMarker(index)}'`)]);
}

function chunked(payload: Buffer, splits: readonly number[]): Buffer[] {
  const bounds = [0, ...splits, payload.length];
  return bounds.slice(1).map((end, i) => payload.subarray(bounds[i], end));
}

async function drive(c: FuzzCase, conn: RawConnection, ctx: CaseContext, holder: { client: pg.Client | null }): Promise<string | null> {
  const ms = ctx.timeoutMs;
  const token = ctx.tokens.get(c.tenant) as string;
  const startup = startupMessage({ user: `${c.tenant}-user`, database: 'app' });
  const setupFailed = (what: string, outcome: WaitOutcome): string =>
    outcome === 'crashed' ? 'pgfence crashed' : `setup: ${what}: ${outcome === 'timeout' ? `no answer within ${ms} ms` : 'connection closed'} (received ${summary(conn)})`;
  let silentCloseAllowed = false;
  /** After authentication: the malformed message pgfence must end the connection for. */
  let malformed: string | null = null;
  const marker = Buffer.from(probeMarker(c.index));
  /** The probe's row, then a ReadyForQuery, arrived after the first `from` messages. */
  const answered = (from: number) => (): boolean => {
    const frames = conn.frames();
    const row = frames.findIndex((f, i) => i >= from && f.type === 'D' && f.body.includes(marker));
    return row >= 0 && frames.some((f, i) => i > row && f.type === 'Z');
  };

  // Completes authentication once pgfence asked for the password, then probes.
  const authenticateAndProbe = async (): Promise<WaitOutcome> => {
    let outcome = await conn.waitFor('R', ms);
    if (outcome !== 'done') return outcome;
    await conn.send([passwordMessage(token)]);
    outcome = await conn.waitFor('Z', ms);
    if (outcome !== 'done') return outcome;
    return sendProbe();
  };
  const sendProbe = async (): Promise<WaitOutcome> => {
    const from = conn.markSeen();
    await conn.send([probe(c.index)]);
    return conn.wait(answered(from), ms);
  };

  let outcome: WaitOutcome;
  switch (c.state) {
    case 'startup': {
      const completion = startupCompletion(c.payload);
      // As Postgres does, a cancel request and a startup packet of a length it would not read get no answer.
      silentCloseAllowed = completion.kind === 'cancel' || completion.kind === 'refused';
      await conn.send([...chunked(c.payload, c.splits), Buffer.alloc(completion.padding)]);
      if (completion.kind === 'ssl' || completion.kind === 'gssenc') {
        outcome = await conn.wait(() => conn.received.length > 0, ms);
        if (outcome !== 'done') break;
        if (conn.received[0] !== 0x4e) return `answered an ${completion.kind} request with ${summary(conn)} instead of N`;
        conn.skip = 1;
        await conn.send([startup]);
      }
      outcome = await authenticateAndProbe();
      break;
    }
    case 'password': {
      const completion = typedCompletion(c.payload, MAX_PASSWORD_MESSAGE);
      silentCloseAllowed = completion.terminates;
      const bytes = [...chunked(c.payload, c.splits), Buffer.alloc(completion.padding)];
      if (c.pipelined) {
        await conn.send([Buffer.concat([startup, bytes[0] as Buffer]), ...bytes.slice(1)]);
      } else {
        await conn.send([startup]);
        const asked = await conn.waitFor('R', ms);
        if (asked !== 'done') return setupFailed('the startup packet', asked);
        await conn.send(bytes);
      }
      outcome = await conn.waitFor('Z', ms);
      if (outcome === 'done') outcome = await sendProbe();
      break;
    }
    default: {
      await conn.send([startup]);
      let step = await conn.waitFor('R', ms);
      if (step !== 'done') return setupFailed('the startup packet', step);
      await conn.send([passwordMessage(token)]);
      step = await conn.waitFor('Z', ms);
      if (step !== 'done') return setupFailed('authentication', step);
      const problem = await enterState(c, conn, ctx, holder);
      if (problem !== null) return problem;
      const completion = typedCompletion(c.payload, FUZZ_MAX_MESSAGE_BYTES);
      silentCloseAllowed = completion.terminates;
      malformed = firstMalformedMessage(Buffer.concat([c.payload, Buffer.alloc(completion.padding)]), FUZZ_MAX_MESSAGE_BYTES);
      const from = conn.markSeen();
      await conn.send([...chunked(c.payload, c.splits), Buffer.alloc(completion.padding), probe(c.index)]);
      if (holder.client !== null) {
        const other = holder.client;
        holder.client = null;
        try {
          await other.query('COMMIT');
        } catch (error) {
          return `the client of ${c.other} holding the backend failed at COMMIT: ${describeProcessError(error)}`;
        }
      }
      outcome = await conn.wait(answered(from), ms);
    }
  }
  return judge(c, conn, outcome, { silentCloseAllowed, malformed, tenants: ctx.target.tenants }, ms);
}

/** Brings an authenticated client into its case's state; a problem if that fails. */
async function enterState(c: FuzzCase, conn: RawConnection, ctx: CaseContext, holder: { client: pg.Client | null }): Promise<string | null> {
  const ms = ctx.timeoutMs;
  const other = ctx.bystanders.get(c.other) as pg.Client;
  const expect = async (what: string, type: string): Promise<string | null> => {
    const outcome = await conn.waitFor(type, ms);
    return outcome === 'done' ? null : `setup: ${what}: ${outcome} (received ${summary(conn)})`;
  };
  try {
    switch (c.state) {
      case 'idle':
        if (c.mode === 'transaction' && c.repin) await other.query('SELECT 1');
        return null;
      case 'queued':
        await other.query('BEGIN');
        holder.client = other;
        await other.query('SELECT 1');
        return null;
      case 'transaction':
        await conn.send([queryMessage('BEGIN')]);
        return expect('BEGIN', 'Z');
      case 'batch':
        await conn.send([
          Buffer.concat([serialize.parse({ text: 'SELECT owner FROM items WHERE id = $1', types: [23] }), serialize.bind({ values: ['1'] }), serialize.flush()]),
        ]);
        return expect('Parse and Bind', '2');
      case 'copy':
        await conn.send([queryMessage('COPY items (note) FROM STDIN')]);
        return expect('COPY FROM STDIN', 'G');
      default:
        return null;
    }
  } catch (error) {
    return `setup: the client of ${c.other} failed: ${describeProcessError(error)}`;
  }
}

/** The case's verdict from what pgfence sent and whether it closed. */
async function judge(
  c: FuzzCase,
  conn: RawConnection,
  outcome: WaitOutcome,
  { silentCloseAllowed, malformed, tenants }: { silentCloseAllowed: boolean; malformed: string | null; tenants: readonly string[] },
  ms: number,
): Promise<string | null> {
  if (outcome === 'crashed') return 'pgfence crashed';
  if (outcome === 'timeout') return `neither answered the probe nor closed within ${ms} ms (received ${summary(conn)})`;
  if (outcome === 'done' && malformed !== null) return `answered the probe after a malformed ${malformed} instead of FATAL 08P01 and a close (received ${summary(conn)})`;
  const { frames, partial, malformed: badReply } = framesOf(conn.received.subarray(conn.skip));
  const errors = frames.filter((f) => f.type === 'E').map((f) => errorOfBody(f.body));
  const fatal = frames.findIndex((f) => f.type === 'E' && errorOfBody(f.body).severity === 'FATAL');
  if (fatal >= 0 && !conn.closed && (await conn.wait(() => false, ms)) !== 'closed') return `not closed after a FATAL (received ${summary(conn)})`;
  const problems: string[] = [];
  if (badReply || (partial && !conn.reset)) problems.push(`sent a ${badReply ? 'malformed' : 'partial'} message`);
  const internal = errors.find((e) => e.code === 'XX000' && e.message.startsWith('pgfence:'));
  if (internal !== undefined) problems.push(`internal error: ${internal.message}`);
  // A backend's own FATAL is forwarded before pgfence's "server connection lost": FATALs may follow one.
  if (fatal >= 0 && frames.slice(fatal).some((f) => f.type !== 'E' || errorOfBody(f.body).severity !== 'FATAL')) problems.push('sent messages after a FATAL');
  if (conn.closed && fatal < 0 && !silentCloseAllowed && !conn.reset) problems.push('closed the connection without an ErrorResponse');
  const leaked = tenants.filter((t) => t !== c.tenant && conn.received.includes(t));
  if (leaked.length > 0) problems.push(`showed the client the name of ${leaked.join(', ')}`);
  return problems.length === 0 ? null : `${problems.join('; ')} (received ${summary(conn)})`;
}

/** What the client received, short: message types, and the errors. */
function summary(conn: RawConnection): string {
  const { frames, partial } = framesOf(conn.received.subarray(conn.skip));
  const types = frames.map((f) => f.type).join('');
  const errors = frames.filter((f) => f.type === 'E').map((f) => errorOfBody(f.body));
  const e = errors.map((x) => ` [${x.severity} ${x.code} ${x.message.slice(0, 100)}]`).join('');
  return `${conn.skip > 0 ? 'N+' : ''}${types.length > 60 ? `${types.slice(0, 60)}...` : types || 'nothing'}${partial ? '+partial' : ''}${e}${conn.closed ? ', closed' : ''}`;
}

/** The command that runs a failure's case (or batch) again. */
export function replayCommand(f: FuzzFailure): string {
  const [from, count] = f.caseNumber === null ? [f.batch[0], f.batch[1] - f.batch[0]] : [f.caseNumber, 1];
  return `npx tsx scripts/fuzz-protocol.ts --mode ${f.mode} --seed ${f.seed} --from ${from} --cases ${count}`;
}

export function formatFailure(f: FuzzFailure): string {
  const which = f.caseNumber === null ? `after cases ${f.batch[0]}..${f.batch[1] - 1}` : `case ${f.caseNumber}`;
  return `${f.mode} pooling, seed ${f.seed}, ${which}: ${f.problem}${f.detail === '' ? '' : `\n  ${f.detail}`}\n  replay: ${replayCommand(f)}`;
}
