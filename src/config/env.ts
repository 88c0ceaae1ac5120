import { type KeyedMessage, type KeyPath, schemaAt } from './reference.js';

/**
 * `${VAR}` and `${VAR:-default}` in string values (never in keys), after YAML parsing, so an
 * environment value is always plain text and never YAML. As in the shell, the default applies
 * when the variable is unset or empty. There is no nesting and no escape: a `${` that does not
 * start a well-formed reference is an error rather than text.
 *
 * A value that contained a reference and now sits where schema.ts wants a number or a boolean
 * is typed from the text (`port: ${PGFENCE_PORT:-6432}` works); every other value stays a
 * string. Problems name the key and the variable, never a value.
 */
export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, problems: KeyedMessage[], path: KeyPath = []): unknown {
  if (typeof value === 'string') return value.includes('${') ? substituteString(value, env, problems, path) : value;
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, problems, [...path, i]));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, problems, [...path, k])]));
  }
  return value;
}

const REFERENCE_BODY = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s;

function substituteString(text: string, env: NodeJS.ProcessEnv, problems: KeyedMessage[], path: KeyPath): unknown {
  let out = '';
  let at = 0;
  for (let start = text.indexOf('${'); start !== -1; start = text.indexOf('${', at)) {
    out += text.slice(at, start);
    const end = text.indexOf('}', start + 2);
    const match = end === -1 ? null : REFERENCE_BODY.exec(text.slice(start + 2, end));
    if (match === null || match[2]?.includes('${') === true) {
      problems.push({ path, message: 'malformed environment reference: write ${VAR} or ${VAR:-default} (no nesting)' });
      return text;
    }
    const [, name = '', fallback] = match;
    const found = env[name];
    if (found !== undefined && (found !== '' || fallback === undefined)) out += found;
    else if (fallback !== undefined) out += fallback;
    else problems.push({ path, message: `environment variable ${name} is not set (use \${${name}:-default} to give a default)` });
    at = end + 1;
  }
  out += text.slice(at);
  return typed(out, path);
}

function typed(text: string, path: KeyPath): unknown {
  const node = schemaAt(path);
  // A union (workers: a number or "auto") takes a number when one of its members wants one.
  const type = node?.type ?? node?.anyOf?.find((member) => member.type === 'integer')?.type;
  const trimmed = text.trim();
  if (type === 'integer' && /^[+-]?\d+$/.test(trimmed)) return Number(trimmed);
  if (type === 'number' && trimmed !== '' && Number.isFinite(Number(trimmed))) return Number(trimmed);
  if (type === 'boolean' && /^(true|false)$/i.test(trimmed)) return trimmed.toLowerCase() === 'true';
  return text;
}
