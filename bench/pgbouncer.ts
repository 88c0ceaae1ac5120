import { spawn } from 'node:child_process';
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../src/embedded/postgres.js';
import type { Endpoint } from './pgbench.js';
import { isAlive, run, stopGroup, tail, which } from './proc.js';
import { TENANTS, roleOf } from './setup.js';

export interface PgbouncerBinary {
  path: string;
  version: string;
}

/**
 * pgbouncer from PATH (or sbin); when missing and we are root with apt-get, `apt-get install -y
 * pgbouncer` (with one `apt-get update` if the first try fails). Otherwise null and a note why.
 */
export async function findPgbouncer(note: (line: string) => void): Promise<PgbouncerBinary | null> {
  let found = await which('pgbouncer');
  if (found === null) {
    const aptGet = await which('apt-get');
    if (process.getuid?.() !== 0 || aptGet === null) {
      note('pgbouncer is not installed (and this is not root with apt-get): the PgBouncer rows are skipped');
      return null;
    }
    note('pgbouncer is not installed: apt-get install -y pgbouncer');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let result = await run(aptGet, ['install', '-y', 'pgbouncer'], { env, timeoutMs: 300_000 });
    if (result.code !== 0) {
      await run(aptGet, ['update'], { env, timeoutMs: 300_000 });
      result = await run(aptGet, ['install', '-y', 'pgbouncer'], { env, timeoutMs: 300_000 });
    }
    found = await which('pgbouncer');
    if (found === null) {
      note(`apt-get install pgbouncer failed, the PgBouncer rows are skipped: ${tail(result.stderr, 3)}`);
      return null;
    }
  }
  const version = await run(found, ['--version'], { timeoutMs: 10_000 });
  return { path: found, version: version.stdout.split('\n')[0]?.trim() ?? '?' };
}

export interface PgbouncerSettings {
  binary: PgbouncerBinary;
  /** A folder of its own for the ini, the userlist and the log. */
  dir: string;
  backendPort: number;
  rolePassword: string;
  /** server_reset_query_always = 1 with DISCARD ALL, or no reset query at all. */
  resetAlways: boolean;
  poolSize: number;
  /** trust lets the memory test's raw clients in without a password, plain takes it in clear; the default is scram-sha-256. */
  authType?: 'scram-sha-256' | 'plain' | 'trust';
  maxClients?: number;
}

export interface RunningPgbouncer {
  /** Process group (runuser and pgbouncer when we are root): for CPU and memory readings. */
  readonly pgid: number;
  endpoint(tenant: string): Endpoint;
  close(): Promise<void>;
}

/**
 * PgBouncer in transaction mode on a free port of 127.0.0.1. It cannot move a server connection
 * between tenants' search_paths, so each tenant is a database entry that logs in as the role
 * bench_tN, whose default search_path is the tenant's schema (DISCARD ALL returns to that default).
 * Root runs it as the OS user postgres, since pgbouncer refuses to run as root.
 */
export async function startPgbouncer(s: PgbouncerSettings): Promise<RunningPgbouncer> {
  await mkdir(s.dir, { recursive: true });
  const port = await freePort();
  const ini = path.join(s.dir, 'pgbouncer.ini');
  const userlist = path.join(s.dir, 'userlist.txt');
  const logfile = path.join(s.dir, 'pgbouncer.log');
  const databases = TENANTS.map((t) => `${t} = host=127.0.0.1 port=${s.backendPort} dbname=postgres user=${roleOf(t)}`);
  await writeFile(
    ini,
    [
      '[databases]',
      ...databases,
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      `auth_type = ${s.authType ?? 'scram-sha-256'}`,
      `auth_file = ${userlist}`,
      `logfile = ${logfile}`,
      'pool_mode = transaction',
      `default_pool_size = ${s.poolSize}`,
      `max_client_conn = ${s.maxClients ?? 2000}`,
      s.resetAlways ? 'server_reset_query = DISCARD ALL' : 'server_reset_query =',
      `server_reset_query_always = ${s.resetAlways ? 1 : 0}`,
      'ignore_startup_parameters = extra_float_digits',
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  await writeFile(userlist, TENANTS.map((t) => `"${roleOf(t)}" "${s.rolePassword}"`).join('\n') + '\n', { mode: 0o600 });

  let command = s.binary.path;
  let args = [ini];
  if (process.getuid?.() === 0) {
    const ids = await run('id', ['-u', 'postgres'], { timeoutMs: 5_000 });
    const gid = await run('id', ['-g', 'postgres'], { timeoutMs: 5_000 });
    if (ids.code !== 0) throw new Error('running as root, and there is no OS user postgres to run pgbouncer as');
    for (const file of [s.dir, ini, userlist]) await chown(file, Number(ids.stdout.trim()), Number(gid.stdout.trim()));
    // setpriv execs pgbouncer in place, without PAM, so it keeps this process's open-file limit
    // (runuser's PAM session may cut it to 1,024, too few for the memory test's clients).
    const setpriv = await which('setpriv');
    const runuser = await which('runuser');
    if (setpriv !== null) {
      command = setpriv;
      args = [`--reuid=${ids.stdout.trim()}`, `--regid=${gid.stdout.trim()}`, '--init-groups', '--', s.binary.path, ini];
    } else if (runuser !== null) {
      command = runuser;
      args = ['-u', 'postgres', '--', s.binary.path, ini];
    } else {
      command = 'su';
      args = ['-s', '/bin/sh', 'postgres', '-c', `exec '${s.binary.path}' '${ini}'`];
    }
  }
  const child = spawn(command, args, { stdio: 'ignore', detached: true });
  child.on('error', () => undefined);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${command}`);
  const deadline = Date.now() + 15_000;
  while (!(await accepts(port))) {
    if (!isAlive(pid) || child.exitCode !== null || Date.now() > deadline) {
      await stopGroup(pid);
      const log = await readFile(logfile, 'utf8').catch(() => '');
      throw new Error(`pgbouncer did not start: ${tail(log, 5) || 'no log'}`);
    }
    await sleep(50);
  }
  return {
    pgid: pid,
    endpoint: (tenant) => ({ host: '127.0.0.1', port, user: roleOf(tenant), dbname: tenant, env: { PGPASSWORD: s.rolePassword } }),
    close: () => stopGroup(pid),
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
