import type { z } from 'zod';
import { expectation, isSecretPath, type KeyedMessage, type KeyPath, knownKeys, schemaAt } from './reference.js';

/**
 * Turns zod's issues into messages that name the key and say what it expects. A received value
 * is quoted only for keys that are not secret, and never a string the user may not recognise
 * as their own: strings are truncated.
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[], input: unknown): KeyedMessage[] {
  return issues.flatMap((issue) => describeIssue(issue, input));
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): KeyedMessage[] {
  const path = issue.path;
  const received = valueAt(input, path);
  const secret = isSecretPath(path);
  const got = (): string => (secret ? `got ${kindOf(received.value)}` : `got ${render(received.value)}`);
  const one = (message: string): KeyedMessage[] => [{ path, message }];
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({ path: [...path, key], message: `unknown key${suggestion(key, knownKeys(path))}` }));
    case 'invalid_type':
      if (!received.found || received.value === undefined) return one('required');
      if (issue.expected === 'string' && ['number', 'boolean'].includes(typeof received.value)) {
        return one(`expected a string, got ${kindOf(received.value)} (quote the value in YAML)`);
      }
      return one(`expected ${expectation(schemaAt(path))}, ${got()}`);
    case 'invalid_value':
    case 'invalid_union':
      return one(`expected ${expectation(schemaAt(path))}, ${got()}`);
    case 'too_small':
    case 'too_big': {
      const bound = Number(issue.code === 'too_small' ? issue.minimum : issue.maximum);
      const least = issue.code === 'too_small';
      switch (issue.origin) {
        case 'string':
          if (least && bound === 1) return one('must not be empty');
          return one(`must be ${least ? 'at least' : 'at most'} ${bound} characters`);
        case 'array':
          return one(`must list ${least ? 'at least' : 'at most'} ${bound} ${bound === 1 ? 'item' : 'items'}`);
        default:
          return one(`expected ${expectation(schemaAt(path))}, ${got()}`);
      }
    }
    case 'invalid_format': {
      if (issue.format === 'url') return one('expected a URL');
      return one(secret ? issue.message : `${issue.message}, ${got()}`);
    }
    default:
      // custom (schema.ts's refinements, written without values) and the rare rest.
      return one(issue.message);
  }
}

function valueAt(root: unknown, path: KeyPath): { found: boolean; value: unknown } {
  let value = root;
  for (const part of path) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, part)) return { found: false, value: undefined };
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return { found: true, value };
}

const MAX_SHOWN = 40;

function render(value: unknown): string {
  if (typeof value === 'string') {
    return JSON.stringify(value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}...` : value);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return kindOf(value);
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      return Number.isInteger(value) ? 'an integer' : 'a number';
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}

/** ` (did you mean "port"?)` when one known key is within two edits of a typo. */
function suggestion(key: string, known: readonly string[]): string {
  const close = known.filter((k) => editDistance(key.toLowerCase(), k.toLowerCase()) <= 2);
  return close.length === 1 ? ` (did you mean "${close[0]}"?)` : '';
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
