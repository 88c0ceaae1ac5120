#!/usr/bin/env node
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { mintToken, parseDuration } from './auth/index.js';
import { nodePostgresTarget } from './backend/node-postgres.js';
import { ConfigError, describeConfig, loadConfigFile, resolveBackendTarget } from './config/load.js';
import type { Config } from './config/schema.js';
import { runDemo } from './demo.js';
import { LIFECYCLE_HELP, initCommand, tenantCommand } from './lifecycle/commands.js';
import { createLogger } from './log.js';
import { startPgfence } from './server.js';
import { runPrimary } from './cluster/primary.js';
import { workersFor } from './cluster/shares.js';
import { runWorker } from './cluster/worker.js';
import { applyRoleRecipe, formatRoleRecipe, type RoleRecipe, roleRecipe, RoleRecipeError } from './tenancy/roles.js';

const HELP = `pgfence: a PostgreSQL proxy that fences every client into one tenant

Usage:
  pgfence serve --config FILE        run the proxy with a YAML configuration; SIGHUP reloads it,
                                     SIGTERM/SIGINT drain running transactions and stop
                                     (workers: N runs N processes on the one port)
  pgfence demo [--port N] [--data-dir DIR]
                                     start an embedded Postgres with demo tenants, run the
                                     proxy in front of it and print ready psql lines
                                     (default port 6432, data in .pgfence/demo)
  pgfence token --config FILE --tenant ID [--ttl 1h] [--user NAME]
                                     mint a JWT for a tenant with the configured signing key
                                     (jwt.secret for HS*, jwt.privateKey for asymmetric keys)
  pgfence token --config FILE --admin [--ttl 1h]
                                     mint an admin token for the console: psql to database pgfence
  pgfence roles --config FILE [--tenant ID ...] [--apply]
                                     print the SQL that creates the per-tenant roles of
                                     tenancy.roleTemplate (NOLOGIN, granted to the backend user,
                                     privileges on the tenant's own schema and the shared ones;
                                     read-only schemas of policy.readOnlySchemas get SELECT only);
                                     --apply runs it on the configured backend as the configured
                                     backend user, in one transaction; idempotent. Tenants: the
                                     static list, or the --tenant ids (required with a registry)
${LIFECYCLE_HELP}  pgfence help config                the configuration reference (every key, type, default)
  pgfence --help                     this text

Clients connect with any Postgres driver and send the JWT as the password, e.g.
  PGPASSWORD="$(pgfence token --config pgfence.yaml --tenant acme)" psql "host=127.0.0.1 port=6432 dbname=app"

Environment: values in the YAML may be written as \${VAR} or \${VAR:-default}.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      if (rest[0] === 'config') process.stdout.write(describeConfig() + '\n');
      else process.stdout.write(HELP);
      return 0;
    case 'serve':
      return serve(rest);
    case 'demo':
      return demo(rest);
    case 'token':
      return token(rest);
    case 'roles':
      return roles(rest);
    case 'init':
      return initCommand(rest);
    case 'tenant':
      return tenantCommand(rest);
    default:
      process.stderr.write(`pgfence: unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

async function serve(args: string[]): Promise<number> {
  // A worker of `workers: N`, forked by the primary with the same arguments: it takes its configuration from the primary.
  if (cluster.isWorker) return runWorker();
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
  if (values.config === undefined) throw new UsageError('serve needs --config FILE');
  const file = values.config;
  const config = await loadConfigFile(file);
  const log = createLogger(config.log.level);
  if (workersFor(config) > 1) return runPrimary(config, log, { loadConfig: () => loadConfigFile(file) });
  const running = await startPgfence(config, log, { loadConfig: () => loadConfigFile(file) });
  const onHangup = (): void => {
    loadConfigFile(file)
      .then((next) => running.reload(next))
      .catch((error: unknown) => log.error({ err: error instanceof Error ? error.message : String(error) }, 'reload failed; keeping the running configuration'));
  };
  process.on('SIGHUP', onHangup);
  await Promise.race([untilSignal(), running.shutdownRequested]);
  process.off('SIGHUP', onHangup);
  log.info('shutting down: no new connections, waiting for running transactions');
  await running.close();
  return 0;
}

async function demo(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { port: { type: 'string' }, 'data-dir': { type: 'string' } } });
  const port = values.port === undefined ? 6432 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a port number, got "${values.port}"`);
  const stop = await runDemo({ port, dataDir: values['data-dir'] ?? '.pgfence/demo', out: process.stdout });
  await untilSignal();
  process.stdout.write('\nstopping pgfence and the embedded Postgres…\n');
  await stop();
  return 0;
}

async function token(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      tenant: { type: 'string' },
      admin: { type: 'boolean' },
      ttl: { type: 'string' },
      user: { type: 'string' },
    },
  });
  if (values.config === undefined || (values.tenant === undefined && values.admin !== true)) {
    throw new UsageError('token needs --config FILE and --tenant ID (or --admin)');
  }
  const config = await loadConfigFile(values.config);
  const jwt = await mintToken(config.jwt, {
    tenantId: values.tenant ?? null,
    user: values.user,
    ttlSeconds: parseDuration(values.ttl ?? '1h'),
    adminClaim: values.admin === true ? config.admin.consoleClaim : undefined,
  });
  process.stdout.write(jwt + '\n');
  return 0;
}

async function roles(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      tenant: { type: 'string', multiple: true },
      apply: { type: 'boolean' },
    },
  });
  if (values.config === undefined) throw new UsageError('roles needs --config FILE');
  const config = await loadConfigFile(values.config);
  const tenantIds = roleTenants(config, values.tenant ?? []);
  const backend = resolveBackendTarget(config.backend);
  let recipe: RoleRecipe;
  try {
    recipe = roleRecipe({ tenancy: config.tenancy, policy: config.policy, poolUser: backend.user, tenantIds });
  } catch (error) {
    throw error instanceof RoleRecipeError ? new UsageError(error.message) : error;
  }
  if (values.apply !== true) {
    process.stdout.write(formatRoleRecipe(recipe));
    return 0;
  }
  const client = new pg.Client({
    ...nodePostgresTarget(backend),
    connectionTimeoutMillis: config.backend.connectTimeoutMs,
    application_name: 'pgfence-roles',
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const count = await applyRoleRecipe(client, recipe);
    process.stdout.write(`pgfence: applied ${count} statements for ${tenantIds.length} tenant(s) as "${backend.user}" on ${backend.host}:${backend.port}/${backend.database}\n`);
  } finally {
    await client.end();
  }
  return 0;
}

/** The tenants of `pgfence roles`: the --tenant ids (which a static list must know), else the whole static list. */
function roleTenants(config: Config, given: readonly string[]): string[] {
  const listed = config.tenancy.tenants?.map((t) => t.id);
  if (given.length === 0) {
    if (listed === undefined) throw new UsageError('with tenancy.registry, name the tenants with --tenant ID (repeatable)');
    return listed;
  }
  const unknown = listed === undefined ? [] : given.filter((id) => !listed.includes(id));
  if (unknown.length > 0) throw new UsageError(`not in tenancy.tenants: ${unknown.join(', ')}`);
  return [...given];
}

class UsageError extends Error {}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError || error instanceof UsageError) {
      process.stderr.write(`pgfence: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`pgfence: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
