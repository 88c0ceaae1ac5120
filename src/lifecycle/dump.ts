import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import type { ResolvedBackendTarget } from '../config/load.js';
import { quoteIdent } from '../tenancy/names.js';
import { audit, type LifecycleContext, LifecycleError, refused } from './context.js';
import type { ActionResult } from './tenants.js';
import { requireControl, tenantRow, withAudit } from './tenants.js';
import { registeredSchema, tenantSchema } from './tenant-names.js';
import { type TenantPlacement, tenantPlacement } from './tenant-placement.js';

const run = promisify(execFile);

export interface DumpOptions {
  /** The file to write; default `<id>-<UTC timestamp>.dump` in the current directory. */
  out?: string;
  format: 'custom' | 'plain';
  /** A pg_dump to use instead of searching for one. */
  pgDump?: string;
}

export interface FoundTool {
  path: string;
  version: string;
  major: number;
}

/** What `pg_dump --version` says: `pg_dump (PostgreSQL) 18.1 (Debian …)` → 18, "18.1". */
export async function toolVersion(file: string): Promise<FoundTool | null> {
  try {
    const { stdout } = await run(file, ['--version'], { timeout: 10_000 });
    const match = /\(PostgreSQL\)\s+((\d+)\S*)/.exec(stdout);
    return match === null ? null : { path: file, version: match[1] as string, major: Number(match[2]) };
  } catch {
    return null;
  }
}

/** Where pg_dump of a given major usually lives, before the PATH. */
function candidates(major: number, given: string | undefined): string[] {
  if (given !== undefined) return [given];
  const fromEnv = process.env['PGFENCE_PG_DUMP'];
  if (fromEnv !== undefined && fromEnv !== '') return [fromEnv];
  return [
    `/usr/lib/postgresql/${major}/bin/pg_dump`, // Debian, Ubuntu
    `/usr/pgsql-${major}/bin/pg_dump`, // RHEL, Fedora (PGDG)
    `/opt/homebrew/opt/postgresql@${major}/bin/pg_dump`, // Homebrew (Apple silicon)
    `/usr/local/opt/postgresql@${major}/bin/pg_dump`, // Homebrew (Intel)
    'pg_dump',
  ].filter((file) => !file.startsWith('/') || existsSync(file));
}

/**
 * A pg_dump that can dump a server of `serverMajor` (pg_dump reads servers of its own major and
 * older): --pg-dump, else $PGFENCE_PG_DUMP, else the usual install places of that major, else the
 * PATH. When none fits, the error says what was found and what to install.
 */
export async function findPgDump(serverMajor: number, given?: string): Promise<FoundTool> {
  const seen: FoundTool[] = [];
  for (const file of candidates(serverMajor, given)) {
    const found = await toolVersion(file);
    if (found === null) continue;
    if (found.major >= serverMajor) return found;
    seen.push(found);
  }
  const what = seen.length === 0 ? 'no pg_dump was found' : `found only ${seen.map((t) => `pg_dump ${t.version} (${t.path})`).join(', ')}`;
  throw refused(
    `the server is PostgreSQL ${serverMajor} and ${what}: pg_dump must be of that major or newer. Install the client tools of PostgreSQL ${serverMajor} (e.g. postgresql-client-${serverMajor}) or pass --pg-dump PATH (or set PGFENCE_PG_DUMP)`,
  );
}

/** The major of the server `client` is connected to (pg_dump must be of it or newer). */
export async function serverMajor(client: pg.Client): Promise<number> {
  const version = await client.query<{ server_version_num: string }>('SHOW server_version_num');
  return Math.floor(Number(version.rows[0]?.server_version_num) / 10_000);
}

/** The major of the server a placement is on. */
async function placementMajor(where: TenantPlacement): Promise<number> {
  const client = await where.connect('pgfence-dump');
  try {
    return await serverMajor(client);
  } finally {
    await client.end();
  }
}

/** libpq's environment for a client tool (pg_dump, pg_restore) run as `target` says. */
export function toolEnv(target: ResolvedBackendTarget, applicationName: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PGHOST: target.host,
    PGPORT: String(target.port),
    PGDATABASE: target.database,
    PGUSER: target.user,
    PGSSLMODE: target.sslmode,
    PGAPPNAME: applicationName,
    ...(target.password === undefined ? {} : { PGPASSWORD: target.password }),
    ...(target.sslRootCert === undefined || target.sslRootCert.includes('-----BEGIN') ? {} : { PGSSLROOTCERT: target.sslRootCert }),
  };
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * `pgfence tenant dump ID`: pg_dump -n of the tenant's schema where it lives (its target and
 * database, as the provisioner logs in there), then the file's sha256, written next to it as FILE.sha256 (`sha256sum -c` reads it). Any registered
 * tenant, whatever its status; only the schema its template gives.
 */
export async function dumpTenant(ctx: LifecycleContext, id: string, options: DumpOptions): Promise<ActionResult> {
  const expected = tenantSchema(ctx.config, id);
  if (expected === null) throw refused('tenancy.mode is row: a tenant has no schema of its own to dump');
  return withAudit(ctx, 'dump', id, async (client) => {
    await requireControl(ctx, client);
    const row = await tenantRow(ctx, client, id);
    if (row === undefined) throw refused(`unknown tenant "${id}"`);
    const schema = registeredSchema(ctx.config, id, row.schema_name) as string;
    const where = tenantPlacement(ctx, row.placement);
    const serverMajor = await placementMajor(where);
    const tool = await findPgDump(serverMajor, options.pgDump);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const out = path.resolve(options.out ?? `${id}-${stamp}.${options.format === 'plain' ? 'sql' : 'dump'}`);
    const env = toolEnv(ctx.targetAt(where.placement), 'pgfence-dump');
    // The schema option is a pattern: the double quotes keep its case and make every character literal.
    const args = [`--schema=${quoteIdent(schema)}`, `--format=${options.format}`, `--file=${out}`, '--no-subscriptions', '--no-password'];
    try {
      await run(tool.path, args, { env, timeout: 60 * 60_000, maxBuffer: 16 * 1024 * 1024 });
    } catch (error) {
      const stderr = (error as { stderr?: string }).stderr?.trim();
      throw new LifecycleError('failed', `pg_dump failed: ${stderr !== undefined && stderr !== '' ? stderr : String(error)}`, { pgDump: tool.path });
    }
    const checksum = await sha256(out);
    await writeFile(`${out}.sha256`, `${checksum}  ${path.basename(out)}\n`);
    const bytes = (await stat(out)).size;
    const detail = { schema, placement: where.label, file: out, bytes, sha256: checksum, format: options.format, pgDump: `${tool.path} (${tool.version})`, status: row.status, version: row.version };
    await audit(ctx, client, { action: 'dump', tenant: id, outcome: 'ok', detail });
    return { action: 'dump', tenant: id, outcome: 'ok', message: `tenant "${id}" dumped from ${where.label} to ${out} (${bytes} bytes, sha256 ${checksum})`, data: detail };
  });
}
