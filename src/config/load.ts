import { readFile } from 'node:fs/promises';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { type Config, configSchema } from './schema.js';

/** Every problem with a configuration, one per line, each naming the key. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid configuration in ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const ENV_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces ${VAR} and ${VAR:-default} inside string values (never keys). */
function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, keyPath: string, problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REFERENCE, (_match, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined) return found;
      if (fallback !== undefined) return fallback;
      problems.push(`${keyPath || '(root)'}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, `${keyPath}[${i}]`, problems));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, keyPath ? `${keyPath}.${k}` : k, problems)]),
    );
  }
  return value;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replaceAll('.[', '[') || '(root)';
  // Never echo the received value: it may be a secret.
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => `${key === '(root)' ? k : `${key}.${k}`}: unknown key`).join('\n');
    case 'invalid_type':
      return `${key}: expected ${issue.expected}`;
    default:
      return `${key}: ${issue.message}`;
  }
}

export function parseConfig(text: string, source: string, env: NodeJS.ProcessEnv = process.env): Config {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    if (error instanceof YAMLParseError) {
      const line = error.linePos?.[0]?.line;
      throw new ConfigError(source, [`YAML syntax error${line !== undefined ? ` at line ${line}` : ''}: ${error.message.split('\n')[0]}`]);
    }
    throw error;
  }
  const problems: string[] = [];
  const substituted = substituteEnv(raw ?? {}, env, '', problems);
  if (problems.length > 0) throw new ConfigError(source, problems);
  const result = configSchema.safeParse(substituted);
  if (!result.success) throw new ConfigError(source, result.error.issues.flatMap((i) => describeIssue(i).split('\n')));
  return result.data;
}

export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, [`cannot read the file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`]);
  }
  return parseConfig(text, path, env);
}

export interface ResolvedBackendTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string | undefined;
}

/** The backend to connect to: the URL's parts, overridden by explicit keys, then defaults. */
export function resolveBackendTarget(cfg: Config['backend']): ResolvedBackendTarget {
  let fromUrl: Partial<ResolvedBackendTarget> = {};
  if (cfg.url !== undefined) {
    const url = new URL(cfg.url);
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      throw new ConfigError('backend.url', [`backend.url: expected a postgres:// URL`]);
    }
    fromUrl = {
      host: url.hostname || undefined,
      port: url.port ? Number(url.port) : undefined,
      database: url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : undefined,
      user: url.username ? decodeURIComponent(url.username) : undefined,
      password: url.password ? decodeURIComponent(url.password) : undefined,
    };
  }
  return {
    host: cfg.host ?? fromUrl.host ?? '127.0.0.1',
    port: cfg.port ?? fromUrl.port ?? 5432,
    database: cfg.database ?? fromUrl.database ?? 'postgres',
    user: cfg.user ?? fromUrl.user ?? 'postgres',
    password: cfg.password ?? fromUrl.password,
  };
}

/** The configuration reference, rendered from the schema's descriptions. */
export function describeConfig(): string {
  const lines: string[] = ['pgfence configuration reference (YAML; ${VAR} and ${VAR:-default} read the environment)', ''];
  const walk = (schema: z.ZodType, prefix: string): void => {
    const def = unwrap(schema);
    const shape = (def as unknown as { shape?: Record<string, z.ZodType> }).shape;
    if (shape !== undefined && typeof shape === 'object') {
      for (const [key, child] of Object.entries(shape)) {
        const keyPath = prefix ? `${prefix}.${key}` : key;
        const inner = unwrap(child);
        if ((inner as unknown as { shape?: unknown }).shape !== undefined) {
          lines.push(`${keyPath}:`);
          walk(child, keyPath);
        } else {
          const dflt = defaultOf(child);
          const description = child.description ?? inner.description ?? '';
          lines.push(`  ${keyPath}${dflt !== undefined ? ` (default ${JSON.stringify(dflt)})` : ''}${description ? `: ${description}` : ''}`);
        }
      }
    }
  };
  walk(configSchema, '');
  return lines.join('\n');
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema as unknown as { def?: { innerType?: unknown; in?: unknown; schema?: unknown } };
  for (let i = 0; i < 10 && current.def !== undefined; i++) {
    const next = current.def.innerType ?? current.def.in ?? current.def.schema;
    if (next === undefined) break;
    current = next as typeof current;
  }
  return current as unknown as z.ZodType;
}

function defaultOf(schema: z.ZodType): unknown {
  const def = (schema as unknown as { def?: { type?: string; defaultValue?: unknown } }).def;
  if (def?.type === 'default') {
    const value = def.defaultValue;
    return typeof value === 'function' ? undefined : value;
  }
  return undefined;
}
