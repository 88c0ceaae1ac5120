import { describe, expect, it } from 'vitest';
import { resolveBackendTarget } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { createTenantResolver, TenantRefused } from '../../src/tenancy/index.js';
import { rejectionOf } from '../support/helpers.js';

const tenancy = (input: Record<string, unknown>) => configSchema.shape.tenancy.parse(input);
const target = resolveBackendTarget(configSchema.shape.backend.parse({}));

const refusal = (promise: Promise<unknown>): Promise<TenantRefused> => rejectionOf(promise, TenantRefused);

describe('the static tenant list', () => {
  const resolver = createTenantResolver(
    tenancy({ tenants: [{ id: 'acme' }, { id: 'a-b', status: 'active' }, { id: '_x' }, { id: 'initech', status: 'suspended' }] }),
    target,
  );

  it('serves an active tenant with its schema', async () => {
    await expect(resolver.resolve('acme')).resolves.toEqual({ id: 'acme', schema: 'tenant_acme', statementTimeoutMs: 0 });
    await expect(resolver.resolve('a-b')).resolves.toEqual({ id: 'a-b', schema: 'tenant_a-b', statementTimeoutMs: 0 });
    await expect(resolver.resolve('_x')).resolves.toEqual({ id: '_x', schema: 'tenant__x', statementTimeoutMs: 0 });
  });

  it('refuses a suspended tenant', async () => {
    const error = await refusal(resolver.resolve('initech'));
    expect([error.reason, error.sqlstate, error.message]).toEqual(['suspended_tenant', '28000', 'pgfence: tenant "initech" is suspended']);
  });

  it('refuses an unknown tenant; ids are case-sensitive and there is no default', async () => {
    for (const id of ['x', 'ACME', 'tenant_acme']) {
      const error = await refusal(resolver.resolve(id));
      expect([error.reason, error.sqlstate, error.message]).toEqual(['unknown_tenant', '28000', `pgfence: unknown tenant "${id}"`]);
    }
  });

  it('refuses an invalid id before looking it up', async () => {
    for (const id of ['', 'a b', "acme'--", '../acme', 'x'.repeat(64)]) {
      expect((await refusal(resolver.resolve(id))).reason).toBe('invalid_tenant_id');
    }
  });

  it('gives null schemas in row mode', async () => {
    const row = createTenantResolver(tenancy({ mode: 'row', tenants: [{ id: 'acme' }] }), target);
    await expect(row.resolve('acme')).resolves.toEqual({ id: 'acme', schema: null, statementTimeoutMs: 0 });
    await row.close();
    await row.close();
  });
});
