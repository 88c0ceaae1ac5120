import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shareOf, shareProblem, sharedPoolOptions } from '../../src/cluster/shares.js';
import { type Config, type ConfigInput, configSchema } from '../../src/config/schema.js';
import { BackendPools } from '../../src/placement/pools.js';
import type { PoolOptions } from '../../src/pool/pool.js';
import { createTestDatabase, type TestDatabase, withClient } from '../support/db.js';
import { pollUntil } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { SEED_SQL } from '../support/seed.js';
import { connectRefusal as refusalOf, currentDatabase, type Refusal, sessionEnd } from './support.js';

/** The error `tenant`'s connect is refused with; throws if it is served. */
async function connectRefusal(proxy: TestProxy, tenant: string): Promise<Refusal> {
  return refusalOf(await proxy.clientConfig(tenant));
}

/**
 * RELOAD of `backends` with live clients, in both pool modes. The registry (in the default
 * target's database) places globex and umbrella on `eu`, a target the configuration gains, changes
 * and loses while the proxy runs.
 */
describe.each(['session', 'transaction'] as const)('reload of backend targets (%s pooling)', (mode) => {
  let eu: TestDatabase;
  let moved: TestDatabase;
  let proxy: TestProxy;

  beforeAll(async () => {
    eu = await createTestDatabase('reload_eu');
    moved = await createTestDatabase('reload_moved');
    for (const db of [eu, moved]) await withClient(db.url, (c) => c.query(SEED_SQL));
    proxy = await startTestProxy({
      pool: { mode, size: 3, acquireTimeoutMs: 5_000 },
      admin: { enabled: true, port: 0 },
      tenancy: { registry: { query: 'SELECT status, target FROM public.registry WHERE id = $1', cacheTtlMs: 0 } },
    });
    await proxy.direct(`CREATE TABLE public.registry (id text PRIMARY KEY, status text NOT NULL, target text)`);
    await proxy.direct(`INSERT INTO public.registry VALUES ('acme', 'active', NULL), ('globex', 'active', 'eu'), ('umbrella', 'active', 'eu')`);
  });

  afterAll(async () => {
    await proxy?.close();
    await eu?.drop();
    await moved?.drop();
  });

  /** The running configuration with `backends` replaced, as a reloaded file would give it. */
  function withBackends(backends: ConfigInput['backends']): Config {
    return configSchema.parse({ ...structuredClone(proxy.config), backends });
  }

  const euPools = (): Array<{ retiring: boolean }> => proxy.running.pools.all().filter((p) => p.target === 'eu');

  /** Server connections to `db` (the test's own connection is to the default target's database): pgfence's alone. */
  async function pgfenceConnectionsOn(db: TestDatabase): Promise<number> {
    const r = await proxy.direct<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [db.name]);
    return r.rows[0]?.n ?? 0;
  }

  it('a target added by a reload serves its tenants, refused before with 08004; a live client of the default target goes on', async () => {
    const acme = await proxy.connect('acme');
    try {
      expect((await connectRefusal(proxy, 'globex')).code).toBe('08004');
      const result = await proxy.running.reload(withBackends({ eu: { url: eu.url, pool: { size: 2 } } }));
      expect(result.applied).toEqual(expect.arrayContaining(['backends.eu.pool.size', 'backends.eu.url']));
      expect(result.notApplied).toEqual([]);
      expect(proxy.running.pools.targetNames()).toEqual(['default', 'eu']);
      expect((await acme.query('SELECT whoami() AS me')).rows).toEqual([{ me: 'acme' }]);
      const globex = await proxy.connect('globex');
      expect(await currentDatabase(globex)).toBe(eu.name);
      await globex.end();
    } finally {
      await acme.end();
    }
  });

  it('a target removed by a reload: a transaction on it finishes there, then its session ends with 08004; an idle one ends at once; its pool drains', async () => {
    await proxy.running.reload(withBackends({ eu: { url: eu.url, pool: { size: 2 } } }));
    const acme = await proxy.connect('acme');
    const idle = await proxy.connect('umbrella');
    const busy = await proxy.connect('globex');
    const idleEnd = sessionEnd(idle);
    const busyEnd = sessionEnd(busy);
    try {
      await idle.query('SELECT 1');
      await busy.query('BEGIN');
      await busy.query(`INSERT INTO items (note) VALUES ('before the reload')`);
      expect(await pgfenceConnectionsOn(eu)).toBeGreaterThanOrEqual(1);

      const result = await proxy.running.reload(withBackends(undefined));
      expect(result.applied).toContain('backends.eu.url');
      expect(proxy.running.pools.targetNames()).toEqual(['default']);

      const idleRefusal = await idleEnd;
      expect(idleRefusal.code).toBe('08004');
      expect(idleRefusal.message).toBe('pgfence: tenant "umbrella" is placed on the unknown backend target "eu"');
      // The running transaction is not cut: it goes on and commits on eu.
      await busy.query(`INSERT INTO items (note) VALUES ('after the reload')`);
      await busy.query('COMMIT');
      expect((await busyEnd).code).toBe('08004');
      const committed = await withClient(eu.url, (c) => c.query<{ n: number }>(`SELECT count(*)::int AS n FROM tenant_globex.items WHERE note IN ('before the reload', 'after the reload')`));
      expect(committed.rows).toEqual([{ n: 2 }]);

      // A fresh connect is refused as before the target existed; the default target's client goes on.
      expect((await connectRefusal(proxy, 'globex')).code).toBe('08004');
      expect((await acme.query('SELECT whoami() AS me')).rows).toEqual([{ me: 'acme' }]);
      // The pool drained and closed, and so did its server connections.
      await pollUntil('eu pool gone', async () => (euPools().length === 0 ? true : undefined));
      await pollUntil('no pgfence connection left on eu', async () => ((await pgfenceConnectionsOn(eu)) === 0 ? true : undefined));
    } finally {
      await acme.end();
      await idle.end().catch(() => undefined);
      await busy.end().catch(() => undefined);
    }
  });

  it("a target whose settings a reload changed: the running transaction finishes on the old database, new work goes to the new one, the old pool drains", async () => {
    await proxy.running.reload(withBackends({ eu: { url: eu.url } }));
    const client = await proxy.connect('globex');
    const admin = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'ops', database: 'pgfence', password: await proxy.token('acme', { pgfence_admin: true }) });
    admin.on('error', () => undefined);
    await admin.connect();
    // Transaction pooling: a client listening through eu's shared listener.
    const listener = mode === 'transaction' ? await proxy.connect('globex') : null;
    try {
      await listener?.query('LISTEN jobs');
      await client.query('BEGIN');
      expect(await currentDatabase(client)).toBe(eu.name);
      expect(await pgfenceConnectionsOn(eu)).toBeGreaterThanOrEqual(1);
      const result = await proxy.running.reload(withBackends({ eu: { url: moved.url } }));
      expect(result.applied).toContain('backends.eu.url');
      // The old pool drains beside the new one; SHOW DATABASES shows it disabled.
      expect(euPools()).toEqual([expect.objectContaining({ retiring: false }), expect.objectContaining({ retiring: true })]);
      const rows = (await admin.query('SHOW DATABASES')).rows.filter((r) => r.target === 'eu');
      expect(rows.map((r) => [r.database, r.disabled])).toEqual([
        [moved.name, 0],
        [eu.name, 1],
      ]);
      expect(await currentDatabase(client)).toBe(eu.name);
      await client.query('COMMIT');
      if (mode === 'transaction') {
        // The next transaction takes a backend of the new pool; the old one, empty, closes.
        expect(await currentDatabase(client)).toBe(moved.name);
        await pollUntil('old eu pool drained', async () => (euPools().length === 1 ? true : undefined));
      } else {
        // Session pooling: the session keeps its backend to the old database until it ends.
        expect(await currentDatabase(client)).toBe(eu.name);
        expect(euPools()).toHaveLength(2);
        await client.end();
        await pollUntil('old eu pool drained', async () => (euPools().length === 1 ? true : undefined));
      }
      const fresh = await proxy.connect('globex');
      expect(await currentDatabase(fresh)).toBe(moved.name);
      await fresh.end();
      if (listener !== null) {
        // The listener reconnected to where eu is now and listens there again: a NOTIFY sent on the new database reaches the client.
        await pollUntil('the listener listening on the new database', async () => {
          const r = await proxy.direct<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query = 'LISTEN "globex.jobs"'`, [moved.name]);
          return r.rows[0]?.n === 1 ? true : undefined;
        }, 2_000);
        const received = new Promise<pg.Notification>((resolve) => listener.once('notification', resolve));
        await withClient(moved.url, (c) => c.query(`NOTIFY "globex.jobs", 'from the new place'`));
        expect((await received).payload).toBe('from the new place');
      }
      await pollUntil('no pgfence connection left on the old database', async () => ((await pgfenceConnectionsOn(eu)) === 0 ? true : undefined));
    } finally {
      await admin.end();
      await client.end().catch(() => undefined);
      await listener?.end();
    }
  });
});

describe('a reloaded target with workers: N', () => {
  const base = { jwt: { algorithms: ['HS256'], secret: 'x'.repeat(32) }, tenancy: { tenants: [{ id: 'acme' }] }, pool: { size: 4, maxPerTenant: 2 } } satisfies ConfigInput;

  it("gives each worker its share of a target's pool, for targets a reload adds too", async () => {
    const shares: PoolOptions[] = [];
    const share = (options: PoolOptions): PoolOptions => {
      const mine = sharedPoolOptions(options, 1, 2);
      shares.push(mine);
      return mine;
    };
    const pools = new BackendPools(configSchema.parse(base), pino({ level: 'silent' }), null, share);
    try {
      expect(shares.map((o) => o.size)).toEqual([shareOf(4, 1, 2)]);
      shares.length = 0;
      const changes = pools.reconfigure(configSchema.parse({ ...base, backends: { eu: { port: 5999, pool: { size: 5, maxPerTenant: 3 } } } }));
      expect(changes).toEqual({ opened: ['eu'], replaced: [], removed: [] });
      // The default target's pool gets its share again, the new target's pool its own share.
      expect(shares.map((o) => [o.size, o.maxPerTenant])).toEqual([
        [2, 1],
        [shareOf(5, 1, 2), shareOf(3, 1, 2)],
      ]);
    } finally {
      await pools.close();
    }
  });

  it('refuses a reload whose target cannot be shared between the running workers', () => {
    const small = configSchema.parse({ ...base, backends: { eu: { port: 5999, pool: { size: 1 } } } });
    expect(shareProblem(small, 2)).toBe('backends.eu.pool.size 1 is below the 2 running workers: each needs at least one backend');
    expect(shareProblem(small, 1)).toBeNull();
    const started = configSchema.safeParse({ ...base, workers: 2, backends: { eu: { port: 5999, pool: { size: 1 } } } });
    expect(started.error?.issues.map((i) => i.message)).toContain('2 workers cannot share backends.eu.pool.size 1: each worker needs at least one backend');
  });
});
