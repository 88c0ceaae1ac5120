/**
 * backend.url: a postgres:// or postgresql:// URL, read with the WHATWG URL parser.
 * Problems are described without ever quoting the URL, which carries the service password.
 */

export interface PostgresUrlParts {
  host: string | undefined;
  port: number | undefined;
  database: string | undefined;
  user: string | undefined;
  password: string | undefined;
}

export type PostgresUrlResult = { ok: true; parts: PostgresUrlParts } | { ok: false; problem: string };

/**
 * libpq's connection parameters, the only query parameter names an error may repeat: anything
 * else after a `?` may be part of a password that was not percent-encoded.
 */
const LIBPQ_PARAMETERS = new Set([
  'application_name', 'channel_binding', 'client_encoding', 'connect_timeout', 'dbname', 'gssencmode',
  'host', 'hostaddr', 'keepalives', 'options', 'passfile', 'password', 'port', 'sslcert', 'sslkey',
  'sslmode', 'sslnegotiation', 'sslpassword', 'sslrootcert', 'target_session_attrs', 'user',
]);

export function parsePostgresUrl(text: string): PostgresUrlResult {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail('not a valid URL (expected postgres://user:password@host:port/database)');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    return fail('expected a postgres:// or postgresql:// URL');
  }
  if (url.search !== '') {
    const known = [...url.searchParams.keys()].filter((k) => LIBPQ_PARAMETERS.has(k));
    const named = known.length > 0 ? ` (${known.join(', ')})` : '';
    return fail(`query parameters${named} are not supported; use the backend.* keys, and percent-encode ? and # in a password`);
  }
  if (url.hash !== '') return fail('unexpected "#"; percent-encode it as %23 in a password');
  const path = url.pathname.replace(/^\//, '');
  if (path.includes('/')) return fail('the path must be a single database name');
  let parts: PostgresUrlParts;
  try {
    parts = {
      // Non-special schemes keep IPv6 brackets in hostname; net.connect wants the bare address.
      host: url.hostname === '' ? undefined : url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? undefined : Number(url.port),
      database: path === '' ? undefined : decodeURIComponent(path),
      user: url.username === '' ? undefined : decodeURIComponent(url.username),
      password: url.password === '' ? undefined : decodeURIComponent(url.password),
    };
  } catch {
    return fail('malformed percent-encoding');
  }
  if (parts.port === 0) return fail('port must be between 1 and 65535');
  return { ok: true, parts };
}

/** The problem with a URL, or null; for the schema's validation. */
export function postgresUrlProblem(text: string): string | null {
  const result = parsePostgresUrl(text);
  return result.ok ? null : result.problem;
}

function fail(problem: string): PostgresUrlResult {
  return { ok: false, problem };
}
