import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { quoteIdent, quoteLiteral, roleForTenant, schemaForTenant, TenantRefused } from '../../src/tenancy/index.js';

const tenancy = (input: Record<string, unknown> = {}) => configSchema.shape.tenancy.parse({ tenants: [], ...input });

function refusal(fn: () => unknown): TenantRefused {
  try {
    fn();
  } catch (error) {
    if (error instanceof TenantRefused) return error;
    throw error;
  }
  throw new Error('expected TenantRefused');
}

describe('schemaForTenant', () => {
  it('fills the template, keeping odd but valid ids as they are', () => {
    expect(schemaForTenant(tenancy(), 'acme')).toBe('tenant_acme');
    expect(schemaForTenant(tenancy(), 'a-b')).toBe('tenant_a-b');
    expect(schemaForTenant(tenancy(), '_x')).toBe('tenant__x');
    expect(schemaForTenant(tenancy(), 'Acme')).toBe('tenant_Acme');
    expect(schemaForTenant(tenancy({ schemaTemplate: '{tenant}' }), 'acme')).toBe('acme');
    expect(schemaForTenant(tenancy({ schemaTemplate: 't_{tenant}_{tenant}' }), 'x')).toBe('t_x_x');
    expect(schemaForTenant(tenancy({ mode: 'both' }), 'acme')).toBe('tenant_acme');
  });

  it('is null in row mode, where tenants share tables', () => {
    expect(schemaForTenant(tenancy({ mode: 'row' }), 'acme')).toBeNull();
  });

  it('refuses invalid ids, in every mode', () => {
    for (const id of ['', '1acme', 'a b', 'a.b', 'a"b', "a'b", 'ä', 'acme;drop', 'x'.repeat(64), 'a\0b']) {
      for (const mode of ['schema', 'row'] as const) {
        const error = refusal(() => schemaForTenant(tenancy({ mode }), id));
        expect(error.reason).toBe('invalid_tenant_id');
        expect(error.sqlstate).toBe('28000');
      }
    }
  });

  it('refuses an id whose schema name would pass 63 characters', () => {
    const id = 'x'.repeat(57);
    expect(schemaForTenant(tenancy(), id.slice(1))).toBe(`tenant_${id.slice(1)}`);
    expect(refusal(() => schemaForTenant(tenancy(), id)).message).toBe(`pgfence: tenant id "${id}" is not a valid tenant name`);
  });
});

describe('roleForTenant', () => {
  it('is null without tenancy.roleTemplate, the filled template with it, in every mode', () => {
    expect(roleForTenant(tenancy(), 'acme')).toBeNull();
    expect(roleForTenant(tenancy({ roleTemplate: 'pgfence_{tenant}' }), 'acme')).toBe('pgfence_acme');
    expect(roleForTenant(tenancy({ roleTemplate: 'pgfence_{tenant}' }), 'A-b')).toBe('pgfence_A-b');
    expect(roleForTenant(tenancy({ mode: 'row', roleTemplate: '{tenant}_rw' }), 'acme')).toBe('acme_rw');
  });

  it('refuses invalid ids even without a template, and names past 63 bytes or starting with pg_', () => {
    expect(refusal(() => roleForTenant(tenancy(), 'a b')).reason).toBe('invalid_tenant_id');
    const t = tenancy({ roleTemplate: 'pgfence_{tenant}' });
    const id = 'x'.repeat(56);
    expect(roleForTenant(t, id.slice(1))).toHaveLength(63);
    expect(refusal(() => roleForTenant(t, id)).reason).toBe('invalid_tenant_id');
    expect(refusal(() => roleForTenant(tenancy({ roleTemplate: '{tenant}' }), 'pg_monitor')).reason).toBe('invalid_tenant_id');
  });
});

describe('quoteIdent', () => {
  it('always quotes, doubling quotes', () => {
    expect(quoteIdent('tenant_acme')).toBe('"tenant_acme"');
    expect(quoteIdent('tenant_a-b')).toBe('"tenant_a-b"');
    expect(quoteIdent('_x')).toBe('"_x"');
    expect(quoteIdent('Acme')).toBe('"Acme"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteIdent('"')).toBe('""""');
    expect(() => quoteIdent('a\0b')).toThrow(/NUL/);
  });
});

describe('quoteLiteral', () => {
  it('writes E-strings with backslashes and quotes doubled', () => {
    expect(quoteLiteral('acme')).toBe("E'acme'");
    expect(quoteLiteral("o'neil")).toBe("E'o''neil'");
    expect(quoteLiteral('a\\b')).toBe("E'a\\\\b'");
    expect(quoteLiteral("\\'; DROP TABLE x; --")).toBe("E'\\\\''; DROP TABLE x; --'");
    expect(quoteLiteral('"tenant_a-b", "public"')).toBe('E\'"tenant_a-b", "public"\'');
    expect(quoteLiteral('')).toBe("E''");
    expect(quoteLiteral('line\nbreak ✓')).toBe("E'line\nbreak ✓'");
  });

  it('refuses NUL, which no query can carry', () => {
    expect(() => quoteLiteral('a\0b')).toThrow(/NUL/);
  });
});

describe('TenantRefused', () => {
  it('carries a reason, a fixed SQLSTATE and a message for the client', () => {
    const cases: Array<[ConstructorParameters<typeof TenantRefused>[0], string, string]> = [
      ['unknown_tenant', '28000', 'pgfence: unknown tenant "x"'],
      ['suspended_tenant', '28000', 'pgfence: tenant "x" is suspended'],
      ['invalid_tenant_id', '28000', 'pgfence: tenant id "x" is not a valid tenant name'],
      ['registry_unavailable', '08006', 'pgfence: the tenant registry could not be read for tenant "x"'],
    ];
    for (const [reason, sqlstate, message] of cases) {
      const error = new TenantRefused(reason, 'x');
      expect(error).toBeInstanceOf(Error);
      expect([error.reason, error.sqlstate, error.message, error.tenantId, error.name]).toEqual([reason, sqlstate, message, 'x', 'TenantRefused']);
    }
  });

  it('escapes and shortens a hostile id in the message', () => {
    expect(new TenantRefused('unknown_tenant', 'a"b\nc').message).toBe('pgfence: unknown tenant "a\\"b\\nc"');
    expect(new TenantRefused('unknown_tenant', 'y'.repeat(500)).message).toBe(`pgfence: unknown tenant "${'y'.repeat(64)}..."`);
  });
});
