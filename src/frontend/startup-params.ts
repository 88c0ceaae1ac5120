import type { ErrorFields } from '../protocol/build.js';
import { clientErrors } from './errors.js';

/**
 * Session settings a client may ask for in its StartupMessage. Backends are shared, so these are
 * applied with set_config when a backend is pinned for the client, never at backend startup.
 * Canonical spelling by lower-case name (GUC names are case-insensitive).
 */
const FORWARDED = new Map(
  [
    'application_name',
    'client_encoding',
    'DateStyle',
    'TimeZone',
    'IntervalStyle',
    'extra_float_digits',
    'statement_timeout',
    'lock_timeout',
    'idle_in_transaction_session_timeout',
    'standard_conforming_strings',
    'bytea_output',
  ].map((name) => [name.toLowerCase(), name]),
);

/**
 * Settings that change how the server reads SQL text. The guard parses UTF-8 with standard
 * conforming strings, so any other value would let the server see a statement the guard never saw.
 * Each is read the way Postgres reads it; the value pgfence applies is the canonical one.
 */
const PARSER_SAFE = new Map<string, { accepts(value: string): boolean; canonical: string }>([
  // Postgres ignores case and every character that is not a letter or digit in an encoding name
  // (asyncpg sends 'utf-8', quotes included).
  ['client_encoding', { accepts: (v) => ['utf8', 'unicode'].includes(v.toLowerCase().replace(/[^a-z0-9]/g, '')), canonical: 'UTF8' }],
  ['standard_conforming_strings', { accepts: isTrue, canonical: 'on' }],
]);

/** Postgres's reading of a boolean that is true: on, 1, or any prefix of true or yes. */
function isTrue(value: string): boolean {
  const v = value.trim().toLowerCase();
  return v === 'on' || v === '1' || (v.length > 0 && ('true'.startsWith(v) || 'yes'.startsWith(v)));
}

/** Parameters that would move the pin: refused outright. */
const PIN_PARAMS = new Set(['search_path', 'role', 'session_authorization']);

/** Parameters that say who and where, not how: read by pgfence, not forwarded. */
const IDENTITY_PARAMS = new Set(['user', 'database', 'fallback_application_name']);

export class StartupParamError extends Error {
  constructor(readonly fields: ErrorFields) {
    super(fields.message);
  }
}

/**
 * The settings to apply for a client, from its startup parameters (including `-c name=value`
 * inside `options`). Throws StartupParamError for anything pgfence will not honour.
 */
export function sessionSettings(params: ReadonlyMap<string, string>, tenantGuc: string): Map<string, string> {
  const settings = new Map<string, string>();
  const put = (rawName: string, value: string): void => {
    const name = rawName.toLowerCase();
    if (PIN_PARAMS.has(name) || name === tenantGuc.toLowerCase()) {
      throw new StartupParamError(clientErrors.pinStartupParameter(rawName));
    }
    const canonical = FORWARDED.get(name);
    if (canonical === undefined) throw new StartupParamError(clientErrors.unsupportedStartupParameter(rawName));
    const safe = PARSER_SAFE.get(name);
    if (safe !== undefined && !safe.accepts(value)) throw new StartupParamError(clientErrors.parserUnsafeSetting(canonical, value));
    settings.set(canonical, safe?.canonical ?? value);
  };
  for (const [name, value] of params) {
    if (IDENTITY_PARAMS.has(name)) continue;
    if (name === 'replication') {
      if (!['false', 'off', 'no', '0'].includes(value.toLowerCase())) throw new StartupParamError(clientErrors.replicationRefused());
      continue;
    }
    if (name === 'options') {
      for (const [optName, optValue] of parseOptions(value)) put(optName, optValue);
      continue;
    }
    put(name, value);
  }
  // As on Postgres: the fallback when the client names none, else empty (never the pool's own name).
  if (!settings.has('application_name')) settings.set('application_name', params.get('fallback_application_name') ?? '');
  return settings;
}

/**
 * Splits the `options` startup parameter the way the backend does: whitespace separates
 * arguments, a backslash escapes the next character; accepts `-c name=value`, `-cname=value`
 * and `--name=value`.
 */
export function parseOptions(options: string): Array<[string, string]> {
  const args: string[] = [];
  let current = '';
  let escaped = false;
  let inArg = false;
  for (const ch of options) {
    if (escaped) {
      current += ch;
      escaped = false;
      inArg = true;
    } else if (ch === '\\') {
      escaped = true;
      inArg = true;
    } else if (/\s/.test(ch)) {
      if (inArg) args.push(current);
      current = '';
      inArg = false;
    } else {
      current += ch;
      inArg = true;
    }
  }
  if (inArg) args.push(current);

  const out: Array<[string, string]> = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    let setting: string | undefined;
    if (arg === '-c') setting = args[++i];
    else if (arg.startsWith('-c')) setting = arg.slice(2);
    else if (arg.startsWith('--')) setting = arg.slice(2);
    const eq = setting?.indexOf('=') ?? -1;
    if (setting === undefined || eq <= 0) {
      throw new StartupParamError(clientErrors.unsupportedStartupParameter(`options (${arg})`));
    }
    out.push([setting.slice(0, eq).replaceAll('-', '_'), setting.slice(eq + 1)]);
  }
  return out;
}

const TIME_UNITS_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };

/** A time setting as Postgres reads it (`250`, `1.5s`, `2 min`; milliseconds without a unit), or null. */
export function timeSettingMs(value: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$/.exec(value);
  if (match === null) return null;
  return Number(match[1]) * (TIME_UNITS_MS[match[2] ?? 'ms'] as number);
}

/**
 * Holds a client's statement_timeout to its tenant's limit: the client's own value where it is
 * shorter (0, Postgres's "no timeout", is not; nor is anything under 1 ms, which Postgres rounds
 * to a whole number of milliseconds: `0.4` or `400us` would be 0), the limit otherwise.
 */
export function capStatementTimeout(settings: Map<string, string>, limitMs: number): void {
  if (limitMs <= 0) return;
  const asked = settings.get('statement_timeout');
  const askedMs = asked === undefined ? null : timeSettingMs(asked);
  if (askedMs !== null && askedMs >= 1 && askedMs <= limitMs) return;
  settings.set('statement_timeout', String(limitMs));
}
