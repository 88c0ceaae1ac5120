import { z } from 'zod';
import { configSchema } from './schema.js';

/**
 * The configuration schema seen as JSON Schema (zod's own rendering of schema.ts), walked by
 * key path: what a key expects, whether it is secret, its default and description. It feeds
 * error messages, env-value typing and the printed reference, so all three follow schema.ts.
 */

export type KeyPath = readonly PropertyKey[];

/** A problem with the value at a key path, in words that never quote a secret. */
export interface KeyedMessage {
  path: KeyPath;
  message: string;
}

export interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  required?: string[];
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
  enum?: unknown[];
  /** A union (`workers`: a number or "auto"). */
  anyOf?: SchemaNode[];
  const?: unknown;
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  pattern?: string;
  format?: string;
  /** From `.meta({ secret: true })` in schema.ts. */
  secret?: boolean;
}

let cached: SchemaNode | undefined;

export function configJsonSchema(): SchemaNode {
  cached ??= z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as SchemaNode;
  return cached;
}

/** `tenancy.tenants[2].id`; `(root)` for the document itself. */
export function formatKeyPath(path: KeyPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

/** The nodes from the root down to `path`, as far as the schema knows the path. */
function nodesAlong(path: KeyPath): SchemaNode[] {
  const nodes: SchemaNode[] = [];
  let node: SchemaNode | undefined = configJsonSchema();
  for (const part of path) {
    nodes.push(node);
    // A mapping by name (`backends`, `policy.tenants`): every key has the schema of its values.
    const values: SchemaNode | undefined = typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined;
    node = typeof part === 'number' ? node.items : (node.properties?.[String(part)] ?? values);
    if (node === undefined) return nodes;
  }
  nodes.push(node);
  return nodes;
}

export function schemaAt(path: KeyPath): SchemaNode | undefined {
  const nodes = nodesAlong(path);
  return nodes.length === path.length + 1 ? nodes[nodes.length - 1] : undefined;
}

/** True when the key or one that encloses it is marked secret (e.g. anything under jwt.jwk). */
export function isSecretPath(path: KeyPath): boolean {
  return nodesAlong(path).some((n) => n.secret === true);
}

/** The keys a mapping at `path` accepts, for "did you mean" hints. */
export function knownKeys(path: KeyPath): string[] {
  return Object.keys(schemaAt(path)?.properties ?? {});
}

const UNBOUNDED = Number.MAX_SAFE_INTEGER;

function range(node: SchemaNode): { low?: string; high?: string } {
  const low =
    node.exclusiveMinimum !== undefined ? `> ${node.exclusiveMinimum}` : node.minimum !== undefined ? `>= ${node.minimum}` : undefined;
  const high =
    node.exclusiveMaximum !== undefined
      ? `< ${node.exclusiveMaximum}`
      : node.maximum !== undefined && Math.abs(node.maximum) < UNBOUNDED
        ? `<= ${node.maximum}`
        : undefined;
  return { ...(low !== undefined && { low }), ...(high !== undefined && { high }) };
}

/** What a key expects, as a phrase: `an integer between 1 and 10000`, `one of "a", "b"`. */
export function expectation(node: SchemaNode | undefined): string {
  if (node === undefined) return 'nothing (unknown key)';
  if (node.enum !== undefined) return `one of ${node.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  if (node.const !== undefined) return JSON.stringify(node.const);
  if (node.anyOf !== undefined) return node.anyOf.map(expectation).join(' or ');
  switch (node.type) {
    case 'integer':
    case 'number': {
      const noun = node.type === 'integer' ? 'an integer' : 'a number';
      if (node.minimum !== undefined && node.maximum !== undefined && node.maximum < UNBOUNDED) {
        return `${noun} between ${node.minimum} and ${node.maximum}`;
      }
      const { low, high } = range(node);
      return [noun, low, high].filter((s) => s !== undefined).join(' ');
    }
    case 'boolean':
      return 'true or false';
    case 'string':
      return 'a string';
    case 'array':
      return 'a list';
    case 'object':
      return 'a mapping';
    default:
      return 'a value';
  }
}

/** The type column of the reference: `integer 1..10000`, `"session" | "transaction"`. */
function typeText(node: SchemaNode): string {
  if (node.enum !== undefined) return node.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (node.const !== undefined) return JSON.stringify(node.const);
  if (node.anyOf !== undefined) return node.anyOf.map(typeText).join(' | ');
  switch (node.type) {
    case 'integer':
    case 'number': {
      if (node.minimum !== undefined && node.maximum !== undefined && node.maximum < UNBOUNDED) {
        return `${node.type} ${node.minimum}..${node.maximum}`;
      }
      const { low, high } = range(node);
      return [node.type, low, high].filter((s) => s !== undefined).join(' ');
    }
    case 'string': {
      const length = node.minLength !== undefined && node.minLength > 1 ? `, at least ${node.minLength} characters` : '';
      const pattern = node.pattern !== undefined && node.format !== 'includes' ? ` matching ${node.pattern}` : '';
      const url = node.format === 'uri' ? ' (URL)' : '';
      return `string${url}${pattern}${length}`;
    }
    case 'array':
      return node.items === undefined ? 'list' : node.items.type === 'object' ? 'list of mappings' : `list of ${typeText(node.items)}`;
    case 'object':
      return 'mapping';
    default:
      return node.type ?? 'any';
  }
}

/**
 * The configuration reference, rendered from schema.ts (used by `pgfence help config` and the
 * docs): one entry per key with its type, whether it is required, its default and description.
 */
export function describeConfig(): string {
  const lines = [
    'pgfence configuration reference (YAML)',
    'String values may read the environment as ${VAR} or ${VAR:-default}. Unknown keys are errors.',
    'Keys marked (secret) are never repeated in error messages; keep them in the environment.',
  ];
  const walk = (node: SchemaNode, prefix: string, indent: string): void => {
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const keyPath = prefix === '' ? key : `${prefix}.${key}`;
      const required = node.required?.includes(key) === true;
      const item = child.type === 'array' && child.items?.type === 'object' ? child.items : undefined;
      if (child.type === 'object' && child.properties !== undefined) {
        lines.push('', `${indent}${keyPath}${required ? ' (required)' : ''}`);
        if (child.description !== undefined) lines.push(`${indent}    ${child.description}`);
        walk(child, keyPath, `${indent}  `);
        continue;
      }
      const facts = [typeText(child)];
      if (child.secret === true) facts.push('secret');
      if (required) facts.push('required');
      else if (child.default !== undefined) facts.push(`default ${JSON.stringify(child.default)}`);
      else facts.push('optional');
      lines.push(`${indent}${keyPath}: ${facts.join(', ')}`);
      if (child.description !== undefined) lines.push(`${indent}    ${child.description}`);
      if (item !== undefined) walk(item, `${keyPath}[]`, `${indent}  `);
    }
  };
  walk(configJsonSchema(), '', '');
  return lines.join('\n');
}
