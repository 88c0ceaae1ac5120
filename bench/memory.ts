import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/embedded/postgres.js';
import { type PgfenceSettings, pgfenceConfig, pgfenceConfigInput, tenantTokens } from './pgfence.js';
import { isAlive, openFileLimit, residentKb, stopGroup } from './proc.js';

export interface MemoryResult {
  mode: 'session' | 'transaction';
  poolSize: number;
  connections: number;
  rssBeforeKb: number;
  rssAfterKb: number;
  kbPerConnection: number;
  notes: string[];
}

const REPO = fileURLToPath(new URL('..', import.meta.url));
const WARM_UP_CONNECTIONS = 200;
const CONCURRENT_OPENS = 200;

/**
 * Resident memory of a pgfence serving idle clients. pgfence runs in a child process (`node
 * --import tsx src/cli.ts serve`), so /proc/<pid>/status is its alone. After a warm-up (connections
 * opened and closed), VmRSS is read, `wanted` clients authenticate and stay idle, and VmRSS is read
 * again two seconds later. In session mode every client holds a backend, so the test then runs
 * with 100 clients and a pool of 100.
 */
export async function measureMemory(
  base: Omit<PgfenceSettings, 'mode' | 'poolSize' | 'port'>,
  dir: string,
  wanted: number,
  note: (line: string) => void,
): Promise<MemoryResult> {
  const notes: string[] = [];
  const say = (line: string): void => {
    notes.push(line);
    note(line);
  };
  const transaction = pgfenceConfig({ ...base, mode: 'transaction', poolSize: 16 }) !== null;
  const mode = transaction ? 'transaction' : 'session';
  const poolSize = transaction ? 16 : 100;
  let connections = transaction ? wanted : 100;
  if (!transaction) say('pool.mode transaction is not supported by this pgfence: measured with 100 idle clients and pool size 100 (session mode)');
  const limit = openFileLimit();
  if (limit !== null && limit < 25_000) {
    say(`open-file limit (ulimit -n) is ${limit}, below 25,000; raise it (ulimit -n 65536) for 10,000 clients with headroom`);
  }
  if (limit !== null && connections > limit - 1_000) {
    connections = Math.max(100, limit - 1_000);
    say(`the open-file limit allows ${connections} idle clients, not ${wanted}`);
  }

  const port = await freePort();
  const settings: PgfenceSettings = { ...base, mode, poolSize, port };
  const config = pgfenceConfig(settings);
  if (config === null) throw new Error('pgfence refused the memory-test configuration');
  const file = path.join(dir, 'pgfence-memory.yaml');
  await writeFile(file, JSON.stringify(pgfenceConfigInput(settings), null, 2) + '\n', { mode: 0o600 }); // JSON is YAML
  const tokens = await tenantTokens(config);

  let stderr = '';
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'src/cli.ts'), 'serve', '--config', file], {
    cwd: REPO,
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4_000)));
  const pid = child.pid;
  const sockets: net.Socket[] = [];
  try {
    if (pid === undefined) throw new Error('could not start pgfence');
    const deadline = Date.now() + 60_000;
    while (!(await connectIdle(port, tokens[0] ?? '').then((s) => (s.destroy(), true), () => false))) {
      if (!isAlive(pid) || Date.now() > deadline) throw new Error(`pgfence (child) did not start: ${stderr.trim() || 'no output'}`);
      await sleep(100);
    }
    const warm = await openMany(port, tokens, WARM_UP_CONNECTIONS);
    for (const socket of warm) socket.destroy();
    await sleep(2_000);
    const rssBeforeKb = residentKb(pid);
    sockets.push(...(await openMany(port, tokens, connections)));
    await sleep(2_000);
    const rssAfterKb = residentKb(pid);
    return { mode, poolSize, connections, rssBeforeKb, rssAfterKb, kbPerConnection: (rssAfterKb - rssBeforeKb) / connections, notes };
  } finally {
    for (const socket of sockets) socket.destroy();
    await stopGroup(pid, 10_000);
  }
}

/** Opens n authenticated idle clients, at most CONCURRENT_OPENS at a time, round-robin over the tenants. */
async function openMany(port: number, tokens: readonly string[], n: number): Promise<net.Socket[]> {
  const open: net.Socket[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      open.push(await connectIdle(port, tokens[i % tokens.length] ?? ''));
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
function connectIdle(port: number, token: string): Promise<net.Socket> {
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
    const timer = setTimeout(() => finish(new Error('no ReadyForQuery within 30 s')), 30_000);
    socket.on('error', (error) => finish(error));
    socket.on('close', () => finish(new Error('connection closed during startup')));
    socket.once('connect', () => socket.write(startupMessage('bench-idle', 'app')));
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
          if (code === 3) socket.write(passwordMessage(token));
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
