import path from 'node:path';
import type { Endpoint } from './pgbench.js';
import { baselineModules, type InProcessPgfence, pgfenceConfig, type PoolMode, startInProcess } from './pgfence.js';
import { type PgbouncerBinary, type RunningPgbouncer, startPgbouncer } from './pgbouncer.js';
import { type BenchDatabase, schemaOf } from './setup.js';

export const POOL_SIZE = 16;

/** What a workload asks of a target. */
export interface Workload {
  name: string;
  script: readonly string[];
  protocol: 'extended' | 'prepared';
  /** Tenants t1..tN, one pgbench process each. */
  tenants: number;
  /** Clients per pgbench process. */
  clients: number;
  /** Only for targets that keep a session's state (direct, pgfence session). */
  sessionOnly?: boolean;
}

export interface Target {
  name: string;
  /** Keeps a client's session, so -M prepared works: direct and pgfence session mode. */
  keepsSessions: boolean;
  /** Backends the target may use for a workload, for the table. */
  pool(w: Workload): string;
  /** Starts or reconfigures the target for the workload; `fresh` when it was (re)started and is cold. */
  ready(w: Workload): Promise<{ endpoint: (tenant: string) => Endpoint; fresh: boolean }>;
  close(): Promise<void>;
}

const totalClients = (w: Workload): number => w.tenants * w.clients;

/** Straight to Postgres as the superuser, search_path set with PGOPTIONS like the pin. */
export function directTarget(db: BenchDatabase): Target {
  let started = false;
  return {
    name: 'direct',
    keepsSessions: true,
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
    close: async () => undefined,
  };
}

/**
 * pgfence in this process. Session mode binds a backend per client for its lifetime, so its pool
 * is max(16, clients) (64 for the 8-tenant rows) instead of making clients queue for a backend;
 * transaction mode always has 16. A change of pool size restarts pgfence.
 */
export function pgfenceTarget(db: BenchDatabase, secret: string, mode: PoolMode, baseline?: { label: string; modules: Parameters<typeof startInProcess>[1] }): Target {
  let running: InProcessPgfence | null = null;
  const sizeFor = (w: Workload): number => (mode === 'session' ? Math.max(POOL_SIZE, totalClients(w)) : POOL_SIZE);
  return {
    name: baseline === undefined ? `pgfence ${mode}` : `pgfence ${mode} (${baseline.label})`,
    keepsSessions: mode === 'session',
    pool: (w) => String(sizeFor(w)),
    async ready(w) {
      const size = sizeFor(w);
      let fresh = false;
      if (running === null || running.settings.poolSize !== size) {
        await running?.close();
        running = null;
        running = await startInProcess({ backendUrl: db.pg.url, secret, mode, poolSize: size }, baseline?.modules);
        fresh = true;
      }
      return { fresh, endpoint: running.endpoint };
    },
    async close() {
      await running?.close();
      running = null;
    },
  };
}

/**
 * pgfence in both modes; with BENCH_BASELINE (the root of another checkout, e.g. a git worktree
 * of an earlier commit with node_modules linked), that build's pgfence in both modes too, as
 * "pgfence <mode> (baseline)", so one run compares the two.
 */
export async function pgfenceTargets(db: BenchDatabase, secret: string, note: (line: string) => void): Promise<Target[]> {
  const targets = [pgfenceTarget(db, secret, 'session')];
  if (pgfenceConfig({ backendUrl: db.pg.url, secret, mode: 'transaction', poolSize: POOL_SIZE }) !== null) {
    targets.push(pgfenceTarget(db, secret, 'transaction'));
  } else {
    note('this pgfence does not accept pool.mode: transaction (configSchema.safeParse): no pgfence transaction rows');
  }
  const root = process.env['BENCH_BASELINE'];
  if (root !== undefined && root !== '') {
    const modules = await baselineModules(path.resolve(root));
    note(`baseline: the pgfence of ${path.resolve(root)} runs beside this one, as "(baseline)" targets`);
    targets.push(pgfenceTarget(db, secret, 'session', { label: 'baseline', modules }), pgfenceTarget(db, secret, 'transaction', { label: 'baseline', modules }));
  }
  return targets;
}

/** PgBouncer, transaction pooling, one pool of 16 per tenant; with DISCARD ALL on every release, or no reset. */
export function pgbouncerTarget(db: BenchDatabase, binary: PgbouncerBinary, dir: string, resetAlways: boolean): Target {
  let running: RunningPgbouncer | null = null;
  return {
    name: resetAlways ? 'PgBouncer reset-always' : 'PgBouncer no-reset',
    keepsSessions: false,
    pool: (w) => (w.tenants === 1 ? String(POOL_SIZE) : `${POOL_SIZE}/tenant`),
    async ready() {
      const fresh = running === null;
      running ??= await startPgbouncer({
        binary,
        dir: path.join(dir, resetAlways ? 'pgbouncer-reset' : 'pgbouncer-noreset'),
        backendPort: db.pg.port,
        rolePassword: db.rolePassword,
        resetAlways,
        poolSize: POOL_SIZE,
      });
      return { fresh, endpoint: running.endpoint };
    },
    async close() {
      await running?.close();
      running = null;
    },
  };
}
