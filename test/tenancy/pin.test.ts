import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { isTenantRoleError, pinSql } from '../../src/frontend/pin.js';
import { expectedSearchPath, pinStatement, schemaForTenant, TenantRefused } from '../../src/tenancy/index.js';

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

describe('pinStatement with tenancy.roleTemplate', () => {
  it('switches to the tenant role last, by name as a plain string', () => {
    const t = tenancy({ roleTemplate: 'pgfence_{tenant}' });
    expect(pinStatement(t, tenantOf(t, 'Acme'))).toBe(
      `SELECT pg_catalog.set_config('search_path', E'"tenant_Acme", "public"', false), ` +
        `pg_catalog.set_config(E'app.current_tenant_id', E'Acme', false), ` +
        `pg_catalog.set_config('role', E'pgfence_Acme', false)`,
    );
  });

  it('refuses a tenant whose role name would be invalid', () => {
    const t = tenancy({ roleTemplate: 'pgfence_{tenant}' });
    expect(() => pinStatement(t, { id: 'x'.repeat(60), schema: null })).toThrow(TenantRefused);
  });
});

describe('pinSql', () => {
  it('checks that the schema and the role exist before the settings and the pin, in one round trip', () => {
    const t = tenancy({ roleTemplate: 'pgfence_{tenant}' });
    const sql = pinSql(t, tenantOf(t, 'acme'), new Map([['application_name', 'app']]));
    expect(sql).toBe(
      `SELECT E'"tenant_acme"'::pg_catalog.regnamespace, E'"pgfence_acme"'::pg_catalog.regrole; ` +
        `SELECT pg_catalog.set_config(E'application_name', E'app', false); ${pinStatement(t, tenantOf(t, 'acme'))}`,
    );
    const row = tenancy({ mode: 'row', roleTemplate: 'pgfence_{tenant}' });
    expect(pinSql(row, tenantOf(row, 'acme'), new Map())).toMatch(/^SELECT E'"pgfence_acme"'::pg_catalog\.regrole; SELECT /);
    expect(pinSql(tenancy(), tenantOf(tenancy(), 'acme'), new Map())).not.toContain('regrole');
  });

  it('recognises the backend refusing the tenant role only when there is one', () => {
    const t = tenancy({ roleTemplate: 'pgfence_{tenant}' });
    expect(isTenantRoleError(t, '42704')).toBe(true);
    expect(isTenantRoleError(t, '42501')).toBe(true);
    expect(isTenantRoleError(t, '22023')).toBe(false);
    expect(isTenantRoleError(tenancy(), '42704')).toBe(false);
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
