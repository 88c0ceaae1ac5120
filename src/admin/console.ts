import { ConfigError } from '../config/errors.js';
import { errorResponse, noticeResponse } from '../protocol/build.js';
import { type ConsoleCommand, parseConsoleCommand, type ShowItem } from './console-commands.js';
import { consoleErrors } from './console-errors.js';
import { showTable } from './console-show.js';
import type { StatTotals } from './metrics.js';
import type { ClientState, PoolRow } from './pool-view.js';
import { commandComplete, EMPTY_QUERY_RESPONSE, typedResult } from './rows.js';
import type { BackendView } from '../pool/pool.js';

/**
 * The admin console, PgBouncer style: an operator connects with psql to the virtual database
 * `pgfence` with an admin token, and every simple Query is one console command. This module is
 * pure: it reads and acts through a `ConsoleContext` and returns the messages to send back, all
 * but the ReadyForQuery that the session appends.
 *
 *   SHOW HELP | VERSION | POOLS | CLIENTS | SERVERS | DATABASES | LISTS | TENANTS | STATS | CONFIG
 *   RELOAD | PAUSE | RESUME | RECONNECT | SHUTDOWN | KILL TENANT <id>
 *
 * SHOW POOLS, CLIENTS, SERVERS, DATABASES, LISTS, STATS and CONFIG have PgBouncer's columns in
 * PgBouncer's order and types; pgfence's own columns (the tenant, ...) come after them.
 */

export interface ConsoleSession {
  id: number;
  /** null before login and for the admin console. */
  tenant: string | null;
  user: string | undefined;
  /** The database the client asked for in its startup packet. */
  database: string | null;
  applicationName: string | null;
  addr: string | null;
  port: number | null;
  localAddr: string | null;
  localPort: number | null;
  state: ClientState;
  connectedAt: Date;
  backendId: number | null;
  tls: boolean;
  /** With `workers: N`: the worker process that holds the session (ids are per worker). */
  worker?: number;
}

export interface ConsoleBackend extends BackendView {
  /** The client session it serves now, if any. */
  clientId: number | null;
  /** With `workers: N`: the worker process whose pool holds the backend. */
  worker?: number;
  /** Backend target it belongs to (src/placement); absent: `default`. */
  targetName?: string;
  /** Where it is connected when that is not ConsoleContext.target() (another target, a tenant database). */
  where?: ConsoleTarget;
}

/** One SHOW POOLS row: a tenant's share of one pool (see pool-view.ts). */
export interface ConsolePool extends PoolRow {
  database: string;
  user: string;
  poolMode: string;
  /** The backend target of the pool (src/placement); absent: `default`. */
  target?: string;
}

/** What SHOW SERVERS and SHOW DATABASES say about where backends go. */
export interface ConsoleTarget {
  host: string;
  port: number;
  database: string;
  user: string;
}

export interface ConsoleDatabase {
  name: string;
  host: string | null;
  port: number;
  database: string;
  forceUser: string | null;
  poolSize: number;
  serverLifetimeSeconds: number;
  poolMode: string | null;
  maxConnections: number;
  currentConnections: number;
  currentClientConnections: number;
  paused: boolean;
  /** PgBouncer's `disabled`: a pool draining after a reload removed or changed its target. */
  disabled?: boolean;
  maxPerTenant: number;
  /** The backend target (src/placement); null for the console's own row, absent: `default`. */
  target?: string | null;
}

export interface ConsoleTenant {
  id: string;
  /** null: not known now (a registry tenant whose answer is no longer cached). */
  status: string | null;
  schema: string | null;
  clients: number;
  /** Where pgfence knows it from: `config` (tenancy.tenants), `registry` (a cached registry answer) or `session` (a connected client). */
  source: 'config' | 'registry' | 'session';
}

/** SHOW STATS: running totals and the averages over the last stats period, per tenant label. */
export interface ConsoleTenantStats {
  tenant: string;
  database: string;
  totals: StatTotals;
  /** Counts and bytes per second, times in µs per transaction/query/assignment. */
  averages: StatTotals;
  statements: number;
  rejected: number;
}

/** What the SHOW commands read. */
export type ConsoleData = Pick<ConsoleContext, 'target' | 'pools' | 'clients' | 'servers' | 'databases' | 'lists' | 'tenants' | 'stats' | 'config' | 'clustered'>;

export interface ConsoleContext {
  /** With `workers: N`: SHOW CLIENTS and SERVERS add a `worker` column. */
  clustered?: boolean;
  /**
   * With `workers: N`: the data of every worker, merged, for one SHOW (the methods of this
   * context answer for this process alone). Without it, SHOW reads this context.
   */
  gather?(item: ShowItem): Promise<ConsoleData>;
  target(): ConsoleTarget;
  pools(): ConsolePool[];
  clients(): ConsoleSession[];
  servers(): ConsoleBackend[];
  databases(): ConsoleDatabase[];
  lists(): Array<{ list: string; items: number }>;
  tenants(): ConsoleTenant[];
  stats(): ConsoleTenantStats[];
  /** Secrets already masked by the caller; `default` likewise. */
  config(): Array<{ key: string; value: string; default: string; changeable: boolean }>;
  /** Rereads the configuration. A `ConfigError` is shown to the operator (it names keys, never secret values). */
  reload(): Promise<{ applied: string[]; notApplied: string[] }>;
  /** Stops handing out backends to new transactions, on every target; resolves when active work has drained. */
  pause(): Promise<void>;
  resume(): void | Promise<void>;
  /** Closes every backend of every target as it is released (idle ones now); returns how many were open. */
  reconnect(): number | Promise<number>;
  /** Starts pgfence's shutdown (as SIGTERM does) once the answer has been sent. */
  shutdown(): void;
  /** Number of client sessions disconnected. */
  killTenant(id: string): number | Promise<number>;
  /**
   * Told of every exception a command threw (other than a `ConfigError` from `reload`), for the
   * log; the operator sees only that the command failed.
   */
  onError?(command: string, error: unknown): void;
}

const notice = (message: string, detail?: string): Buffer => noticeResponse({ severity: 'NOTICE', sqlstate: '00000', message, detail });

function list(keys: readonly string[]): string {
  return keys.length === 0 ? 'nothing' : keys.join(', ');
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The name of a command in messages and in its CommandComplete tag. */
function commandName(command: ConsoleCommand): string {
  switch (command.kind) {
    case 'show':
      return `SHOW ${command.item.toUpperCase()}`;
    case 'reload':
      return 'RELOAD';
    case 'pause':
      return 'PAUSE';
    case 'resume':
      return 'RESUME';
    case 'reconnect':
      return 'RECONNECT';
    case 'shutdown':
      return 'SHUTDOWN';
    case 'kill-tenant':
      return 'KILL';
    case 'empty':
    case 'invalid':
      return '';
  }
}

async function execute(command: ConsoleCommand, ctx: ConsoleContext): Promise<Buffer[]> {
  switch (command.kind) {
    case 'show': {
      const data = command.item === 'help' || command.item === 'version' || ctx.gather === undefined ? ctx : await ctx.gather(command.item);
      const { columns, rows } = showTable(command.item, data);
      return typedResult(columns, rows, 'SHOW');
    }
    case 'reload': {
      const { applied, notApplied } = await ctx.reload();
      return [
        notice(`pgfence admin: RELOAD applied: ${list(applied)}; not applied (needs a restart): ${list(notApplied)}`),
        commandComplete('RELOAD'),
      ];
    }
    case 'pause':
      await ctx.pause();
      return [commandComplete('PAUSE')];
    case 'resume':
      await ctx.resume();
      return [commandComplete('RESUME')];
    case 'reconnect': {
      const marked = await ctx.reconnect();
      return [notice(`pgfence admin: ${plural(marked, 'server connection', 'server connections')} will close when released`), commandComplete('RECONNECT')];
    }
    case 'shutdown':
      ctx.shutdown();
      return [notice('pgfence admin: shutting down: no new connections, running transactions may finish'), commandComplete('SHUTDOWN')];
    case 'kill-tenant': {
      const killed = await ctx.killTenant(command.tenant);
      return [
        notice(`pgfence admin: disconnected ${plural(killed, 'client session', 'client sessions')} of tenant "${command.tenant}"`),
        commandComplete('KILL'),
      ];
    }
    case 'empty':
      return [EMPTY_QUERY_RESPONSE];
    case 'invalid':
      return [errorResponse(command.error)];
  }
}

/**
 * Runs one console command (the text of a simple Query) and returns the messages that answer it,
 * without ReadyForQuery. Never rejects: a command that fails answers with an ErrorResponse, and the
 * session goes on.
 */
export async function runConsoleCommand(sql: string, ctx: ConsoleContext): Promise<Buffer[]> {
  const command = parseConsoleCommand(sql);
  try {
    return await execute(command, ctx);
  } catch (error) {
    if (command.kind === 'reload' && error instanceof ConfigError) return [errorResponse(consoleErrors.reloadInvalid(error.message))];
    try {
      ctx.onError?.(commandName(command), error);
    } catch {
      // A failing log hook must not turn an ERROR into a broken session.
    }
    return [errorResponse(consoleErrors.commandFailed(commandName(command)))];
  }
}
