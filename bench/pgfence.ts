import pino from 'pino';
import { mintToken } from '../src/auth/index.js';
import { type Config, configSchema } from '../src/config/schema.js';
import { type RunningPgfence, startPgfence } from '../src/server.js';
import type { Endpoint } from './pgbench.js';
import { TENANTS } from './setup.js';

export type PoolMode = 'session' | 'transaction';

export interface PgfenceSettings {
  backendUrl: string;
  secret: string;
  mode: PoolMode;
  poolSize: number;
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
    pool: { mode: s.mode, size: s.poolSize, acquireTimeoutMs: 60_000 },
    log: { level: 'silent' },
  };
}

/** The parsed configuration, or null when this pgfence does not accept the settings (say, the mode). */
export function pgfenceConfig(s: PgfenceSettings): Config | null {
  const parsed = configSchema.safeParse(pgfenceConfigInput(s));
  return parsed.success ? parsed.data : null;
}

export interface InProcessPgfence {
  readonly settings: PgfenceSettings;
  endpoint(tenant: string): Endpoint;
  close(): Promise<void>;
}

/** What the benchmark needs of a pgfence source tree: this one, or a baseline checkout's. */
interface PgfenceModules {
  parse(input: Record<string, unknown>): Config | null;
  start(config: Config): Promise<RunningPgfence>;
}

const THIS_TREE: PgfenceModules = {
  parse: (input) => {
    const parsed = configSchema.safeParse(input);
    return parsed.success ? parsed.data : null;
  },
  start: (config) => startPgfence(config, pino({ level: 'silent' }), { processMetrics: false }),
};

/**
 * The same modules from another checkout (BENCH_BASELINE: an earlier commit with its own
 * node_modules), loaded in this process beside ours, so one run compares the two builds.
 */
export async function baselineModules(root: string): Promise<PgfenceModules> {
  const schema = (await import(`${root}/src/config/schema.ts`)) as { configSchema: typeof configSchema };
  const server = (await import(`${root}/src/server.ts`)) as { startPgfence: typeof startPgfence };
  return {
    parse: (input) => {
      const parsed = schema.configSchema.safeParse(input);
      return parsed.success ? parsed.data : null;
    },
    start: (config) => server.startPgfence(config, pino({ level: 'silent' }), { processMetrics: false }),
  };
}

/** pgfence in this process, log level silent, with a fresh token for every tenant. */
export async function startInProcess(s: PgfenceSettings, modules: PgfenceModules = THIS_TREE): Promise<InProcessPgfence> {
  const config = modules.parse(pgfenceConfigInput(s));
  if (config === null) throw new Error(`pgfence does not accept pool.mode ${s.mode}`);
  const running: RunningPgfence = await modules.start(config);
  const tokens = new Map<string, string>();
  for (const tenant of TENANTS) {
    tokens.set(tenant, await mintToken(config.jwt, { tenantId: tenant, user: `${tenant}-bench`, ttlSeconds: 4 * 3600 }));
  }
  return {
    settings: s,
    endpoint: (tenant) => ({
      host: '127.0.0.1',
      port: running.port,
      user: `${tenant}-bench`,
      dbname: 'app',
      env: { PGPASSWORD: tokens.get(tenant) ?? '' },
    }),
    close: () => running.close(),
  };
}

/** Tokens for every tenant under a configuration (for the raw-socket clients of the memory test). */
export async function tenantTokens(config: Config): Promise<string[]> {
  return Promise.all(TENANTS.map((tenant) => mintToken(config.jwt, { tenantId: tenant, user: `${tenant}-idle`, ttlSeconds: 3600 })));
}
