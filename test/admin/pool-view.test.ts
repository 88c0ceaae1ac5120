import { describe, expect, it } from 'vitest';
import { poolView } from '../../src/admin/pool-view.js';
import type { BackendView } from '../../src/pool/pool.js';

const NOW = 1_000_000;

function backend(fields: Partial<BackendView> & { id: number }): BackendView {
  return {
    state: 'idle',
    tenant: null,
    holder: null,
    dirty: false,
    createdAt: new Date(0),
    lastUsedAt: new Date(NOW - 10),
    cancelling: false,
    closeNeeded: false,
    processId: 1,
    preparedStatements: 0,
    ...fields,
  };
}

describe('poolView: the pool in PgBouncer terms, one row per tenant', () => {
  it('puts clients, backends and waits in their tenant rows, the rest in the shared row, and the rows add up', () => {
    const view = poolView({
      clients: [
        { tenantId: null, clientState: 'login' },
        { tenantId: null, clientState: 'console' },
        { tenantId: 'acme', clientState: 'active' },
        { tenantId: 'acme', clientState: 'idle' },
        { tenantId: 'acme', clientState: 'waiting' },
        { tenantId: 'globex', clientState: 'waiting' },
      ],
      backends: [
        // Held by acme but still pinned to globex (the pin is on its way): counted for the holder.
        backend({ id: 1, state: 'active', tenant: 'globex', holder: 'acme' }),
        backend({ id: 2, state: 'active', tenant: 'acme', holder: 'acme', cancelling: true }),
        backend({ id: 3, tenant: 'acme' }),
        backend({ id: 4, tenant: 'acme', lastUsedAt: new Date(NOW - 5_000) }),
        backend({ id: 5, state: 'resetting', tenant: 'globex' }),
        backend({ id: 6 }),
      ],
      connecting: 2,
      waiting: [
        { tenant: 'acme', since: NOW - 300 },
        { tenant: 'globex', since: NOW - 1_200 },
        { tenant: 'acme', since: NOW - 100 },
      ],
      healthCheckAfterIdleMs: 1_000,
      now: NOW,
    });
    expect(view.loginClients).toBe(1);
    expect(view.consoleClients).toBe(1);
    expect(view.rows.map((r) => r.tenant)).toEqual(['acme', 'globex', null]);
    expect(view.rows[0]).toEqual({ tenant: 'acme', clActive: 2, clWaiting: 1, svActive: 1, svBeingCanceled: 1, svIdle: 1, svUsed: 1, svTested: 0, svLogin: 0, maxWaitMs: 300 });
    expect(view.rows[1]).toEqual({ tenant: 'globex', clActive: 0, clWaiting: 1, svActive: 0, svBeingCanceled: 0, svIdle: 0, svUsed: 0, svTested: 1, svLogin: 0, maxWaitMs: 1_200 });
    expect(view.rows[2]).toEqual({ tenant: null, clActive: 0, clWaiting: 0, svActive: 0, svBeingCanceled: 0, svIdle: 1, svUsed: 0, svTested: 0, svLogin: 2, maxWaitMs: 0 });
    const servers = view.rows.reduce((n, r) => n + r.svActive + r.svBeingCanceled + r.svIdle + r.svUsed + r.svTested + r.svLogin, 0);
    expect(servers).toBe(6 + 2);
  });

  it('an empty pool is the shared row alone', () => {
    const view = poolView({ clients: [], backends: [], connecting: 0, waiting: [], healthCheckAfterIdleMs: 1_000, now: NOW });
    expect(view.rows).toHaveLength(1);
    expect(view.rows[0]?.tenant).toBeNull();
  });
});
