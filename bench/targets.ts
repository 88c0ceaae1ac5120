import { spawn } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../src/embedded/postgres.js';
import { type CpuTime, groupCpuTime } from './process-usage.js';
import type { Endpoint } from './pgbench.js';
import { buildPgfence, type PgfenceBuild, pgfenceConfig, type PgfenceSettings, type PoolMode, REPO, type RunningChild, startPgfenceProcess } from './pgfence.js';
import { type PgbouncerBinary, type RunningPgbouncer, startPgbouncer } from './pgbouncer.js';
import { stopGroup } from './proc.js';
import { NODE_CANNED_SERVER, NODE_RELAY, PGBOUNCER_PLAIN_AUTH } from './report.js';
import { type BenchDatabase, schemaOf } from './setup.js';

/** Backends every pooling target may use in all, whatever the number of tenants. */
export const POOL_SIZE = 16;

/** What a workload asks of a target. */
export interface Workload {
  name: string;
  script: readonly string[];
  protocol: 'simple' | 'extended' | 'prepared';
  /** Tenants t1..tN, one pgbench process each. */
  tenants: number;
  /** Clients per pgbench process. */
  clients: number;
  /** pgbench -C: a new connection for every transaction (the row measures connections per second). */
  connectEach?: boolean;
}

export interface Target {
  name: string;
  /** Whether the target can run the workload (PgBouncer 1.18 keeps no prepared statements in transaction mode). */
  supports(w: Workload): boolean;
  /** Backends the target may use for a workload, for the table. */
  pool(w: Workload): string;
  /** Starts or reconfigures the target for the workload; `fresh` when it was (re)started and is cold. */
  ready(w: Workload): Promise<{ endpoint: (tenant: string) => Endpoint; fresh: boolean }>;
  /** CPU time the proxy's processes have used so far; null for direct Postgres, or when not running. */
  cpu(): CpuTime | null;
  /** Process group of the running proxy (for memory readings), or null. */
  pgid(): number | null;
  close(): Promise<void>;
}

const totalClients = (w: Workload): number => w.tenants * w.clients;

/** Straight to Postgres as the superuser, search_path set with PGOPTIONS like the pin. */
export function directTarget(db: BenchDatabase): Target {
  let started = false;
  return {
    name: 'direct',
    supports: () => true,
    pool: () => '—',
    async ready() {
      const fresh = !started;
      started = true;
      return {
        fresh,
        endpoint: (tenant) => ({
          host: db.pg.host,
          port: db.pg.port,
          user: db.pg.user,
          dbname: 'postgres',
          env: { PGPASSWORD: db.pg.password, PGOPTIONS: `-c search_path=${schemaOf(tenant)},public` },
        }),
      };
    },
    cpu: () => null,
    pgid: () => null,
    close: async () => undefined,
  };
}

export interface PgfenceVariant {
  mode: PoolMode;
  reset?: 'auto' | 'always';
  workers?: number;
  /** "(baseline)" for BENCH_BASELINE's build. */
  label?: string;
}

export function pgfenceName(v: PgfenceVariant): string {
  const parts = [v.mode, ...(v.reset === 'always' ? ['reset-always'] : []), ...(v.workers !== undefined && v.workers > 1 ? [`${v.workers} workers`] : [])];
  return `pgfence ${parts.join(' ')}${v.label === undefined ? '' : ` (${v.label})`}`;
}

/**
 * pgfence as a separate process from a build's dist/. Session mode binds a backend per client for
 * its lifetime, so its pool is max(16, clients) instead of making clients queue for a backend;
 * transaction mode always has 16, shared by every tenant. A change of pool size restarts it.
 */
export function pgfenceTarget(db: BenchDatabase, secret: string, build: PgfenceBuild, dir: string, v: PgfenceVariant): Target {
  let running: RunningChild | null = null;
  const sizeFor = (w: Workload): number => (v.mode === 'session' ? Math.max(POOL_SIZE, totalClients(w)) : POOL_SIZE);
  return {
    name: pgfenceName(v),
    supports: () => true,
    pool: (w) => String(sizeFor(w)),
    async ready(w) {
      const size = sizeFor(w);
      let fresh = false;
      if (running === null || running.settings.poolSize !== size) {
        await running?.close();
        running = null;
        const settings: PgfenceSettings = { backendUrl: db.pg.url, secret, mode: v.mode, poolSize: size, reset: v.reset, workers: v.workers };
        running = await startPgfenceProcess(build, settings, dir);
        fresh = true;
      }
      return { fresh, endpoint: running.endpoint };
    },
    cpu: () => (running === null ? null : groupCpuTime(running.pgid)),
    pgid: () => running?.pgid ?? null,
    async close() {
      await running?.close();
      running = null;
    },
  };
}

/**
 * BENCH_WORKERS (e.g. "2" or "2,4"): pgfence transaction with `workers: N` as extra rows, its pool
 * (POOL_SIZE) shared out between the workers, its CPU read from the whole process group.
 */
export function workerVariants(raw = process.env['BENCH_WORKERS']): PgfenceVariant[] {
  if (raw === undefined || raw.trim() === '') return [];
  return raw.split(',').map((part) => {
    const workers = Number(part.trim());
    if (!Number.isInteger(workers) || workers < 2 || workers > POOL_SIZE) throw new Error(`BENCH_WORKERS: "${part}" is not a number of workers from 2 to ${POOL_SIZE}`);
    return { mode: 'transaction', workers };
  });
}

/**
 * pgfence session, transaction, and transaction with reset: always (the fair pair of PgBouncer
 * reset-always), built from this tree's src/ into dist/; with BENCH_BASELINE (the root of another
 * checkout, e.g. a git worktree of an earlier commit with node_modules linked), that build's
 * transaction targets too, as "(baseline)", so one run compares the two.
 */
export async function pgfenceTargets(db: BenchDatabase, secret: string, dir: string, note: (line: string) => void, variants?: readonly PgfenceVariant[]): Promise<Target[]> {
  const own = await buildPgfence(REPO);
  const wanted = variants ?? [{ mode: 'session' }, { mode: 'transaction' }, { mode: 'transaction', reset: 'always' }, ...workerVariants()];
  const accepted = wanted.filter((v) => {
    const ok = pgfenceConfig({ backendUrl: db.pg.url, secret, mode: v.mode, poolSize: POOL_SIZE, reset: v.reset, workers: v.workers }) !== null;
    if (!ok) note(`this pgfence does not accept the configuration of "${pgfenceName(v)}": skipped`);
    return ok;
  });
  const targets = accepted.map((v) => pgfenceTarget(db, secret, own, dir, v));
  const root = process.env['BENCH_BASELINE'];
  if (root !== undefined && root !== '') {
    const baseline = await buildPgfence(path.resolve(root));
    note(`baseline: the pgfence built from ${path.resolve(root)} runs beside this one, as "(baseline)" targets`);
    for (const v of accepted) if (v.workers === undefined) targets.push(pgfenceTarget(db, secret, baseline, dir, { ...v, label: 'baseline' }));
  }
  return targets;
}

/**
 * PgBouncer, transaction pooling, one pool per tenant; with DISCARD ALL on every release, or no
 * reset. Its pools share out the same 16 backends pgfence transaction mode has: 16 for one
 * tenant, 2 each for 8 tenants (PgBouncer cannot move a backend between tenants).
 */
export function pgbouncerTarget(db: BenchDatabase, binary: PgbouncerBinary, dir: string, resetAlways: boolean): Target {
  return pgbouncerVariant(db, binary, dir, resetAlways, 'scram-sha-256');
}

/**
 * PgBouncer no-reset with `auth_type = plain`, for the connection-rate row only: the client sends
 * its password in clear, as a pgfence client sends its JWT, so the row compares the connection
 * handling of the two and not SCRAM's 4,096 PBKDF2 iterations, which dominate PgBouncer's
 * per-connection CPU with scram-sha-256 (the other PgBouncer rows keep it, as users run it).
 */
export function pgbouncerPlainAuthTarget(db: BenchDatabase, binary: PgbouncerBinary, dir: string): Target {
  return pgbouncerVariant(db, binary, dir, false, 'plain');
}


function pgbouncerVariant(db: BenchDatabase, binary: PgbouncerBinary, dir: string, resetAlways: boolean, authType: 'scram-sha-256' | 'plain'): Target {
  let running: RunningPgbouncer | null = null;
  let size = 0;
  const sizeFor = (w: Workload): number => Math.max(1, Math.floor(POOL_SIZE / w.tenants));
  const plain = authType === 'plain';
  return {
    name: plain ? PGBOUNCER_PLAIN_AUTH : resetAlways ? 'PgBouncer reset-always' : 'PgBouncer no-reset',
    supports: (w) => w.protocol !== 'prepared' && (!plain || w.connectEach === true),
    pool: (w) => (w.tenants === 1 ? String(sizeFor(w)) : `${sizeFor(w)}/tenant`),
    async ready(w) {
      let fresh = false;
      if (running === null || size !== sizeFor(w)) {
        await running?.close();
        running = null;
        size = sizeFor(w);
        running = await startPgbouncer({
          binary,
          dir: path.join(dir, plain ? 'pgbouncer-plain' : resetAlways ? 'pgbouncer-reset' : 'pgbouncer-noreset'),
          backendPort: db.pg.port,
          rolePassword: db.rolePassword,
          resetAlways,
          poolSize: size,
          authType,
        });
        fresh = true;
      }
      return { fresh, endpoint: running.endpoint };
    },
    cpu: () => (running === null ? null : groupCpuTime(running.pgid)),
    pgid: () => running?.pgid ?? null,
    async close() {
      await running?.close();
      running = null;
    },
  };
}

/**
 * bench/tcp-relay.ts as its own process: what Node's sockets alone cost per transaction, with no
 * protocol work and one Postgres connection per client (compare it with pgfence session mode).
 * Clients log in to Postgres through it as they do directly.
 */
export function nodeRelayTarget(db: BenchDatabase): Target {
  const direct = directTarget(db);
  let running: { pgid: number; port: number } | null = null;
  return {
    name: NODE_RELAY,
    supports: () => true,
    pool: (w) => String(totalClients(w)),
    async ready(w) {
      let fresh = false;
      if (running === null) {
        running = await startScript(NODE_RELAY, 'tcp-relay.ts', [db.pg.host, String(db.pg.port)]);
        fresh = true;
      }
      const port = running.port;
      const { endpoint } = await direct.ready(w);
      return { fresh, endpoint: (tenant) => ({ ...endpoint(tenant), host: '127.0.0.1', port }) };
    },
    cpu: () => (running === null ? null : groupCpuTime(running.pgid)),
    pgid: () => running?.pgid ?? null,
    async close() {
      if (running !== null) await stopGroup(running.pgid, 5_000);
      running = null;
    },
  };
}

/**
 * bench/canned-server.ts as its own process: what a Node server costs per connection when it only
 * speaks the protocol (canned replies, no backend, no token check). Runs only the -C row, where the
 * figure is per connection; its answers are not Postgres's, so it is no target for anything else.
 */
export function cannedServerTarget(): Target {
  let running: { pgid: number; port: number } | null = null;
  return {
    name: NODE_CANNED_SERVER,
    supports: (w) => w.connectEach === true,
    pool: () => '—',
    async ready() {
      let fresh = false;
      if (running === null) {
        running = await startCannedServer();
        fresh = true;
      }
      const port = running.port;
      return { fresh, endpoint: () => ({ host: '127.0.0.1', port, user: 'bench', dbname: 'bench', env: { PGPASSWORD: 'canned' } }) };
    },
    cpu: () => (running === null ? null : groupCpuTime(running.pgid)),
    pgid: () => running?.pgid ?? null,
    async close() {
      if (running !== null) await stopGroup(running.pgid, 5_000);
      running = null;
    },
  };
}

export function startCannedServer(): Promise<{ pgid: number; port: number }> {
  return startScript(NODE_CANNED_SERVER, 'canned-server.ts', []);
}

/** A bench/ script as its own process (through tsx's loader, which only costs start-up), once it prints that it listens. */
async function startScript(what: string, script: string, args: readonly string[]): Promise<{ pgid: number; port: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'bench', script), String(port), ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.on('error', () => undefined);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start the ${what}`);
  await new Promise<void>((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout?.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the ${what} exited (${code}): ${stderr.trim()}`)));
  });
  child.stdout?.resume();
  return { pgid: pid, port };
}
