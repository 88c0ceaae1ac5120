import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { mintToken } from '../src/auth/index.js';
import { type Config, configSchema } from '../src/config/schema.js';
import { freePort } from '../src/embedded/postgres.js';
import type { Endpoint } from './pgbench.js';
import { isAlive, run, stopGroup, tail } from './proc.js';
import { TENANTS } from './setup.js';

export type PoolMode = 'session' | 'transaction';

export const REPO = fileURLToPath(new URL('..', import.meta.url));

export interface PgfenceSettings {
  backendUrl: string;
  secret: string;
  mode: PoolMode;
  poolSize: number;
  /** pool.reset; the default (auto) when absent. */
  reset?: 'auto' | 'always';
  /** The `workers` key, only when set (a pgfence without it refuses the key). */
  workers?: number;
  port?: number;
}

/**
 * The configuration the benchmark runs pgfence with, as plain input: it is checked with
 * configSchema.safeParse, so a schema without `pool.mode: transaction` is detected, not a type error.
 */
export function pgfenceConfigInput(s: PgfenceSettings): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: s.port ?? 0, shutdownTimeoutMs: 2_000 },
    backend: { url: s.backendUrl },
    jwt: { algorithms: ['HS256'], secret: s.secret, issuer: 'pgfence-bench' },
    tenancy: { tenants: TENANTS.map((id) => ({ id })) },
    pool: { mode: s.mode, size: s.poolSize, acquireTimeoutMs: 60_000, ...(s.reset === undefined ? {} : { reset: s.reset }) },
    ...(s.workers === undefined ? {} : { workers: s.workers }),
    log: { level: 'silent' },
  };
}

/** The parsed configuration, or null when this pgfence does not accept the settings (say, the mode). */
export function pgfenceConfig(s: PgfenceSettings): Config | null {
  const parsed = configSchema.safeParse(pgfenceConfigInput(s));
  return parsed.success ? parsed.data : null;
}

/** A pgfence built in a source tree (this one, or BENCH_BASELINE's): `node <root>/dist/cli.js`. */
export interface PgfenceBuild {
  root: string;
  cli: string;
}

/** Builds dist/ of a checkout (tsc -p tsconfig.build.json) so the benchmark runs what users run. */
export async function buildPgfence(root: string): Promise<PgfenceBuild> {
  const tsc = path.join(REPO, 'node_modules/typescript/bin/tsc');
  const result = await run(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, timeoutMs: 300_000 });
  const cli = path.join(root, 'dist/cli.js');
  if (result.code !== 0 || !existsSync(cli)) throw new Error(`building pgfence in ${root} failed: ${tail(result.stdout + result.stderr)}`);
  return { root, cli };
}

export interface RunningChild {
  readonly settings: PgfenceSettings;
  /** Process group of the pgfence process (and its workers): for CPU and memory readings. */
  readonly pgid: number;
  readonly port: number;
  endpoint(tenant: string): Endpoint;
  close(): Promise<void>;
}

/**
 * pgfence as users run it: `node dist/cli.js serve --config FILE` in its own process group, log
 * level silent, with a token for every tenant. Resolves once a client is served through it.
 */
export async function startPgfenceProcess(build: PgfenceBuild, s: PgfenceSettings, dir: string, nodeArgs: readonly string[] = []): Promise<RunningChild> {
  const port = s.port ?? (await freePort());
  const settings = { ...s, port };
  const input = pgfenceConfigInput(settings);
  const config = configSchema.parse(input);
  const file = path.join(dir, `pgfence-${port}.yaml`);
  await writeFile(file, JSON.stringify(input, null, 2) + '\n', { mode: 0o600 }); // JSON is YAML
  const tokens = new Map<string, string>();
  for (const tenant of TENANTS) tokens.set(tenant, await mintToken(config.jwt, { tenantId: tenant, user: `${tenant}-bench`, ttlSeconds: 4 * 3600 }));

  let stderr = '';
  const child = spawn(process.execPath, [...nodeArgs, build.cli, 'serve', '--config', file], { cwd: build.root, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  child.on('error', () => undefined);
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4_000)));
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start pgfence');
  const endpoint = (tenant: string): Endpoint => ({
    host: '127.0.0.1',
    port,
    user: `${tenant}-bench`,
    dbname: 'app',
    env: { PGPASSWORD: tokens.get(tenant) ?? '' },
  });
  for (let attempt = 0; !(await serves(endpoint(TENANTS[0]))); attempt++) {
    if (!isAlive(pid) || attempt >= 600) {
      await stopGroup(pid);
      throw new Error(`pgfence (${build.cli}) did not start: ${stderr.trim() || 'no output'}`);
    }
    await sleep(100);
  }
  return { settings, pgid: pid, port, endpoint, close: () => stopGroup(pid, 10_000) };
}

async function serves(e: Endpoint): Promise<boolean> {
  const client = new pg.Client({ host: e.host, port: e.port, user: e.user, database: e.dbname, password: e.env['PGPASSWORD'] });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Tokens for every tenant under a configuration (for the raw-socket clients of the memory test). */
export async function tenantTokens(config: Config): Promise<string[]> {
  return Promise.all(TENANTS.map((tenant) => mintToken(config.jwt, { tenantId: tenant, user: `${tenant}-idle`, ttlSeconds: 3600 })));
}
