#!/usr/bin/env node
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { mintToken, parseDuration } from './auth/index.js';
import { nodePostgresTarget } from './backend/node-postgres.js';
import { ConfigError, describeConfig, loadConfigFile, resolveBackendTarget } from './config/load.js';
import type { Config } from './config/schema.js';
import { commandHelp, HELP, isCommand, isParseArgsError, packageVersion, UsageError } from './cli-usage.js';
import { runDemo } from './demo.js';
import { probeHost, probeListener } from './healthcheck.js';
import { initCommand, LIFECYCLE_HELP, tenantCommand } from './lifecycle/commands.js';
import { createLogger } from './log.js';
import { startPgfence } from './server.js';
import { runPrimary } from './cluster/primary.js';
import { workersFor } from './cluster/shares.js';
import { runWorker } from './cluster/worker.js';
import { applyRoleRecipe, formatRoleRecipe, type RoleRecipe, roleRecipe, RoleRecipeError } from './tenancy/roles.js';

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      if (rest[0] === 'config') process.stdout.write(describeConfig() + '\n');
      else if (rest.length === 0) process.stdout.write(HELP);
      else if (isCommand(rest[0]) && rest.length === 1) process.stdout.write(commandHelp(rest[0]));
      else throw new UsageError(`no help for "${rest.join(' ')}"`, 'help');
      return 0;
    case '-v':
    case '--version':
    case 'version':
      process.stdout.write(`pgfence ${packageVersion()}\n`);
      return 0;
    case 'serve':
      return serve(rest);
    case 'demo':
      return demo(rest);
    case 'token':
      return token(rest);
    case 'roles':
      return roles(rest);
    case 'healthcheck':
      return healthcheck(rest);
    case 'init':
    case 'tenant':
      if (rest.includes('--help') || rest.includes('-h')) {
        process.stdout.write(`Usage:\n${LIFECYCLE_HELP}`);
        return 0;
      }
      return command === 'init' ? initCommand(rest) : tenantCommand(rest);
    default:
      process.stderr.write(`pgfence: ${command.startsWith('-') ? 'unknown option' : 'unknown command'} "${command}"\n\n${HELP}`);
      return 2;
  }
}

async function serve(args: string[]): Promise<number> {
  // A worker of `workers: N`, forked by the primary with the same arguments: it takes its configuration from the primary.
  if (cluster.isWorker) return runWorker();
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, help: HELP_OPTION } });
  if (values.help === true) return printHelp('serve');
  if (values.config === undefined) throw new UsageError('serve needs --config FILE', 'serve');
  const file = values.config;
  const config = await loadConfigFile(file);
  const log = createLogger(config.log.level);
  if (workersFor(config) > 1) return runPrimary(config, log, { loadConfig: () => loadConfigFile(file) });
  const running = await startPgfence(config, log, { loadConfig: () => loadConfigFile(file) });
  const onHangup = (): void => {
    loadConfigFile(file)
      .then((next) => running.reload(next))
      .catch((error: unknown) => log.error({ err: error }, 'reload failed; keeping the running configuration'));
  };
  process.on('SIGHUP', onHangup);
  await Promise.race([untilSignal(), running.shutdownRequested]);
  process.off('SIGHUP', onHangup);
  log.info('shutting down: no new connections, waiting for running transactions');
  await running.close();
  return 0;
}

async function demo(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { port: { type: 'string' }, 'data-dir': { type: 'string' }, help: HELP_OPTION } });
  if (values.help === true) return printHelp('demo');
  const port = values.port === undefined ? 6432 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a port number, got "${values.port}"`, 'demo');
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
      help: HELP_OPTION,
    },
  });
  if (values.help === true) return printHelp('token');
  if (values.config === undefined || (values.tenant === undefined && values.admin !== true)) {
    throw new UsageError('token needs --config FILE and --tenant ID (or --admin)', 'token');
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
      help: HELP_OPTION,
    },
  });
  if (values.help === true) return printHelp('roles');
  if (values.config === undefined) throw new UsageError('roles needs --config FILE', 'roles');
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

async function healthcheck(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      host: { type: 'string' },
      port: { type: 'string' },
      'timeout-ms': { type: 'string' },
      help: HELP_OPTION,
    },
  });
  if (values.help === true) return printHelp('healthcheck');
  const listen = values.config === undefined ? { host: '127.0.0.1', port: 6432 } : (await loadConfigFile(values.config)).listen;
  const port = values.port === undefined ? listen.port : Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port must be a port number, got "${values.port}"`, 'healthcheck');
  const timeoutMs = values['timeout-ms'] === undefined ? 2_000 : Number(values['timeout-ms']);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new UsageError(`--timeout-ms must be a positive integer, got "${values['timeout-ms']}"`, 'healthcheck');
  const result = await probeListener({ host: values.host ?? probeHost(listen.host), port, timeoutMs });
  (result.ok ? process.stdout : process.stderr).write(`pgfence healthcheck: ${result.reason}\n`);
  return result.ok ? 0 : 1;
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

const HELP_OPTION = { type: 'boolean', short: 'h' } as const;

function printHelp(command: Parameters<typeof commandHelp>[0]): number {
  process.stdout.write(commandHelp(command));
  return 0;
}

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
    if (error instanceof UsageError || isParseArgsError(error)) {
      const command = error instanceof UsageError ? error.command : process.argv[2];
      const usage = isCommand(command) ? `\n${commandHelp(command)}` : '';
      process.stderr.write(`pgfence: ${error.message}\n${usage}`);
      process.exit(2);
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`pgfence: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`pgfence: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
