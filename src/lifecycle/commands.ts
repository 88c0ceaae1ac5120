import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfigFile } from '../config/load.js';
import { createLogger } from '../log.js';
import { errorMessage, lifecycleContext, type LifecycleContext, LifecycleError } from './context.js';
import { dumpTenant } from './dump.js';
import { type MigrateReport, runMigrate } from './migrate.js';
import { readMigrations } from './migrations.js';
import { moveTenant } from './move.js';
import { formatTable } from './table.js';
import { type ActionResult, createTenant, dropTenant, initControl, type ListedTenant, listTenants, setStatus } from './tenants.js';

/**
 * `pgfence init` and `pgfence tenant ...`: argument parsing and output. Results go to stdout (a
 * line, a table, or one JSON document with --json); pino log lines go to stderr. Exit codes: 0
 * done (or already done), 1 failed (a migration failed for some tenant), 2 usage or
 * configuration, 3 refused (a guard, a held lock, an unknown tenant).
 */

export const LIFECYCLE_HELP = `  pgfence init --config FILE [--json]
                                     create the control schema of tenancy.control (tenants, audit,
                                     shared_migrations) on the default target; idempotent
  pgfence tenant create ID [--dir migrations] [--adopt] [--placement TARGET[/DATABASE]]
                        [--statement-timeout-ms N]
                                     new schema (and role, with tenancy.roleTemplate), every
                                     migration, registered active; all or nothing. --placement:
                                     the target (default, or a key of backends), and a database of
                                     its own there (created, owned by the provisioner, if missing)
  pgfence tenant list                status, placement, version (behind?), size of every tenant
  pgfence tenant suspend ID          refuse new connections, end live sessions on every proxy
  pgfence tenant resume ID           serve it again
  pgfence tenant dump ID [--out FILE] [--format custom|plain] [--pg-dump PATH]
                                     pg_dump -n of its schema where it lives, with FILE.sha256
  pgfence tenant drop ID --confirm ID [--dump-first] [--out FILE]
                                     DROP SCHEMA ... CASCADE of a suspended tenant where it lives;
                                     its own database too if create made it for it
  pgfence tenant move ID --to TARGET[/DATABASE] [--pause-timeout-ms N] [--drop-source]
                      [--pg-dump PATH]
                                     pause its transactions on every proxy, copy its schema there
                                     (pg_dump | pg_restore, row counts checked), flip its placement,
                                     resume; the source schema is kept renamed (or dropped with
                                     --drop-source); any failure leaves it where it was
  pgfence tenant migrate [--dir migrations] [--canary N | --tenants a,b] [--concurrency K]
                         [--dry-run] [--wait]
                                     migrations/shared/*.sql once per database holding tenants,
                                     then migrations/*.sql in every tenant schema where it lives,
                                     one transaction per tenant; a placement that cannot be
                                     reached fails its own tenants only
                                     (every tenant command takes --config FILE and --json;
                                     exit codes: 0 done, 1 failed, 2 usage, 3 refused)
`;

const COMMON = {
  config: { type: 'string', short: 'c' },
  json: { type: 'boolean' },
} as const;

class UsageError extends Error {}

export interface Io {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream & { isTTY?: boolean };
}

const STDIO: Io = { out: process.stdout, err: process.stderr };

const EXIT = { ok: 0, unchanged: 0, failed: 1, refused: 3 } as const;

async function contextFor(configFile: string | undefined, io: Io): Promise<LifecycleContext> {
  if (configFile === undefined) throw new UsageError('needs --config FILE');
  const config = await loadConfigFile(configFile);
  return lifecycleContext(config, createLogger(config.log.level, false, io.err));
}

/** Runs a command, turning every error into its exit code and a message (a JSON document with --json). */
async function guarded(json: boolean, io: Io, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    const code = error instanceof UsageError || error instanceof ConfigError ? 2 : error instanceof LifecycleError ? EXIT[error.outcome] : 1;
    const outcome = code === 2 ? 'usage' : error instanceof LifecycleError ? error.outcome : 'failed';
    if (json) io.out.write(JSON.stringify({ outcome, error: errorMessage(error) }) + '\n');
    else io.err.write(`pgfence: ${errorMessage(error)}\n`);
    return code;
  }
}

function printResult(result: ActionResult, json: boolean, io: Io): number {
  if (json) io.out.write(JSON.stringify(result) + '\n');
  else io.out.write(`pgfence: ${result.message}\n`);
  return EXIT[result.outcome];
}

interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>): Parsed {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (error) {
    throw new UsageError(errorMessage(error));
  }
}

export async function initCommand(args: string[], io: Io = STDIO): Promise<number> {
  const json = args.includes('--json');
  return guarded(json, io, async () => {
    const { values, positionals } = parse(args, COMMON);
    if (positionals.length > 0) throw new UsageError(`init takes no arguments, got "${positionals.join(' ')}"`);
    const ctx = await contextFor(values['config'] as string | undefined, io);
    return printResult(await initControl(ctx), json, io);
  });
}

export async function tenantCommand(args: string[], io: Io = STDIO): Promise<number> {
  const [sub, ...rest] = args;
  const json = rest.includes('--json');
  return guarded(json, io, async () => {
    switch (sub) {
      case 'create':
        return create(rest, json, io);
      case 'list':
        return list(rest, json, io);
      case 'suspend':
      case 'resume':
        return status(sub, rest, json, io);
      case 'dump':
        return dump(rest, json, io);
      case 'drop':
        return drop(rest, json, io);
      case 'migrate':
        return migrate(rest, json, io);
      case 'move':
        return move(rest, json, io);
      default:
        throw new UsageError(`tenant needs a command: create, list, suspend, resume, dump, drop, move or migrate${sub === undefined ? '' : ` (got "${sub}")`}\n\n${LIFECYCLE_HELP}`);
    }
  });
}

function oneId(positionals: string[], command: string): string {
  if (positionals.length !== 1) throw new UsageError(`tenant ${command} needs one tenant id`);
  return positionals[0] as string;
}

function positiveInt(value: string | undefined, name: string, min = 1): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) throw new UsageError(`${name} must be a whole number >= ${min}, got "${value}"`);
  return Number(value);
}

async function create(args: string[], json: boolean, io: Io): Promise<number> {
  const { values, positionals } = parse(args, {
    ...COMMON,
    dir: { type: 'string' },
    adopt: { type: 'boolean' },
    placement: { type: 'string' },
    'statement-timeout-ms': { type: 'string' },
  });
  const id = oneId(positionals, 'create');
  const ctx = await contextFor(values['config'] as string | undefined, io);
  const migrations = await readMigrations((values['dir'] as string | undefined) ?? 'migrations', values['dir'] !== undefined);
  const result = await createTenant(ctx, id, {
    migrations,
    adopt: values['adopt'] === true,
    placement: values['placement'] as string | undefined,
    statementTimeoutMs: positiveInt(values['statement-timeout-ms'] as string | undefined, '--statement-timeout-ms', 0),
  });
  return printResult(result, json, io);
}

async function list(args: string[], json: boolean, io: Io): Promise<number> {
  const { values, positionals } = parse(args, { ...COMMON, dir: { type: 'string' } });
  if (positionals.length > 0) throw new UsageError('tenant list takes no tenant id');
  const ctx = await contextFor(values['config'] as string | undefined, io);
  const migrations = await readMigrations((values['dir'] as string | undefined) ?? 'migrations', values['dir'] !== undefined);
  const tenants = await listTenants(ctx, migrations);
  if (json) {
    io.out.write(JSON.stringify({ outcome: 'ok', latest: migrations.tenant.at(-1)?.name ?? null, tenants }) + '\n');
    return 0;
  }
  io.out.write(formatTable(tenants.map(listRow), ['id', 'status', 'placement', 'schema', 'version', 'size', 'updated']));
  return 0;
}

function listRow(t: ListedTenant): Record<string, string> {
  return {
    id: t.id,
    status: t.status,
    placement: t.placement,
    schema: t.schema_name ?? '-',
    version: `${t.version ?? 'none'}${t.behind ? ' (behind)' : ''}`,
    size: t.size_bytes === null ? '-' : humanBytes(t.size_bytes),
    updated: t.updated_at.toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

function humanBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

async function status(sub: 'suspend' | 'resume', args: string[], json: boolean, io: Io): Promise<number> {
  const { values, positionals } = parse(args, COMMON);
  const id = oneId(positionals, sub);
  const ctx = await contextFor(values['config'] as string | undefined, io);
  return printResult(await setStatus(ctx, id, sub === 'suspend' ? 'suspended' : 'active'), json, io);
}

const DUMP_OPTIONS = {
  out: { type: 'string', short: 'o' },
  format: { type: 'string' },
  'pg-dump': { type: 'string' },
} as const;

function dumpFormat(value: string | undefined): 'custom' | 'plain' {
  if (value === undefined || value === 'custom' || value === 'plain') return value ?? 'custom';
  throw new UsageError(`--format must be custom or plain, got "${value}"`);
}

async function dump(args: string[], json: boolean, io: Io): Promise<number> {
  const { values, positionals } = parse(args, { ...COMMON, ...DUMP_OPTIONS });
  const id = oneId(positionals, 'dump');
  const ctx = await contextFor(values['config'] as string | undefined, io);
  const result = await dumpTenant(ctx, id, {
    out: values['out'] as string | undefined,
    format: dumpFormat(values['format'] as string | undefined),
    pgDump: values['pg-dump'] as string | undefined,
  });
  return printResult(result, json, io);
}

async function drop(args: string[], json: boolean, io: Io): Promise<number> {
  const { values, positionals } = parse(args, { ...COMMON, ...DUMP_OPTIONS, confirm: { type: 'string' }, 'dump-first': { type: 'boolean' } });
  const id = oneId(positionals, 'drop');
  const ctx = await contextFor(values['config'] as string | undefined, io);
  const format = dumpFormat(values['format'] as string | undefined);
  const before =
    values['dump-first'] === true
      ? async () => {
          const dumped = await dumpTenant(ctx, id, { out: values['out'] as string | undefined, format, pgDump: values['pg-dump'] as string | undefined });
          if (!json) io.out.write(`pgfence: ${dumped.message}\n`);
          return { dump: dumped.data };
        }
      : undefined;
  return printResult(await dropTenant(ctx, id, { confirm: values['confirm'] as string | undefined, before }), json, io);
}

async function move(args: string[], json: boolean, io: Io): Promise<number> {
  const { values, positionals } = parse(args, {
    ...COMMON,
    to: { type: 'string' },
    'pause-timeout-ms': { type: 'string' },
    'drop-source': { type: 'boolean' },
    'pg-dump': { type: 'string' },
  });
  const id = oneId(positionals, 'move');
  const to = values['to'] as string | undefined;
  if (to === undefined || to === '') throw new UsageError('tenant move needs --to TARGET[/DATABASE]');
  const ctx = await contextFor(values['config'] as string | undefined, io);
  const result = await moveTenant(ctx, id, {
    to,
    pauseTimeoutMs: positiveInt(values['pause-timeout-ms'] as string | undefined, '--pause-timeout-ms'),
    dropSource: values['drop-source'] === true,
    pgDump: values['pg-dump'] as string | undefined,
  });
  return printResult(result, json, io);
}

async function migrate(args: string[], json: boolean, io: Io): Promise<number> {
  const { values, positionals } = parse(args, {
    ...COMMON,
    dir: { type: 'string' },
    canary: { type: 'string' },
    tenants: { type: 'string' },
    concurrency: { type: 'string' },
    'dry-run': { type: 'boolean' },
    wait: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError('tenant migrate takes no tenant id (use --tenants a,b)');
  if (values['canary'] !== undefined && values['tenants'] !== undefined) throw new UsageError('give --canary or --tenants, not both');
  const tenants = (values['tenants'] as string | undefined)?.split(',').map((t) => t.trim()).filter((t) => t !== '');
  const ctx = await contextFor(values['config'] as string | undefined, io);
  const migrations = await readMigrations((values['dir'] as string | undefined) ?? 'migrations', true);
  const progress = !json && io.err.isTTY === true;
  const report = await runMigrate(ctx, {
    migrations,
    canary: positiveInt(values['canary'] as string | undefined, '--canary'),
    tenants,
    concurrency: positiveInt(values['concurrency'] as string | undefined, '--concurrency') ?? 1,
    dryRun: values['dry-run'] === true,
    wait: values['wait'] === true,
    onProgress: progress ? (done, total, failed) => io.err.write(`\r${progressBar(done, total)} ${done}/${total}${failed > 0 ? `, ${failed} failed` : ''}  `) : undefined,
  });
  if (progress) io.err.write('\n');
  if (json) io.out.write(JSON.stringify({ outcome: report.counts.failed > 0 ? 'failed' : 'ok', ...report }) + '\n');
  else io.out.write(formatReport(report));
  return report.counts.failed > 0 ? EXIT.failed : 0;
}

const BAR_WIDTH = 30;

function progressBar(done: number, total: number): string {
  const filled = total === 0 ? BAR_WIDTH : Math.round((done / total) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
}

function formatReport(report: MigrateReport): string {
  const would = report.dryRun ? 'would apply' : 'applied';
  const chain = (applied: readonly string[]): string => (applied.length === 0 ? 'nothing to apply' : `${would} ${applied.join(', ')}`);
  const lines = [`shared chain: ${chain(report.shared)}`];
  for (const s of report.sharedElsewhere) lines.push(`shared chain on ${s.placement}: ${s.error === undefined ? chain(s.applied) : `failed: ${s.error}`}`);
  const rows = report.tenants.map((t) => ({
    tenant: t.tenant,
    placement: t.placement,
    result: report.dryRun && t.status === 'migrated' ? 'pending' : t.status,
    files: t.applied.join(', ') || '-',
    error: t.error ?? '',
  }));
  const c = report.counts;
  const summary = `${report.dryRun ? 'dry run: ' : ''}${c.migrated} ${report.dryRun ? 'pending' : 'migrated'}, ${c.current} current, ${c.failed} failed, ${c.skipped} skipped in ${(report.durationMs / 1000).toFixed(1)} s`;
  return `${lines.join('\n')}\n${formatTable(rows, ['tenant', 'placement', 'result', 'files', 'error'])}${summary}\n`;
}
