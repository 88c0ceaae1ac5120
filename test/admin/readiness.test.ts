import { describe, expect, it } from 'vitest';
import { Readiness, type ReadinessDeps } from '../../src/admin/readiness.js';
import { BackendError } from '../../src/backend/errors.js';

/** A Readiness over switches the test flips, a clock it moves, and a probe whose outcome it sets. */
function readiness(cacheMs = 1_000) {
  const state = {
    draining: false,
    listening: true,
    pooled: 0,
    now: 0,
    probes: 0,
    outcome: null as Error | null,
    /** When set, probes wait for this promise (to check that concurrent checks share one). */
    gate: null as Promise<void> | null,
  };
  const deps: ReadinessDeps = {
    draining: () => state.draining,
    listening: () => state.listening,
    pooledConnections: () => state.pooled,
    probeBackend: async () => {
      state.probes++;
      if (state.gate !== null) await state.gate;
      if (state.outcome !== null) throw state.outcome;
    },
    backendName: 'db:5432/app',
    now: () => state.now,
  };
  return { r: new Readiness(deps, () => cacheMs), state };
}

describe('Readiness', () => {
  it('is ready when the backend accepts a connection, and says so', async () => {
    const { r, state } = readiness();
    expect(await r.check()).toEqual({ ready: true, reason: 'ready: backend db:5432/app accepts connections' });
    expect(state.probes).toBe(1);
  });

  it('is not ready while draining or not listening, without probing', async () => {
    const { r, state } = readiness();
    state.draining = true;
    expect(await r.check()).toEqual({ ready: false, reason: 'not ready: draining (pgfence is shutting down)' });
    state.draining = false;
    state.listening = false;
    expect((await r.check()).ready).toBe(false);
    expect(state.probes).toBe(0);
  });

  it('is not ready when the backend cannot be reached, with the reason', async () => {
    const { r, state } = readiness();
    state.outcome = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    expect(await r.check()).toEqual({ ready: false, reason: 'not ready: backend db:5432/app cannot be reached (connect ECONNREFUSED 127.0.0.1:5432)' });
    state.outcome = new BackendError('password authentication failed for user "pgfence"', '28P01');
    state.now += 1_000;
    expect((await r.check()).reason).toBe('not ready: backend db:5432/app cannot be reached (28P01: password authentication failed for user "pgfence")');
  });

  it('treats 53300 as ready while the pool holds server connections, not ready when it holds none', async () => {
    const { r, state } = readiness();
    state.outcome = new BackendError('sorry, too many clients already', '53300');
    state.pooled = 3;
    expect(await r.check()).toEqual({
      ready: true,
      reason: 'ready: serving from 3 pooled server connection(s); backend db:5432/app refuses new ones (53300: sorry, too many clients already)',
    });
    state.pooled = 0;
    expect(await r.check()).toEqual({
      ready: false,
      reason: 'not ready: backend db:5432/app refuses new connections (53300: sorry, too many clients already) and the pool holds none',
    });
  });

  it('reuses a probe answer for probeCacheMs, then probes again', async () => {
    const { r, state } = readiness(1_000);
    await r.check();
    state.outcome = new Error('down');
    state.now += 999;
    expect((await r.check()).ready).toBe(true);
    expect(state.probes).toBe(1);
    state.now += 1;
    expect((await r.check()).ready).toBe(false);
    expect(state.probes).toBe(2);
  });

  it('shares one probe between concurrent checks', async () => {
    const { r, state } = readiness();
    let open!: () => void;
    state.gate = new Promise((resolve) => (open = resolve));
    const checks = Promise.all(Array.from({ length: 10 }, () => r.check()));
    open();
    expect((await checks).every((v) => v.ready)).toBe(true);
    expect(state.probes).toBe(1);
  });

  it('does not probe the backend with probeCacheMs 0', async () => {
    const { r, state } = readiness(0);
    state.outcome = new Error('down');
    expect(await r.check()).toEqual({ ready: true, reason: 'ready' });
    expect(state.probes).toBe(0);
  });
});
