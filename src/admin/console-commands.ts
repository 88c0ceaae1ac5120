import type { ErrorFields } from '../protocol/build.js';
import { NAME_PATTERN } from '../tenancy/names.js';
import { consoleErrors } from './console-errors.js';

/**
 * The admin console's command language, PgBouncer style: keywords in any case, words separated by
 * any whitespace, at most one trailing semicolon, one command per query. Parsing only: what a
 * command does is in console.ts.
 */

export type ShowItem = 'help' | 'version' | 'pools' | 'clients' | 'servers' | 'databases' | 'lists' | 'tenants' | 'stats' | 'config';

export type ConsoleCommand =
  | { kind: 'show'; item: ShowItem }
  | { kind: 'reload' }
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'reconnect' }
  | { kind: 'shutdown' }
  | { kind: 'kill-tenant'; tenant: string }
  /** A query string with no command in it (blank, or only a semicolon): EmptyQueryResponse, as Postgres answers. */
  | { kind: 'empty' }
  | { kind: 'invalid'; error: ErrorFields };

/** Every command with what it does, in the order SHOW HELP lists them. */
export const CONSOLE_COMMANDS: ReadonlyArray<{ command: string; description: string }> = [
  { command: 'SHOW HELP', description: 'this list' },
  { command: 'SHOW VERSION', description: 'the pgfence version' },
  { command: 'SHOW POOLS', description: 'per pool and tenant: clients active and waiting, backends by state, longest wait (PgBouncer columns, then tenant, target)' },
  { command: 'SHOW CLIENTS', description: 'client sessions: user, address, state, backend held (PgBouncer columns, then tenant)' },
  { command: 'SHOW SERVERS', description: 'backend connections: state, times, server pid, client served (PgBouncer columns, then tenant, dirty, target)' },
  { command: 'SHOW DATABASES', description: 'one row per backend target and tenant database in use: host, pool size, mode, connections, paused (PgBouncer columns, then target)' },
  { command: 'SHOW LISTS', description: 'counts of databases, pools, clients, servers, tenants' },
  { command: 'SHOW TENANTS', description: 'known tenants (configured, cached from the registry, connected): status, schema, clients' },
  { command: 'SHOW STATS', description: 'per tenant: transactions, queries, bytes, times, averages (PgBouncer columns, then tenant)' },
  { command: 'SHOW CONFIG', description: 'every configuration key, its value (secrets masked), default, and whether RELOAD can change it' },
  { command: 'RELOAD', description: 'reread the configuration file; reports what was applied and what needs a restart' },
  { command: 'PAUSE', description: 'hand no backend of any target to new transactions; returns once active work has drained' },
  { command: 'RESUME', description: 'undo PAUSE' },
  { command: 'RECONNECT', description: 'close every backend of every target when it is released (idle ones now); new ones open as needed' },
  { command: 'SHUTDOWN', description: 'stop as SIGTERM does: no new connections, running transactions finish' },
  { command: 'KILL TENANT <id>', description: 'disconnect every client session of a tenant' },
];

const SHOW_ITEMS: ReadonlySet<string> = new Set<ShowItem>(['help', 'version', 'pools', 'clients', 'servers', 'databases', 'lists', 'tenants', 'stats', 'config']);

export function parseConsoleCommand(sql: string): ConsoleCommand {
  const text = sql.trim().replace(/;$/, '').trim();
  if (text === '') return { kind: 'empty' };
  if (text.includes(';')) return { kind: 'invalid', error: consoleErrors.oneCommandPerQuery() };
  const words = text.split(/\s+/);
  const keywords = words.map((w) => w.toUpperCase());
  const [first, second] = keywords;
  if (words.length === 1) {
    if (first === 'RELOAD') return { kind: 'reload' };
    if (first === 'PAUSE') return { kind: 'pause' };
    if (first === 'RESUME') return { kind: 'resume' };
    if (first === 'RECONNECT') return { kind: 'reconnect' };
    if (first === 'SHUTDOWN') return { kind: 'shutdown' };
  }
  if (words.length === 2 && first === 'SHOW') {
    const item = (second as string).toLowerCase();
    if (SHOW_ITEMS.has(item)) return { kind: 'show', item: item as ShowItem };
  }
  if (first === 'KILL' && second === 'TENANT') {
    // The id keeps its case: tenant ids are case-sensitive.
    const id = words.slice(2).join(' ');
    if (id === '') return { kind: 'invalid', error: consoleErrors.tenantIdMissing() };
    if (!NAME_PATTERN.test(id)) return { kind: 'invalid', error: consoleErrors.invalidTenantId(id) };
    return { kind: 'kill-tenant', tenant: id };
  }
  return { kind: 'invalid', error: consoleErrors.unknownCommand(text) };
}
