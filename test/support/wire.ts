import net from 'node:net';

/** A raw protocol client for tests that must send what no driver would. */
export class WireClient {
  private received = Buffer.alloc(0);
  /** Bytes already returned by `until`. */
  private consumed = 0;
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** `localAddress` (e.g. 127.0.0.2) makes the connection come from another loopback address. */
  static connect(port: number, localAddress?: string): Promise<WireClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, ...(localAddress === undefined ? {} : { localAddress }) }, () => resolve(new WireClient(socket)));
      socket.once('error', reject);
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  /** Waits until the peer closes the connection (or the timeout passes); returns everything received. */
  async untilClosed(timeoutMs = 5_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await this.nextEvent(deadline);
    return this.received;
  }

  /** Resolves at the next data or close event, or at the deadline. */
  private nextEvent(deadline: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Waits for at least `n` bytes. */
  async bytes(n: number, timeoutMs = 5_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < n && !this.closed && Date.now() < deadline) await this.nextEvent(deadline);
    return this.received;
  }

  /** Waits for a message of the given type; returns (and consumes) the messages up to and including it. */
  async until(type: string, timeoutMs = 5_000): Promise<Array<{ type: string; body: Buffer }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const messages = splitMessages(this.received.subarray(this.consumed));
      const i = messages.findIndex((m) => m.type === type);
      if (i >= 0) {
        const taken = messages.slice(0, i + 1);
        this.consumed += taken.reduce((sum, m) => sum + 5 + m.body.length, 0);
        return taken;
      }
      if (this.closed || Date.now() >= deadline) throw new Error(`no ${type} message (got ${messages.map((m) => m.type).join('')})`);
      await this.nextEvent(deadline);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

export function splitMessages(buf: Buffer): Array<{ type: string; body: Buffer }> {
  const out: Array<{ type: string; body: Buffer }> = [];
  let offset = 0;
  while (offset + 5 <= buf.length) {
    const len = buf.readInt32BE(offset + 1);
    if (offset + 1 + len > buf.length) break;
    out.push({ type: String.fromCharCode(buf[offset] as number), body: buf.subarray(offset + 5, offset + 1 + len) });
    offset += 1 + len;
  }
  return out;
}

/** The SQLSTATE and message of an ErrorResponse body. */
export function errorOfBody(body: Buffer): { code: string; message: string; severity: string } {
  const fields = new Map<string, string>();
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const key = String.fromCharCode(body[offset] as number);
    const end = body.indexOf(0, offset + 1);
    fields.set(key, body.toString('utf8', offset + 1, end));
    offset = end + 1;
  }
  return { code: fields.get('C') ?? '', message: fields.get('M') ?? '', severity: fields.get('S') ?? '' };
}

export function startupMessage(params: Record<string, string>, version = 196608): Buffer {
  const body = Buffer.concat([
    ...Object.entries(params).map(([k, v]) => Buffer.from(`${k}\0${v}\0`)),
    Buffer.from([0]),
  ]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(version, 4);
  return Buffer.concat([head, body]);
}

export function message(type: string, body: Buffer | string): Buffer {
  const payload = typeof body === 'string' ? Buffer.from(body) : body;
  const out = Buffer.alloc(5 + payload.length);
  out.write(type, 0, 'latin1');
  out.writeInt32BE(4 + payload.length, 1);
  payload.copy(out, 5);
  return out;
}

export const passwordMessage = (password: string): Buffer => message('p', `${password}\0`);
export const queryMessage = (sql: string): Buffer => message('Q', `${sql}\0`);

/** Sends a CancelRequest with the given key on a fresh connection and waits until pgfence closes it. */
export async function sendCancelRequest(port: number, processId: number, secretKey: number): Promise<void> {
  const wire = await WireClient.connect(port);
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(processId, 8);
  packet.writeInt32BE(secretKey, 12);
  wire.write(packet);
  await wire.untilClosed();
}
