import { ConfigError } from '../config/errors.js';
import { errorResponse, noticeResponse } from '../protocol/build.js';
import { type ConsoleCommand, parseConsoleCommand } from './console-commands.js';
import { consoleErrors } from './console-errors.js';
import { showTable } from './console-show.js';
import { commandComplete, EMPTY_QUERY_RESPONSE, textResult } from './rows.js';

/**
 * The admin console, PgBouncer style: an operator connects with psql to the virtual database
 * `pgfence` with an admin token, and every simple Query is one console command. This module is
 * pure: it reads and acts through a `ConsoleContext` and returns the messages to send back, all
 * but the ReadyForQuery that the session appends.
 *
 *   SHOW HELP | VERSION | POOLS | CLIENTS | SERVERS | TENANTS | STATS | CONFIG
 *   RELOAD | PAUSE | RESUME | KILL TENANT <id>
 */

export interface ConsoleSession {
  id: number;
  tenant: string;
  user: string | undefined;
  peer: string;
  state: 'startup' | 'idle' | 'active' | 'waiting';
  connectedAt: Date;
  backendId: number | null;
  admin: boolean;
}

export interface ConsoleBackend {
  id: number;
  state: 'idle' | 'active' | 'resetting';
  tenant: string | null;
  dirty: boolean;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface ConsoleTenantStats {
  tenant: string;
  statements: number;
  rejected: number;
  clients: number;
  backends: number;
}

export interface ConsoleContext {
  pools(): Array<{ database: string; mode: string; size: number; idle: number; active: number; resetting: number; connecting: number; waiting: number; maxWaitMs: number }>;
  clients(): ConsoleSession[];
  servers(): ConsoleBackend[];
  tenants(): Array<{ id: string; status: string; schema: string | null; clients: number }>;
  stats(): ConsoleTenantStats[];
  /** Secrets already masked by the caller. */
  config(): Array<{ key: string; value: string; changeable: boolean }>;
  /** Rereads the configuration. A `ConfigError` is shown to the operator (it names keys, never secret values). */
  reload(): Promise<{ applied: string[]; notApplied: string[] }>;
  /** Stops handing out backends to new transactions; resolves when active work has drained. */
  pause(): Promise<void>;
  resume(): void;
  /** Number of client sessions disconnected. */
  killTenant(id: string): number;
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
      const { columns, rows } = showTable(command.item, ctx);
      return textResult(columns, rows, 'SHOW');
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
      ctx.resume();
      return [commandComplete('RESUME')];
    case 'kill-tenant': {
      const killed = ctx.killTenant(command.tenant);
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
