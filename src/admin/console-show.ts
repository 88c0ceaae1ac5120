import { readFileSync } from 'node:fs';
import type { ConsoleContext } from './console.js';
import { CONSOLE_COMMANDS, type ShowItem } from './console-commands.js';

/**
 * The tables behind each SHOW: column names next to how each value is read, so the two cannot
 * drift apart. Values are text: numbers in decimal, booleans `yes`/`no` (as PgBouncer shows
 * them), times in ISO 8601 UTC, absent values NULL.
 */

type Cell = string | number | boolean | Date | null | undefined;

interface Column<R> {
  name: string;
  value(row: R): Cell;
}

export interface Table {
  columns: string[];
  rows: (string | null)[][];
}

/**
 * Control characters (a user name comes from the client) would reach the operator's terminal
 * as they are; they are shown as \xNN instead, and NUL, which text cannot hold, the same way.
 */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function display(cell: Cell): string | null {
  if (cell === null || cell === undefined) return null;
  if (typeof cell === 'boolean') return cell ? 'yes' : 'no';
  if (cell instanceof Date) return Number.isNaN(cell.getTime()) ? null : cell.toISOString();
  return printable(String(cell));
}

function table<R>(columns: readonly Column<R>[], rows: Iterable<R>): Table {
  return { columns: columns.map((c) => c.name), rows: Array.from(rows, (row) => columns.map((c) => display(c.value(row)))) };
}

/** Shorthand for a column that shows one field of the row as it is. */
function field<R, K extends keyof R & string>(name: string, key: K): Column<R> {
  return { name, value: (row) => row[key] as Cell };
}

type Pool = ReturnType<ConsoleContext['pools']>[number];
type Client = ReturnType<ConsoleContext['clients']>[number];
type Server = ReturnType<ConsoleContext['servers']>[number];
type Tenant = ReturnType<ConsoleContext['tenants']>[number];
type Stats = ReturnType<ConsoleContext['stats']>[number];
type Setting = ReturnType<ConsoleContext['config']>[number];
type Help = (typeof CONSOLE_COMMANDS)[number];

const POOL_COLUMNS: Column<Pool>[] = [
  field('database', 'database'),
  field('mode', 'mode'),
  field('size', 'size'),
  field('idle', 'idle'),
  field('active', 'active'),
  field('resetting', 'resetting'),
  field('connecting', 'connecting'),
  field('waiting', 'waiting'),
  field('max_wait_ms', 'maxWaitMs'),
];

const CLIENT_COLUMNS: Column<Client>[] = [
  field('id', 'id'),
  field('tenant', 'tenant'),
  field('user', 'user'),
  field('peer', 'peer'),
  field('state', 'state'),
  field('connected_at', 'connectedAt'),
  field('backend_id', 'backendId'),
  field('admin', 'admin'),
];

const SERVER_COLUMNS: Column<Server>[] = [
  field('id', 'id'),
  field('state', 'state'),
  field('tenant', 'tenant'),
  field('dirty', 'dirty'),
  field('created_at', 'createdAt'),
  field('last_used_at', 'lastUsedAt'),
];

const TENANT_COLUMNS: Column<Tenant>[] = [field('id', 'id'), field('status', 'status'), field('schema', 'schema'), field('clients', 'clients')];

const STATS_COLUMNS: Column<Stats>[] = [
  field('tenant', 'tenant'),
  field('statements', 'statements'),
  field('rejected', 'rejected'),
  field('clients', 'clients'),
  field('backends', 'backends'),
];

const CONFIG_COLUMNS: Column<Setting>[] = [field('key', 'key'), field('value', 'value'), field('changeable', 'changeable')];

const HELP_COLUMNS: Column<Help>[] = [field('command', 'command'), field('description', 'description')];

let version: string | undefined;

/** pgfence's version from its package.json, read once: two levels up from both src/admin and dist/admin. */
function pgfenceVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}

/** The table a SHOW answers with, read from the context now. */
export function showTable(item: ShowItem, ctx: ConsoleContext): Table {
  switch (item) {
    case 'help':
      return table(HELP_COLUMNS, CONSOLE_COMMANDS);
    case 'version':
      return table([{ name: 'version', value: (v: string) => `pgfence ${v}` }], [pgfenceVersion()]);
    case 'pools':
      return table(POOL_COLUMNS, ctx.pools());
    case 'clients':
      return table(CLIENT_COLUMNS, ctx.clients());
    case 'servers':
      return table(SERVER_COLUMNS, ctx.servers());
    case 'tenants':
      return table(TENANT_COLUMNS, ctx.tenants());
    case 'stats':
      return table(STATS_COLUMNS, ctx.stats());
    case 'config':
      return table(CONFIG_COLUMNS, ctx.config());
  }
}
