import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import pg from 'pg';
import pino from 'pino';
import { stringify } from 'yaml';
import { mintToken } from '../../src/auth/index.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { initCommand, type Io, tenantCommand } from '../../src/lifecycle/commands.js';
import { createLogger } from '../../src/log.js';
import { type RunningPgfence, startPgfence } from '../../src/server.js';
import { createTestDatabase, getPgUrl, type TestDatabase, urlAs, withClient } from '../support/db.js';

/** What one run of a lifecycle command printed, and its exit code. */
export interface CliRun {
  code: number;
  out: string;
  err: string;
  /** stdout as JSON, when the command was given --json. */
  json: Record<string, unknown>;
}

export interface LifecycleSetup {
  db: TestDatabase;
  /** The proxy's service role and the provisioner, both non-superusers with the README's grants. */
  serviceRole: string;
  provisioner: string;
  configFile: string;
  migrationsDir: string;
  workDir: string;
  config: Config;
  /** Changes the config file (and `config`) for the commands and proxies that come after. */
  rewriteConfig(change: (raw: Record<string, unknown>) => void): Promise<void>;
  /** Runs `pgfence init ...` (when args[0] is 'init') or `pgfence tenant ...` in this process. */
  cli(args: string[]): Promise<CliRun>;
  /** A file in the migrations directory (`shared/x.sql` for the shared chain). */
  migration(name: string, sql: string): Promise<void>;
  /** Superuser SQL on the test database. */
  direct<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<T>>;
  startProxy(logTo?: NodeJS.WritableStream): Promise<LifecycleProxy>;
  close(): Promise<void>;
}

export interface LifecycleProxy {
  running: RunningPgfence;
  connect(tenant: string): Promise<pg.Client>;
  close(): Promise<void>;
}

function collector(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

export interface LifecycleOptions {
  /** More top-level keys of the config (e.g. `backends`), made once the roles exist. */
  extraConfig?: (roles: { serviceRole: string; provisioner: string; password: string }) => Promise<Record<string, unknown>>;
}

/**
 * A fresh database with two login roles made as the README says: a service role for the proxy
 * (owner of nothing) and a provisioner (CREATE on the database, member of the service role, CREATE
 * on public for the shared chain), a config file with tenancy.control, and a migrations directory.
 */
export async function setUpLifecycle(tenancy: Partial<ConfigInput['tenancy']> = {}, serverUrl = getPgUrl(), options: LifecycleOptions = {}): Promise<LifecycleSetup> {
  const db = await createTestDatabase('lifecycle', { serverUrl });
  const suffix = randomBytes(4).toString('hex');
  const serviceRole = `svc_${suffix}`;
  const provisioner = `prov_${suffix}`;
  const password = randomBytes(12).toString('hex');
  const admin = new pg.Client({ connectionString: db.url });
  admin.on('error', () => undefined);
  await admin.connect();
  await admin.query(`CREATE ROLE ${serviceRole} LOGIN PASSWORD '${password}'`);
  await admin.query(`CREATE ROLE ${provisioner} LOGIN PASSWORD '${password}'`);
  await admin.query(`GRANT CREATE ON DATABASE ${db.name} TO ${provisioner}`);
  await admin.query(`GRANT ${serviceRole} TO ${provisioner}`);
  await admin.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${provisioner}`);

  const workDir = await mkdtemp(path.join(os.tmpdir(), 'pgfence-lifecycle-'));
  const migrationsDir = path.join(workDir, 'migrations');
  await mkdir(path.join(migrationsDir, 'shared'), { recursive: true });
  const raw: Record<string, unknown> = {
    listen: { host: '127.0.0.1', port: 0, shutdownTimeoutMs: 2_000 },
    backend: { url: urlAs(db.url, { user: serviceRole, password }) },
    jwt: { algorithms: ['HS256'], secret: randomBytes(32).toString('hex'), issuer: 'pgfence-test' },
    tenancy: { control: { schema: 'pgfence', provisioner: { user: provisioner, password } }, ...tenancy },
    pool: { size: 4, acquireTimeoutMs: 5_000 },
    log: { level: 'info' },
    ...(await options.extraConfig?.({ serviceRole, provisioner, password })),
  };
  const configFile = path.join(workDir, 'pgfence.yaml');
  const text = stringify(raw);
  await writeFile(configFile, text);
  let config = parseConfig(text, configFile, {});

  const proxies: LifecycleProxy[] = [];
  return {
    db,
    serviceRole,
    provisioner,
    configFile,
    migrationsDir,
    workDir,
    get config() {
      return config;
    },
    async rewriteConfig(change) {
      change(raw);
      const changed = stringify(raw);
      config = parseConfig(changed, configFile, {});
      await writeFile(configFile, changed);
    },
    async cli(args) {
      const out = collector();
      const err = collector();
      const io: Io = { out: out.stream, err: err.stream };
      const [first, ...rest] = args;
      const withConfig = [...rest, '--config', configFile];
      const code = first === 'init' ? await initCommand(withConfig, io) : await tenantCommand([first as string, ...withConfig, ...(first === 'migrate' || first === 'create' || first === 'list' ? dirArg(rest, migrationsDir) : [])], io);
      const printed = out.text();
      let json: Record<string, unknown> = {};
      if (args.includes('--json')) json = JSON.parse(printed.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
      return { code, out: printed, err: err.text(), json };
    },
    async migration(name, sql) {
      await writeFile(path.join(migrationsDir, name), sql);
    },
    direct: (sql, params) => admin.query(sql, params),
    async startProxy(logTo) {
      const log = logTo === undefined ? pino({ level: 'silent' }) : createLogger('debug', false, logTo);
      const running = await startPgfence(config, log, { processMetrics: false });
      const proxy: LifecycleProxy = {
        running,
        async connect(tenant) {
          const client = new pg.Client({
            host: '127.0.0.1',
            port: running.port,
            database: 'app',
            user: `${tenant}-user`,
            password: await mintToken(config.jwt, { tenantId: tenant, user: `${tenant}-user`, ttlSeconds: 600 }),
          });
          client.on('error', () => undefined);
          await client.connect();
          return client;
        },
        close: () => running.close(),
      };
      proxies.push(proxy);
      return proxy;
    },
    async close() {
      for (const proxy of proxies) await proxy.close();
      await admin.end();
      await db.drop();
      await withClient(serverUrl, async (client) => {
        for (const role of [provisioner, serviceRole]) {
          await client.query(`DROP OWNED BY ${role}`).catch(() => undefined);
          await client.query(`DROP ROLE IF EXISTS ${role}`);
        }
      });
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

/** --dir DIR unless the command names its own. */
function dirArg(args: readonly string[], dir: string): string[] {
  return args.includes('--dir') ? [] : ['--dir', dir];
}
