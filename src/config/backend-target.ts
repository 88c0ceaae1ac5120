import { ConfigError } from './errors.js';
import { parsePostgresUrl, type PostgresUrlParts } from './postgres-url.js';
import type { BackendConfig } from './schema.js';

/** Where pgfence's backends (and the tenant registry) connect, with every default applied. */
export interface ResolvedBackendTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string | undefined;
  sslmode: BackendConfig['sslmode'];
  sslRootCert: string | undefined;
}

/**
 * The backend target: explicit keys first, then the parts of backend.url, then the defaults
 * 127.0.0.1:5432, database postgres, user postgres. A URL the schema would have refused throws
 * ConfigError (without quoting the URL, which carries the password).
 */
export function resolveBackendTarget(cfg: BackendConfig): ResolvedBackendTarget {
  let fromUrl: Partial<PostgresUrlParts> = {};
  if (cfg.url !== undefined) {
    const parsed = parsePostgresUrl(cfg.url);
    if (!parsed.ok) throw new ConfigError('backend settings', [{ key: 'backend.url', message: parsed.problem }]);
    fromUrl = parsed.parts;
  }
  return {
    host: cfg.host ?? fromUrl.host ?? '127.0.0.1',
    port: cfg.port ?? fromUrl.port ?? 5432,
    database: cfg.database ?? fromUrl.database ?? 'postgres',
    user: cfg.user ?? fromUrl.user ?? 'postgres',
    password: cfg.password ?? fromUrl.password,
    sslmode: cfg.sslmode,
    sslRootCert: cfg.sslRootCert,
  };
}
