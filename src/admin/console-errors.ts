import type { ErrorFields } from '../protocol/build.js';

/**
 * Every error the admin console answers with, by name, each with a fixed SQLSTATE. All are ERROR:
 * a console session goes on after any of them.
 */
const error = (sqlstate: string, message: string, detail?: string): ErrorFields => ({ severity: 'ERROR', sqlstate, message, detail });

/** What the operator typed, as an error message may quote it: one line, no control characters, at most 64 characters. */
export function quoted(text: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return JSON.stringify(flat.length > 64 ? `${flat.slice(0, 63)}…` : flat);
}

export const consoleErrors = {
  unknownCommand: (text: string) => error('42601', `pgfence admin: unknown command ${quoted(text)} (try SHOW HELP)`),
  oneCommandPerQuery: () => error('42601', 'pgfence admin: one command per query (try SHOW HELP)'),
  tenantIdMissing: () => error('42601', 'pgfence admin: KILL TENANT needs a tenant id (try SHOW HELP)'),
  invalidTenantId: (id: string) =>
    error('22023', `pgfence admin: invalid tenant id ${quoted(id)}`,
      'A tenant id is 1 to 63 ASCII letters, digits, "_" or "-", and starts with a letter or "_".'),
  /** A configuration that does not load: its message names the file, line and key, never a secret value. */
  reloadInvalid: (problems: string) =>
    error('F0000', 'pgfence admin: RELOAD failed; the running configuration is unchanged', problems),
  /** Anything else that failed: the cause goes to the log (ConsoleContext.onError), never to the client. */
  commandFailed: (command: string) => error('XX000', `pgfence admin: ${command} failed (see the pgfence log)`),
} as const;
