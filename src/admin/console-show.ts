import { readFileSync } from 'node:fs';
import { DEFAULT_TARGET } from '../placement/placement.js';
import type { ConsoleContext, ConsoleData } from './console.js';
import { CONSOLE_COMMANDS, type ShowItem } from './console-commands.js';
import type { ColumnSpec, ColumnType } from './rows.js';

/**
 * The tables behind each SHOW: column names and types next to how each value is read, so they
 * cannot drift apart. SHOW POOLS, CLIENTS, SERVERS, DATABASES, LISTS, STATS and CONFIG have
 * PgBouncer's columns, in its order and with its types (int4, int8, numeric, text); pgfence's own
 * come after them. Where pgfence has no equivalent, the value is the one PgBouncer shows for
 * "none": 0 or an empty string (the README lists these columns). Text values: booleans `yes`/`no`,
 * times in ISO 8601 UTC, absent values NULL.
 */

type Cell = string | number | boolean | Date | null | undefined;

interface Column<R> {
  name: string;
  type: ColumnType;
  value(row: R): Cell;
}

export interface Table {
  columns: ColumnSpec[];
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
  if (typeof cell === 'number') return Number.isFinite(cell) ? String(cell) : null;
  return printable(cell);
}

function table<R>(columns: readonly Column<R>[], rows: Iterable<R>): Table {
  return {
    columns: columns.map((c) => ({ name: c.name, type: c.type })),
    rows: Array.from(rows, (row) => columns.map((c) => display(c.value(row)))),
  };
}

const text = <R>(name: string, value: (row: R) => Cell): Column<R> => ({ name, type: 'text', value });
const int4 = <R>(name: string, value: (row: R) => number | null): Column<R> => ({ name, type: 'int4', value });
/** A whole number that may pass 2^31 (counters, bytes, µs): numeric, as PgBouncer's SHOW STATS. */
const numeric = <R>(name: string, value: (row: R) => number): Column<R> => ({ name, type: 'numeric', value: (row) => Math.round(value(row)) });
const zero = <R>(name: string): Column<R> => int4(name, () => 0);

type Pool = ReturnType<ConsoleContext['pools']>[number];
type Client = ReturnType<ConsoleContext['clients']>[number];
type Server = ReturnType<ConsoleContext['servers']>[number] & { target: ReturnType<ConsoleContext['target']> };
type Database = ReturnType<ConsoleContext['databases']>[number];
type List = ReturnType<ConsoleContext['lists']>[number];
type Tenant = ReturnType<ConsoleContext['tenants']>[number];
type Stats = ReturnType<ConsoleContext['stats']>[number];
type Setting = ReturnType<ConsoleContext['config']>[number];
type Help = (typeof CONSOLE_COMMANDS)[number];

const POOL_COLUMNS: Column<Pool>[] = [
  text('database', (r) => r.database),
  text('user', (r) => r.user),
  int4('cl_active', (r) => r.clActive),
  int4('cl_waiting', (r) => r.clWaiting),
  zero('cl_active_cancel_req'),
  zero('cl_waiting_cancel_req'),
  int4('sv_active', (r) => r.svActive),
  zero('sv_active_cancel'),
  int4('sv_being_canceled', (r) => r.svBeingCanceled),
  int4('sv_idle', (r) => r.svIdle),
  int4('sv_used', (r) => r.svUsed),
  int4('sv_tested', (r) => r.svTested),
  int4('sv_login', (r) => r.svLogin),
  int4('maxwait', (r) => Math.floor(r.maxWaitMs / 1000)),
  int4('maxwait_us', (r) => Math.round((r.maxWaitMs % 1000) * 1000)),
  text('pool_mode', (r) => r.poolMode),
  text('load_balance_hosts', () => null),
  text('tenant', (r) => r.tenant),
  text('target', (r) => r.target ?? DEFAULT_TARGET),
];

const SOCKET_PREFIX = <R extends { state: string }>(type: 'C' | 'S', user: (r: R) => Cell, database: (r: R) => Cell): Column<R>[] => [
  text('type', () => type),
  text('user', user),
  text('database', database),
  text('replication', () => 'none'),
  text('state', (r) => r.state),
];

const CLIENT_COLUMNS: Column<Client>[] = [
  ...SOCKET_PREFIX<Client>(
    'C',
    (r) => r.user ?? '(nouser)',
    (r) => r.database ?? '(nodb)',
  ),
  text('addr', (r) => r.addr),
  int4('port', (r) => r.port),
  text('local_addr', (r) => r.localAddr),
  int4('local_port', (r) => r.localPort),
  text('connect_time', (r) => r.connectedAt),
  text('request_time', () => null),
  zero('wait'),
  zero('wait_us'),
  zero('close_needed'),
  text('ptr', (r) => String(r.id)),
  text('link', (r) => (r.backendId === null ? '' : String(r.backendId))),
  zero('remote_pid'),
  text('tls', (r) => (r.tls ? 'TLS' : '')),
  text('application_name', (r) => r.applicationName ?? ''),
  zero('prepared_statements'),
  int4('id', (r) => r.id),
  text('tenant', (r) => r.tenant),
];

/** PgBouncer's server states: `tested` runs the reset, `being_canceled` waits for a cancel to land. */
function serverState(r: Server): string {
  if (r.cancelling) return 'being_canceled';
  return r.state === 'resetting' ? 'tested' : r.state;
}

const SERVER_COLUMNS: Column<Server>[] = [
  text('type', () => 'S'),
  text('user', (r) => r.target.user),
  text('database', (r) => r.target.database),
  text('replication', () => 'none'),
  text('state', serverState),
  text('addr', (r) => r.target.host),
  int4('port', (r) => r.target.port),
  text('local_addr', () => ''),
  zero('local_port'),
  text('connect_time', (r) => r.createdAt),
  text('request_time', (r) => r.lastUsedAt),
  zero('wait'),
  zero('wait_us'),
  int4('close_needed', (r) => (r.closeNeeded ? 1 : 0)),
  text('ptr', (r) => String(r.id)),
  text('link', (r) => (r.clientId === null ? '' : String(r.clientId))),
  int4('remote_pid', (r) => r.processId),
  text('tls', () => ''),
  text('application_name', () => ''),
  int4('prepared_statements', (r) => r.preparedStatements),
  int4('id', (r) => r.id),
  text('tenant', (r) => r.tenant),
  text('dirty', (r) => r.dirty),
  text('target', (r) => r.targetName ?? DEFAULT_TARGET),
];

const DATABASE_COLUMNS: Column<Database>[] = [
  text('name', (r) => r.name),
  text('host', (r) => r.host),
  int4('port', (r) => r.port),
  text('database', (r) => r.database),
  text('force_user', (r) => r.forceUser),
  int4('pool_size', (r) => r.poolSize),
  zero('min_pool_size'),
  zero('reserve_pool_size'),
  int4('server_lifetime', (r) => r.serverLifetimeSeconds),
  text('pool_mode', (r) => r.poolMode),
  text('load_balance_hosts', () => null),
  int4('max_connections', (r) => r.maxConnections),
  int4('current_connections', (r) => r.currentConnections),
  zero('max_client_connections'),
  int4('current_client_connections', (r) => r.currentClientConnections),
  int4('paused', (r) => (r.paused ? 1 : 0)),
  int4('disabled', (r) => (r.disabled === true ? 1 : 0)),
  int4('max_per_tenant', (r) => r.maxPerTenant),
  text('target', (r) => (r.target === undefined ? DEFAULT_TARGET : r.target)),
];

const LIST_COLUMNS: Column<List>[] = [text('list', (r) => r.list), int4('items', (r) => r.items)];

const TENANT_COLUMNS: Column<Tenant>[] = [
  text('id', (r) => r.id),
  text('status', (r) => r.status),
  text('schema', (r) => r.schema),
  int4('clients', (r) => r.clients),
  text('source', (r) => r.source),
];

const STATS_COLUMNS: Column<Stats>[] = [
  text('database', (r) => r.database),
  numeric('total_server_assignment_count', (r) => r.totals.assignments),
  numeric('total_xact_count', (r) => r.totals.transactions),
  numeric('total_query_count', (r) => r.totals.queries),
  numeric('total_received', (r) => r.totals.received),
  numeric('total_sent', (r) => r.totals.sent),
  numeric('total_xact_time', (r) => r.totals.transactionMicros),
  numeric('total_query_time', (r) => r.totals.queryMicros),
  numeric('total_wait_time', (r) => r.totals.waitMicros),
  numeric('total_client_parse_count', () => 0),
  numeric('total_server_parse_count', () => 0),
  numeric('total_bind_count', () => 0),
  numeric('avg_server_assignment_count', (r) => r.averages.assignments),
  numeric('avg_xact_count', (r) => r.averages.transactions),
  numeric('avg_query_count', (r) => r.averages.queries),
  numeric('avg_recv', (r) => r.averages.received),
  numeric('avg_sent', (r) => r.averages.sent),
  numeric('avg_xact_time', (r) => r.averages.transactionMicros),
  numeric('avg_query_time', (r) => r.averages.queryMicros),
  numeric('avg_wait_time', (r) => r.averages.waitMicros),
  numeric('avg_client_parse_count', () => 0),
  numeric('avg_server_parse_count', () => 0),
  numeric('avg_bind_count', () => 0),
  text('tenant', (r) => r.tenant),
  numeric('statements', (r) => r.statements),
  numeric('rejected', (r) => r.rejected),
];

const CONFIG_COLUMNS: Column<Setting>[] = [
  text('key', (r) => r.key),
  text('value', (r) => r.value),
  text('default', (r) => r.default),
  text('changeable', (r) => r.changeable),
];

const HELP_COLUMNS: Column<Help>[] = [text('command', (r) => r.command), text('description', (r) => r.description)];

let version: string | undefined;

/** pgfence's version from its package.json, read once: two levels up from both src/admin and dist/admin. */
function pgfenceVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}

/** With `workers: N`, after pgfence's own columns: the worker that holds the client or backend. */
const workerColumn = <R extends { worker?: number }>(): Column<R> => int4('worker', (r) => r.worker ?? null);

/** The table a SHOW answers with, read from the context now. */
export function showTable(item: ShowItem, ctx: ConsoleData): Table {
  const clustered = ctx.clustered === true;
  switch (item) {
    case 'help':
      return table(HELP_COLUMNS, CONSOLE_COMMANDS);
    case 'version':
      return table([text('version', (v: string) => `pgfence ${v}`)], [pgfenceVersion()]);
    case 'pools':
      return table(POOL_COLUMNS, ctx.pools());
    case 'clients':
      return table(clustered ? [...CLIENT_COLUMNS, workerColumn<Client>()] : CLIENT_COLUMNS, ctx.clients());
    case 'servers': {
      const target = ctx.target();
      return table(
        clustered ? [...SERVER_COLUMNS, workerColumn<Server>()] : SERVER_COLUMNS,
        ctx.servers().map((s) => ({ ...s, target: s.where ?? target })),
      );
    }
    case 'databases':
      return table(DATABASE_COLUMNS, ctx.databases());
    case 'lists':
      return table(LIST_COLUMNS, ctx.lists());
    case 'tenants':
      return table(TENANT_COLUMNS, ctx.tenants());
    case 'stats':
      return table(STATS_COLUMNS, ctx.stats());
    case 'config':
      return table(CONFIG_COLUMNS, ctx.config());
  }
}
