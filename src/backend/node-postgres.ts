import type tls from 'node:tls';
import type { BackendTarget } from './connection.js';
import { backendTlsOptions } from './tls-options.js';

/**
 * How node-postgres reaches the backend target as its configured user, for pgfence's own side
 * connections (the tenant registry, `pgfence roles --apply`). node-postgres has no plaintext
 * fallback, so `prefer` connects in plaintext here.
 */
export function nodePostgresTarget(target: BackendTarget): { host: string; port: number; database: string; user: string; password: string | undefined; ssl: false | tls.ConnectionOptions } {
  return {
    host: target.host,
    port: target.port,
    database: target.database,
    user: target.user,
    password: target.password,
    ssl: target.sslmode === 'prefer' ? false : (backendTlsOptions(target) ?? false),
  };
}
