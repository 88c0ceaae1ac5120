import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfig } from '../../src/config/load.js';
import { configJsonSchema, type SchemaNode } from '../../src/config/reference.js';

const EXAMPLE = fileURLToPath(new URL('../../config/pgfence.example.yaml', import.meta.url));
const ENV = { PGFENCE_JWT_SECRET: 's'.repeat(48), PGFENCE_BACKEND_PASSWORD: 'backend-pass' };

/** Every key of the schema with its node, as `section.key` (list items as `section.key[].field`). */
function leaves(node: SchemaNode, prefix = ''): Array<[string, SchemaNode]> {
  return Object.entries(node.properties ?? {}).flatMap(([key, child]): Array<[string, SchemaNode]> => {
    const keyPath = prefix === '' ? key : `${prefix}.${key}`;
    if (child.type === 'object' && child.properties !== undefined) return leaves(child, keyPath);
    if (child.type === 'array' && child.items?.type === 'object') return [[keyPath, child], ...leaves(child.items, `${keyPath}[]`)];
    return [[keyPath, child]];
  });
}

function valueAt(root: unknown, keyPath: string): unknown {
  return keyPath.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], root);
}

describe('config/pgfence.example.yaml', () => {
  it('loads, given the environment variables it names', async () => {
    const config = await loadConfigFile(EXAMPLE, ENV);
    expect(config.jwt.secret).toBe(ENV.PGFENCE_JWT_SECRET);
    expect(config.backend.password).toBe('backend-pass');
    expect(config.tenancy.tenants).toEqual([
      { id: 'acme', status: 'active', statementTimeoutMs: 30_000 },
      { id: 'globex', status: 'active' },
      { id: 'initech', status: 'suspended' },
    ]);
  });

  it('refuses to load without them, naming them', async () => {
    await expect(loadConfigFile(EXAMPLE, {})).rejects.toThrow(/jwt\.secret: environment variable PGFENCE_JWT_SECRET is not set/);
  });

  it('sets every key that has a default to that default', async () => {
    const config = await loadConfigFile(EXAMPLE, ENV);
    // Keys inside a list item, or inside the commented-out registry and control alternatives, are checked below.
    const withDefaults = leaves(configJsonSchema()).filter(
      ([key, node]) => node.default !== undefined && !key.includes('[]') && !key.startsWith('tenancy.registry.') && !key.startsWith('tenancy.control.'),
    );
    expect(withDefaults.length).toBeGreaterThan(25);
    for (const [key, node] of withDefaults) expect([key, valueAt(config, key)]).toEqual([key, node.default]);
  });

  it('offers a registry alternative that loads once uncommented (in place of the tenant list)', async () => {
    const lines = (await readFile(EXAMPLE, 'utf8')).split('\n');
    const out: string[] = [];
    let state: 'before' | 'tenants' | 'registry' | 'after' = 'before';
    for (const line of lines) {
      if (state === 'before' && line === '  tenants:') state = 'tenants';
      else if (state === 'tenants' && !line.startsWith('    ')) state = 'after';
      if (line === '  # registry:') state = 'registry';
      else if (state === 'registry' && !line.startsWith('  #   ')) state = 'after';
      if (state === 'tenants') continue;
      out.push(state === 'registry' ? line.replace(/^ {2}# /, '  ') : line);
    }
    const config = parseConfig(out.join('\n'), 'variant.yaml', ENV);
    expect(config.tenancy.tenants).toBeUndefined();
    expect(config.tenancy.registry).toEqual({ query: 'SELECT status FROM control.tenants WHERE id = $1', cacheTtlMs: 30_000 });
  });

  it('mentions every key of the schema, set or commented out', async () => {
    const text = await readFile(EXAMPLE, 'utf8');
    const missing = leaves(configJsonSchema())
      .map(([key]) => key.split(/\.|\[\]\./).at(-1) ?? key)
      .filter((name) => !new RegExp(`^\\s*(#\\s*)?(- )?${name}:`, 'm').test(text));
    expect(missing).toEqual([]);
  });
});
