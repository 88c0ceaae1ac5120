import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { applyRoleRecipe, formatRoleRecipe, recipeStatements, roleRecipe, RoleRecipeError } from '../../src/tenancy/roles.js';

const tenancy = (input: Record<string, unknown> = {}) =>
  configSchema.shape.tenancy.parse({ tenants: [], roleTemplate: 'pgfence_{tenant}', ...input });
const policy = (input: Record<string, unknown> = {}) => configSchema.shape.policy.parse(input);

describe('roleRecipe', () => {
  it('creates a NOLOGIN role per tenant, idempotently, and grants it to the pool user', () => {
    const recipe = roleRecipe({ tenancy: tenancy(), policy: policy(), poolUser: 'pgfence', tenantIds: ['acme', 'globex', 'acme'] });
    expect(recipe.sections.map((s) => s.title)).toEqual([
      'tenant "acme": role "pgfence_acme", own schema "tenant_acme"; shared: public (read-write)',
      'tenant "globex": role "pgfence_globex", own schema "tenant_globex"; shared: public (read-write)',
    ]);
    const [create, grant] = recipe.sections[0]?.statements ?? [];
    expect(create).toContain(`IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = E'pgfence_acme') THEN`);
    expect(create).toContain('CREATE ROLE "pgfence_acme" NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;');
    expect(create).toContain('(rolsuper OR rolbypassrls)');
    expect(grant).toBe('GRANT "pgfence_acme" TO "pgfence"');
  });

  it('gives the own schema everything, now and for objects the pool user creates later', () => {
    const statements = roleRecipe({ tenancy: tenancy(), policy: policy(), poolUser: 'pgfence', tenantIds: ['acme'] }).sections[0]?.statements;
    expect(statements).toEqual(
      expect.arrayContaining([
        'GRANT USAGE, CREATE ON SCHEMA "tenant_acme" TO "pgfence_acme"',
        'GRANT ALL ON ALL TABLES IN SCHEMA "tenant_acme" TO "pgfence_acme"',
        'GRANT ALL ON ALL SEQUENCES IN SCHEMA "tenant_acme" TO "pgfence_acme"',
        'GRANT ALL ON ALL ROUTINES IN SCHEMA "tenant_acme" TO "pgfence_acme"',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "pgfence" IN SCHEMA "tenant_acme" GRANT ALL ON TABLES TO "pgfence_acme"',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "pgfence" IN SCHEMA "tenant_acme" GRANT ALL ON SEQUENCES TO "pgfence_acme"',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "pgfence" IN SCHEMA "tenant_acme" GRANT ALL ON FUNCTIONS TO "pgfence_acme"',
      ]),
    );
    // Nothing names a schema other than its own and the shared ones.
    const schemas = new Set(statements?.flatMap((s) => [...s.matchAll(/SCHEMA "([^"]+)"/g)].map((m) => m[1])));
    expect([...schemas].sort()).toEqual(['public', 'tenant_acme']);
  });

  it('grants read-only shared schemas SELECT only, the others ordinary data privileges, never CREATE', () => {
    const t = tenancy({ sharedSchemas: ['public', 'ref'] });
    const statements = roleRecipe({ tenancy: t, policy: policy({ readOnlySchemas: ['ref'] }), poolUser: 'pgfence', tenantIds: ['acme'] }).sections[0]
      ?.statements ?? [];
    const about = (schema: string) => statements.filter((s) => s.includes(`SCHEMA "${schema}"`) && !s.includes('tenant_acme'));
    expect(about('ref')).toEqual([
      'GRANT USAGE ON SCHEMA "ref" TO "pgfence_acme"',
      'REVOKE CREATE ON SCHEMA "ref" FROM "pgfence_acme"',
      'GRANT SELECT ON ALL TABLES IN SCHEMA "ref" TO "pgfence_acme"',
      'REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA "ref" FROM "pgfence_acme"',
      'REVOKE USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA "ref" FROM "pgfence_acme"',
      'ALTER DEFAULT PRIVILEGES FOR ROLE "pgfence" IN SCHEMA "ref" GRANT SELECT ON TABLES TO "pgfence_acme"',
      'ALTER DEFAULT PRIVILEGES FOR ROLE "pgfence" IN SCHEMA "ref" REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON TABLES FROM "pgfence_acme"',
      'ALTER DEFAULT PRIVILEGES FOR ROLE "pgfence" IN SCHEMA "ref" REVOKE USAGE, UPDATE ON SEQUENCES FROM "pgfence_acme"',
    ]);
    expect(about('public')).toEqual([
      'GRANT USAGE ON SCHEMA "public" TO "pgfence_acme"',
      'REVOKE CREATE ON SCHEMA "public" FROM "pgfence_acme"',
      'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "public" TO "pgfence_acme"',
      'REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA "public" FROM "pgfence_acme"',
      'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "public" TO "pgfence_acme"',
      'ALTER DEFAULT PRIVILEGES FOR ROLE "pgfence" IN SCHEMA "public" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "pgfence_acme"',
      'ALTER DEFAULT PRIVILEGES FOR ROLE "pgfence" IN SCHEMA "public" REVOKE TRUNCATE, REFERENCES, TRIGGER ON TABLES FROM "pgfence_acme"',
      'ALTER DEFAULT PRIVILEGES FOR ROLE "pgfence" IN SCHEMA "public" GRANT USAGE, SELECT ON SEQUENCES TO "pgfence_acme"',
    ]);
  });

  it("follows a tenant's own readOnlySchemas, which replace the default", () => {
    const t = tenancy({ sharedSchemas: ['public', 'ref'] });
    const p = policy({ readOnlySchemas: ['ref'], tenants: { globex: { readOnlySchemas: ['public'] }, initech: { readOnlySchemas: [] } } });
    const titles = roleRecipe({ tenancy: t, policy: p, poolUser: 'pgfence', tenantIds: ['acme', 'globex', 'initech'] }).sections.map((s) => s.title);
    expect(titles).toEqual([
      'tenant "acme": role "pgfence_acme", own schema "tenant_acme"; shared: public (read-write), ref (read-only)',
      'tenant "globex": role "pgfence_globex", own schema "tenant_globex"; shared: public (read-only), ref (read-write)',
      'tenant "initech": role "pgfence_initech", own schema "tenant_initech"; shared: public (read-write), ref (read-write)',
    ]);
  });

  it('has no own schema part in row mode', () => {
    const statements = recipeStatements(roleRecipe({ tenancy: tenancy({ mode: 'row' }), policy: policy(), poolUser: 'pgfence', tenantIds: ['acme'] }));
    expect(statements.some((s) => s.includes('tenant_acme'))).toBe(false);
    expect(statements).toContain('GRANT "pgfence_acme" TO "pgfence"');
    expect(statements).toContain('GRANT USAGE ON SCHEMA "public" TO "pgfence_acme"');
  });

  it('quotes every identifier and literal', () => {
    const t = tenancy({ roleTemplate: 'Role-{tenant}', schemaTemplate: 'Org-{tenant}', sharedSchemas: ['Shared-Data'] });
    const text = formatRoleRecipe(roleRecipe({ tenancy: t, policy: policy(), poolUser: 'svc "pool"', tenantIds: ['A-b'] }));
    expect(text).toContain(`rolname = E'Role-A-b'`);
    expect(text).toContain('CREATE ROLE "Role-A-b" NOLOGIN');
    expect(text).toContain('GRANT "Role-A-b" TO "svc ""pool"""');
    expect(text).toContain('GRANT USAGE, CREATE ON SCHEMA "Org-A-b" TO "Role-A-b"');
    expect(text).toContain('ALTER DEFAULT PRIVILEGES FOR ROLE "svc ""pool""" IN SCHEMA "Shared-Data"');
  });

  it('refuses without a role template, without tenants, and for ids that give invalid names', () => {
    const off = configSchema.shape.tenancy.parse({ tenants: [] });
    expect(() => roleRecipe({ tenancy: off, policy: policy(), poolUser: 'p', tenantIds: ['acme'] })).toThrow(/tenancy\.roleTemplate is not set/);
    expect(() => roleRecipe({ tenancy: tenancy(), policy: policy(), poolUser: 'p', tenantIds: [] })).toThrow(RoleRecipeError);
    for (const id of ['a b', 'x'.repeat(60), "a'b"]) {
      expect(() => roleRecipe({ tenancy: tenancy(), policy: policy(), poolUser: 'p', tenantIds: [id] })).toThrow(/does not give valid schema and role names/);
    }
  });
});

describe('formatRoleRecipe', () => {
  it('prints one transaction with a comment per tenant, and the public-schema advice as a comment', () => {
    const text = formatRoleRecipe(roleRecipe({ tenancy: tenancy(), policy: policy(), poolUser: 'pgfence', tenantIds: ['acme'] }));
    const lines = text.split('\n');
    expect(lines.filter((l) => l === 'BEGIN;' || l === 'COMMIT;')).toEqual(['BEGIN;', 'COMMIT;']);
    expect(lines).toContain('-- tenant "acme": role "pgfence_acme", own schema "tenant_acme"; shared: public (read-write)');
    expect(lines).toContain('-- REVOKE CREATE ON SCHEMA public FROM PUBLIC;');
    expect(lines).toContain('$pgfence$;');
    expect(lines.indexOf('-- REVOKE CREATE ON SCHEMA public FROM PUBLIC;')).toBeGreaterThan(lines.indexOf('COMMIT;'));
  });
});

describe('applyRoleRecipe', () => {
  const recipe = roleRecipe({ tenancy: tenancy(), policy: policy(), poolUser: 'pgfence', tenantIds: ['acme'] });

  it('runs every statement between BEGIN and COMMIT', async () => {
    const ran: string[] = [];
    const count = await applyRoleRecipe({ query: async (sql) => void ran.push(sql) }, recipe);
    expect(count).toBe(recipeStatements(recipe).length);
    expect(ran).toEqual(['BEGIN', ...recipeStatements(recipe), 'COMMIT']);
  });

  it('rolls back at the first failure and names the statement', async () => {
    const ran: string[] = [];
    const client = {
      query: async (sql: string) => {
        ran.push(sql);
        if (sql.startsWith('GRANT USAGE, CREATE')) throw new Error('schema "tenant_acme" does not exist');
      },
    };
    await expect(applyRoleRecipe(client, recipe)).rejects.toThrow(
      'schema "tenant_acme" does not exist (in: GRANT USAGE, CREATE ON SCHEMA "tenant_acme" TO "pgfence_acme"); nothing was applied',
    );
    expect(ran.at(-1)).toBe('ROLLBACK');
    expect(ran).not.toContain('COMMIT');
  });
});
