import { randomBytes } from 'node:crypto';
import pg from 'pg';
import pino from 'pino';
import { mintToken } from '../../src/auth/index.js';
import { type Config, type ConfigInput, configSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log.js';
import { type RunningPgfence, startPgfence } from '../../src/server.js';
import { createTestDatabase } from './db.js';
import { SEED_SQL, TEST_TENANTS } from './seed.js';

export { TEST_TENANTS };

export interface TestProxy {
  readonly port: number;
  readonly config: Config;
  readonly running: RunningPgfence;
  /** Direct (unproxied) URL of this test's database, for setup and for checking from outside. */
  readonly directUrl: string;
  token(tenant: string, claims?: Record<string, unknown>): Promise<string>;
  /** A connected node-postgres client, through pgfence, as `tenant`. */
  connect(tenant: string, extra?: pg.ClientConfig): Promise<pg.Client>;
  /** Connection settings for a client through pgfence (password = a fresh JWT). */
  clientConfig(tenant: string): Promise<pg.ClientConfig>;
  /** Runs SQL directly on the test database (not through pgfence). */
  direct<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<T>>;
  close(): Promise<void>;
}

export interface TestProxyOptions {
  /** Where pgfence's JSON log goes (at debug level); silent when absent. */
  logTo?: NodeJS.WritableStream;
  /** A superuser URL of the server whose fresh database pgfence fronts; the run's Postgres when absent. */
  serverUrl?: string;
}

export async function startTestProxy(overrides: Partial<ConfigInput> = {}, options: TestProxyOptions = {}): Promise<TestProxy> {
  const db = await createTestDatabase('pgfence', { serverUrl: options.serverUrl });
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await admin.query(SEED_SQL);

  // Tests refuse many logins from 127.0.0.1 on purpose: the failed-login brake (on by default) is
  // off here unless a test configures listen.authThrottle itself (test/proxy/auth-throttle.test.ts).
  const config = configSchema.parse({
    listen: { host: '127.0.0.1', port: 0, shutdownTimeoutMs: 2_000, authThrottle: { enabled: false } },
    backend: { url: db.url },
    jwt: { algorithms: ['HS256'], secret: randomBytes(32).toString('hex'), issuer: 'pgfence-test' },
    tenancy: {
      tenants: [
        ...TEST_TENANTS.map((id) => ({ id })),
        { id: 'initech', status: 'suspended' },
      ],
    },
    pool: { size: 4, acquireTimeoutMs: 5_000 },
    ...overrides,
    ...(overrides.listen !== undefined ? { listen: { shutdownTimeoutMs: 2_000, authThrottle: { enabled: false }, ...overrides.listen } } : {}),
  } satisfies ConfigInput);
  const log =
    options.logTo !== undefined
      ? createLogger('debug', false, options.logTo)
      : pino({ level: process.env['PGFENCE_TEST_LOG'] ?? 'silent' });
  const running = await startPgfence(config, log, { processMetrics: false });

  const token = (tenant: string, claims: Record<string, unknown> = {}): Promise<string> =>
    mintToken(config.jwt, { tenantId: tenant, user: `${tenant}-user`, ttlSeconds: 600, extraClaims: claims });
  const clientConfig = async (tenant: string): Promise<pg.ClientConfig> => ({
    host: '127.0.0.1',
    port: running.port,
    database: 'app',
    user: `${tenant}-user`,
    password: await token(tenant),
  });

  return {
    port: running.port,
    config,
    running,
    directUrl: db.url,
    token,
    clientConfig,
    async connect(tenant, extra = {}) {
      const client = new pg.Client({ ...(await clientConfig(tenant)), ...extra });
      client.on('error', () => undefined);
      await client.connect();
      return client;
    },
    direct: (sql, params) => admin.query(sql, params),
    async close() {
      await running.close();
      await admin.end();
      await db.drop();
    },
  };
}
