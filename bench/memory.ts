import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { groupResidentKb } from './process-usage.js';
import { openFileLimit } from './proc.js';

export interface MemoryResult {
  target: string;
  connections: number;
  rssBeforeKb: number;
  rssAfterKb: number;
  kbPerConnection: number;
}

const WARM_UP_CONNECTIONS = 200;
const CONCURRENT_OPENS = 200;
const SETTLE_MS = 2_000;

/** A running proxy for the memory test: its process group and how an idle client logs in. */
export interface IdleTarget {
  name: string;
  pgid: number;
  port: number;
  /** The login of the i-th client (round-robin over the tenants). */
  login(i: number): IdleLogin;
}

export interface IdleLogin {
  user: string;
  database: string;
  /** Sent when the proxy asks for a cleartext password (pgfence: the JWT). */
  password: string;
}

/**
 * The idle clients the open-file limit allows (each takes a descriptor here and one in the proxy),
 * with a note when it is fewer than wanted.
 */
export function idleClientsAllowed(wanted: number, note: (line: string) => void): number {
  const limit = openFileLimit();
  if (limit !== null && limit < 25_000) note(`open-file limit (ulimit -n) is ${limit}, below 25,000; raise it (ulimit -n 65536) for 10,000 clients with headroom`);
  if (limit !== null && wanted > limit - 1_000) {
    const allowed = Math.max(100, limit - 1_000);
    note(`the open-file limit allows ${allowed} idle clients, not ${wanted}`);
    return allowed;
  }
  return wanted;
}

/**
 * Resident memory of a proxy serving idle clients (VmRSS of its process group). After a warm-up
 * (connections opened and closed), VmRSS is read, `connections` clients authenticate and stay
 * idle, and VmRSS is read again after the proxy settles.
 */
export async function measureIdleMemory(target: IdleTarget, connections: number): Promise<MemoryResult> {
  const warm = await openMany(target, WARM_UP_CONNECTIONS);
  for (const socket of warm) socket.destroy();
  await sleep(SETTLE_MS);
  const rssBeforeKb = groupResidentKb(target.pgid);
  const sockets = await openMany(target, connections);
  try {
    await sleep(SETTLE_MS);
    const rssAfterKb = groupResidentKb(target.pgid);
    return { target: target.name, connections, rssBeforeKb, rssAfterKb, kbPerConnection: (rssAfterKb - rssBeforeKb) / connections };
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}

/** Opens n authenticated idle clients, at most CONCURRENT_OPENS at a time, round-robin over the tenants. */
export async function openMany(target: IdleTarget, n: number): Promise<net.Socket[]> {
  const open: net.Socket[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      open.push(await connectIdle(target.port, target.login(i)));
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(CONCURRENT_OPENS, n) }, worker));
  } catch (error) {
    for (const socket of open) socket.destroy();
    throw error;
  }
  return open;
}

/**
 * A minimal protocol-3.0 client: StartupMessage, the token as PasswordMessage when asked for a
 * cleartext password, then it waits for ReadyForQuery and stays connected and silent.
 */
function connectIdle(port: number, login: IdleLogin): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buffer: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (error: Error | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeAllListeners('data');
      socket.on('data', () => undefined);
      if (error === null) resolve(socket);
      else {
        socket.destroy();
        reject(error);
      }
    };
    const timer = setTimeout(() => finish(new Error(`no ReadyForQuery within 30 s from port ${port} as ${login.user}`)), 30_000);
    socket.on('error', (error) => finish(error));
    socket.on('close', () => finish(new Error('connection closed during startup')));
    socket.once('connect', () => socket.write(startupMessage(login.user, login.database)));
    socket.on('data', (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      while (buffer.length >= 5) {
        const length = buffer.readInt32BE(1);
        if (buffer.length < 1 + length) break;
        const type = String.fromCharCode(buffer[0] ?? 0);
        const body = buffer.subarray(5, 1 + length);
        buffer = buffer.subarray(1 + length);
        if (type === 'R') {
          const code = body.readInt32BE(0);
          if (code === 3) socket.write(passwordMessage(login.password));
          else if (code !== 0) return finish(new Error(`unexpected authentication request ${code}`));
        } else if (type === 'E') {
          return finish(new Error(`server error: ${errorText(body)}`));
        } else if (type === 'Z') {
          return finish(null);
        }
      }
    });
  });
}

function startupMessage(user: string, database: string): Buffer {
  const params = Buffer.from(`user\0${user}\0database\0${database}\0\0`, 'utf8');
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + params.length, 0);
  head.writeInt32BE(196608, 4); // protocol 3.0
  return Buffer.concat([head, params]);
}

function passwordMessage(password: string): Buffer {
  const body = Buffer.from(`${password}\0`, 'utf8');
  const head = Buffer.alloc(5);
  head.write('p', 0, 'ascii');
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

/** The M (message) field of an ErrorResponse. */
function errorText(body: Buffer): string {
  for (const field of body.toString('utf8').split('\0')) if (field.startsWith('M')) return field.slice(1);
  return 'unknown error';
}
