import type { ErrorFields } from '../protocol/build.js';
import { NAME_PATTERN } from '../tenancy/names.js';
import { consoleErrors } from './console-errors.js';

/**
 * The admin console's command language, PgBouncer style: keywords in any case, words separated by
 * any whitespace, at most one trailing semicolon, one command per query. Parsing only: what a
 * command does is in console.ts.
 */

export type ShowItem = 'help' | 'version' | 'pools' | 'clients' | 'servers' | 'tenants' | 'stats' | 'config';

export type ConsoleCommand =
  | { kind: 'show'; item: ShowItem }
  | { kind: 'reload' }
  | { kind: 'pause' }
  | { kind: 'resume' }
  | { kind: 'kill-tenant'; tenant: string }
  /** A query string with no command in it (blank, or only a semicolon): EmptyQueryResponse, as Postgres answers. */
  | { kind: 'empty' }
  | { kind: 'invalid'; error: ErrorFields };

/** Every command with what it does, in the order SHOW HELP lists them. */
export const CONSOLE_COMMANDS: ReadonlyArray<{ command: string; description: string }> = [
  { command: 'SHOW HELP', description: 'this list' },
  { command: 'SHOW VERSION', description: 'the pgfence version' },
  { command: 'SHOW POOLS', description: 'backend pool: size, backends by state, waiting clients, longest wait' },
  { command: 'SHOW CLIENTS', description: 'client sessions: tenant, user, peer, state, backend held' },
  { command: 'SHOW SERVERS', description: 'backend connections: state, tenant pinned, dirty, age, last use' },
  { command: 'SHOW TENANTS', description: 'known tenants: status, schema, connected clients' },
  { command: 'SHOW STATS', description: 'per tenant: statements, rejected statements, clients, backends' },
  { command: 'SHOW CONFIG', description: 'every configuration key, secrets masked, and whether RELOAD can change it' },
  { command: 'RELOAD', description: 'reread the configuration file; reports what was applied and what needs a restart' },
  { command: 'PAUSE', description: 'hand no backend to new transactions; returns once active work has drained' },
  { command: 'RESUME', description: 'undo PAUSE' },
  { command: 'KILL TENANT <id>', description: 'disconnect every client session of a tenant' },
];

const SHOW_ITEMS: ReadonlySet<string> = new Set<ShowItem>(['help', 'version', 'pools', 'clients', 'servers', 'tenants', 'stats', 'config']);

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
