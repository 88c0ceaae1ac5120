import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keyOwner, MAX_PEER_ID, MAX_WORKERS, newCancelKey } from '../../src/cluster/cancel-key.js';
import { mergeSnapshots, type ConsoleSnapshot } from '../../src/cluster/console-merge.js';
import { shareOf, shareProblem, sharedPoolOptions, workersFor } from '../../src/cluster/shares.js';
import { ConfigError } from '../../src/config/errors.js';
import { parseConfig } from '../../src/config/load.js';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import { CancelRegistry } from '../../src/frontend/cancel-registry.js';
import type { PoolOptions } from '../../src/pool/pool.js';

const base = { jwt: { secret: 'x'.repeat(32) }, tenancy: { tenants: [{ id: 'acme' }] } } satisfies ConfigInput;

describe('cancel keys', () => {
  it('carry the worker and the peer id, keep the process id positive, and differ', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_WORKERS - 1 }), fc.integer({ min: 0, max: MAX_PEER_ID }), (worker, peer) => {
        const key = newCancelKey({ worker, peer });
        expect(key.processId).toBeGreaterThan(0);
        expect(key.processId).toBeLessThanOrEqual(2 ** 31 - 1);
        expect(key.secretKey | 0).toBe(key.secretKey);
        expect(keyOwner(key.processId, key.secretKey)).toEqual({ worker, peer });
      }),
    );
    const keys = new Set(Array.from({ length: 1000 }, () => newCancelKey({ worker: 3, peer: 7 })).map((k) => `${k.processId}/${k.secretKey}`));
    expect(keys.size).toBe(1000);
  });

  it('are routed: own keys cancel here, other workers\' and peers\' keys are passed on, unknown ones dropped', () => {
    const toWorker: number[] = [];
    const toPeer: number[] = [];
    let cancelled = 0;
    const registry = new CancelRegistry({
      self: { worker: 1, peer: 5 },
      toWorker: (worker) => toWorker.push(worker),
      toPeer: (peer) => (toPeer.push(peer), peer === 6),
    });
    const key = registry.issue({ cancel: () => cancelled++ });
    expect(registry.cancel(key.processId, key.secretKey)).toBe('local');
    expect(registry.cancel(key.processId, key.secretKey ^ 1)).toBe('miss');
    const other = newCancelKey({ worker: 0, peer: 5 });
    expect(registry.cancel(other.processId, other.secretKey)).toBe('worker');
    expect(registry.cancelHere(other.processId, other.secretKey)).toBe('miss');
    const peer = newCancelKey({ worker: 1, peer: 6 });
    expect(registry.cancel(peer.processId, peer.secretKey)).toBe('peer');
    const stranger = newCancelKey({ worker: 1, peer: 9 });
    expect(registry.cancel(stranger.processId, stranger.secretKey)).toBe('unroutable');
    const unpeered = newCancelKey({ worker: 1, peer: 0 });
    expect(registry.cancel(unpeered.processId, unpeered.secretKey)).toBe('unroutable');
    expect({ cancelled, toWorker, toPeer }).toEqual({ cancelled: 1, toWorker: [0], toPeer: [6, 9] });
  });
});

describe('shares of the pool', () => {
  it('add up to the configured figure and differ by at most one', () => {
    expect([0, 1, 2].map((i) => shareOf(20, i, 3))).toEqual([7, 7, 6]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 128 }), fc.integer({ min: 0, max: 10_000 }), (count, total) => {
        const shares = Array.from({ length: count }, (_, i) => shareOf(total, i, count));
        expect(shares.reduce((a, b) => a + b, 0)).toBe(total);
        expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('share maxPerTenant too, and leave "no cap" (0) alone', () => {
    const options = { size: 20, maxPerTenant: 5 } as PoolOptions;
    expect([0, 1, 2].map((i) => sharedPoolOptions(options, i, 3)).map((o) => [o.size, o.maxPerTenant])).toEqual([[7, 2], [7, 2], [6, 1]]);
    expect(sharedPoolOptions({ size: 4, maxPerTenant: 0 } as PoolOptions, 1, 2).maxPerTenant).toBe(0);
    expect(sharedPoolOptions(options, 0, 1)).toBe(options);
  });

  it('refuse more workers than backends or than a per-tenant cap', () => {
    const tooMany = configSchema.safeParse({ ...base, workers: 3, pool: { size: 2 } });
    expect(tooMany.error?.issues.map((i) => i.message)).toEqual(['3 workers cannot share pool.size 2: each worker needs at least one backend']);
    const capped = configSchema.safeParse({ ...base, workers: 2, pool: { maxPerTenant: 1 } });
    expect(capped.error?.issues[0]?.path).toEqual(['workers']);
    expect(configSchema.safeParse({ ...base, workers: 129 }).success).toBe(false);
    expect(configSchema.parse({ ...base }).workers).toBe(1);
  });

  it('reads workers from the environment, and names what it expects', () => {
    const yaml = 'workers: ${W}\njwt: { secret: "' + 'x'.repeat(32) + '" }\ntenancy: { tenants: [{ id: a }] }\n';
    expect(parseConfig(yaml, 'p.yaml', { W: '2' }).workers).toBe(2);
    expect(parseConfig(yaml, 'p.yaml', { W: 'auto' }).workers).toBe('auto');
    let error: unknown;
    try {
      parseConfig(yaml, 'p.yaml', { W: 'three' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('workers: expected an integer between 1 and 128 or "auto", got "three"');
  });

  it('auto is one worker per core, bounded by pool.size and maxPerTenant', () => {
    expect(workersFor(configSchema.parse({ ...base, workers: 'auto' }), 8)).toBe(8);
    expect(workersFor(configSchema.parse({ ...base, workers: 'auto', pool: { size: 3 } }), 8)).toBe(3);
    expect(workersFor(configSchema.parse({ ...base, workers: 'auto', pool: { maxPerTenant: 2 } }), 8)).toBe(2);
    expect(workersFor(configSchema.parse({ ...base, workers: 'auto' }), 1)).toBe(1);
    expect(shareProblem(configSchema.parse({ ...base, pool: { size: 1 } }), 2)).toMatch(/pool.size 1 is below the 2 running workers/);
  });
});

describe('the console of several workers', () => {
  const target = { host: 'db', port: 5432, database: 'app', user: 'svc' };
  const pool = (tenant: string | null, clActive: number, maxWaitMs: number) => ({
    tenant, clActive, clWaiting: 0, svActive: clActive, svBeingCanceled: 0, svIdle: 0, svUsed: 0, svTested: 0, svLogin: tenant === null ? 1 : 0, maxWaitMs,
    database: 'app', user: 'svc', poolMode: 'transaction',
  });
  const client = (id: number, tenant: string) => ({
    id, tenant, user: `${tenant}-user`, database: 'app', applicationName: null, addr: '127.0.0.1', port: 1, localAddr: null, localPort: null,
    state: 'active' as const, connectedAt: new Date(0), backendId: id, tls: false,
  });

  it('sums pools per tenant, keeps clients of each worker apart, and counts lists from the merged rows', () => {
    const snapshots: ConsoleSnapshot[] = [
      { worker: 1, target, pools: [pool('acme', 2, 5), pool(null, 0, 0)], clients: [client(1, 'acme'), client(2, 'acme')], servers: [], tenants: [] },
      { worker: 0, target, pools: [pool('globex', 1, 0), pool('acme', 1, 9), pool(null, 0, 0)], clients: [client(1, 'globex'), client(2, 'acme')], servers: [], tenants: [] },
    ];
    const data = mergeSnapshots(snapshots);
    expect(data.clustered).toBe(true);
    expect(data.pools().map((p) => [p.tenant, p.clActive, p.maxWaitMs, p.svLogin])).toEqual([['acme', 3, 9, 0], ['globex', 1, 0, 0], [null, 0, 0, 2]]);
    expect(data.clients().map((c) => [c.worker, c.id, c.tenant])).toEqual([[0, 1, 'globex'], [0, 2, 'acme'], [1, 1, 'acme'], [1, 2, 'acme']]);
    const lists = Object.fromEntries(data.lists().map((l) => [l.list, l.items]));
    expect(lists).toMatchObject({ users: 2, pools: 3, used_clients: 4, used_servers: 2 });
  });
});
