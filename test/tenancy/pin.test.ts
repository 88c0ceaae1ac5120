import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { expectedSearchPath, pinStatement, schemaForTenant } from '../../src/tenancy/index.js';

const tenancy = (input: Record<string, unknown> = {}) => configSchema.shape.tenancy.parse({ tenants: [], ...input });
const tenantOf = (t: ReturnType<typeof tenancy>, id: string) => ({ id, schema: schemaForTenant(t, id) });

describe('pinStatement', () => {
  it('pins search_path and the tenant GUC in one schema-qualified statement', () => {
    const t = tenancy();
    expect(pinStatement(t, tenantOf(t, 'acme'))).toBe(
      `SELECT pg_catalog.set_config('search_path', E'"tenant_acme", "public"', false), ` +
        `pg_catalog.set_config(E'app.current_tenant_id', E'acme', false)`,
    );
  });

  it('quotes every schema inside the search_path literal', () => {
    const t = tenancy({ sharedSchemas: ['public', 'Shared-Data', '_ext'] });
    expect(pinStatement(t, tenantOf(t, 'a-b'))).toBe(
      `SELECT pg_catalog.set_config('search_path', E'"tenant_a-b", "public", "Shared-Data", "_ext"', false), ` +
        `pg_catalog.set_config(E'app.current_tenant_id', E'a-b', false)`,
    );
    expect(pinStatement(t, tenantOf(t, '_x'))).toContain(`E'"tenant__x", "public", "Shared-Data", "_ext"'`);
  });

  it('pins only the shared schemas in row mode, and the configured GUC', () => {
    const t = tenancy({ mode: 'row', tenantGuc: 'myapp.tenant' });
    expect(pinStatement(t, tenantOf(t, 'acme'))).toBe(
      `SELECT pg_catalog.set_config('search_path', E'"public"', false), pg_catalog.set_config(E'myapp.tenant', E'acme', false)`,
    );
    const bare = tenancy({ mode: 'row', sharedSchemas: [] });
    expect(pinStatement(bare, tenantOf(bare, 'acme'))).toContain(`set_config('search_path', E'', false)`);
  });

  it('pins the schema and the GUC in both mode', () => {
    const t = tenancy({ mode: 'both', schemaTemplate: 'org_{tenant}' });
    expect(pinStatement(t, tenantOf(t, 'acme'))).toContain(`set_config('search_path', E'"org_acme", "public"', false)`);
  });
});

describe('expectedSearchPath', () => {
  it('is the pinned list as set_config keeps it, quotes included', () => {
    const t = tenancy();
    expect(expectedSearchPath(t, tenantOf(t, 'acme'))).toBe('"tenant_acme", "public"');
    expect(expectedSearchPath(t, tenantOf(t, 'a-b'))).toBe('"tenant_a-b", "public"');
    const row = tenancy({ mode: 'row', sharedSchemas: ['public', 'ext'] });
    expect(expectedSearchPath(row, tenantOf(row, 'acme'))).toBe('"public", "ext"');
    const bare = tenancy({ mode: 'row', sharedSchemas: [] });
    expect(expectedSearchPath(bare, tenantOf(bare, 'acme'))).toBe('');
  });
});
