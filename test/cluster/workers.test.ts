import { writeFile } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/index.js';
import { valueOf } from '../admin/exposition.js';
import { closedPort, pollUntil } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { sendCancelRequest } from '../support/wire.js';
import { keyOf, type LogRecord, scrape, ServeProcess, workerOf } from './support.js';

/**
 * `workers: 2` end to end: `pgfence serve` in a child process (a primary and two workers sharing
 * one port through node:cluster) in front of the run's Postgres. The test database and the token
 * key come from a test proxy, which itself serves nothing here.
 */

let db: TestProxy;
let serve: ServeProcess;
let port: number;
let adminPort: number;
const opened: pg.Client[] = [];

const yaml = (umbrella: 'active' | 'suspended'): string => `
workers: 2
listen: { host: 127.0.0.1, port: 0, shutdownTimeoutMs: 2000, authThrottle: { freeFailures: 4, delayMs: 1 } }
backend: { url: "${db.directUrl}" }
jwt: { secret: "\${TEST_JWT_SECRET}", issuer: pgfence-test }
tenancy: { tenants: [{ id: acme }, { id: globex }, { id: umbrella, status: ${umbrella} }] }
pool: { mode: transaction, size: 2, acquireTimeoutMs: 20000 }
admin: { enabled: true, port: 0 }
log: { level: info }
`;

const isMsg = (msg: string) => (r: LogRecord): boolean => r.msg === msg;

async function connect(tenant: string, database = 'app'): Promise<pg.Client> {
  const password =
    database === 'pgfence'
      ? await mintToken(db.config.jwt, { tenantId: null, user: 'ops', ttlSeconds: 300, adminClaim: db.config.admin.consoleClaim })
      : await db.token(tenant);
  const client = new pg.Client({ host: '127.0.0.1', port, user: tenant, database, password });
  client.on('error', () => undefined);
  await client.connect();
  opened.push(client);
  return client;
}

/** Clients of `tenant`, opened one by one until each worker holds at least `each` (bounded by count). */
async function clientsOnBothWorkers(tenant: string, each = 1): Promise<Map<number, pg.Client[]>> {
  const byWorker = new Map<number, pg.Client[]>([[0, []], [1, []]]);
  for (let i = 0; i < 20 && [...byWorker.values()].some((c) => c.length < each); i++) {
    const client = await connect(tenant);
    byWorker.get(workerOf(client))?.push(client);
  }
  expect([...byWorker.values()].map((c) => c.length >= each)).toEqual([true, true]);
  return byWorker;
}

const pidOfWorker = async (index: number, nth = 1): Promise<number> =>
  (await serve.logged((r) => r.msg === 'worker listening' && r['worker'] === index, nth))['pid'] as number;

beforeAll(async () => {
  db = await startTestProxy();
  serve = await ServeProcess.start(yaml('active'), { TEST_JWT_SECRET: db.config.jwt.secret as string });
  port = (await serve.logged(isMsg('pgfence listening with workers')))['port'] as number;
  adminPort = (await serve.logged(isMsg('admin endpoint listening')))['port'] as number;
});

afterAll(async () => {
  await Promise.all(opened.map((c) => c.end().catch(() => undefined)));
  await serve?.stop();
  await db?.close();
});

describe('workers: 2', () => {
  it('gives each client a key naming its worker, and both workers serve the one port', async () => {
    const byWorker = await clientsOnBothWorkers('acme');
    for (const [worker, clients] of byWorker) {
      for (const client of clients) {
        expect(workerOf(client)).toBe(worker);
        expect((await client.query('SELECT whoami() AS me')).rows[0].me).toBe('acme');
      }
    }
  });

  it('cancels the right query whichever worker the CancelRequest lands on', async () => {
    const byWorker = await clientsOnBothWorkers('globex');
    const routed = async (route: string): Promise<number> => valueOf(await scrape(adminPort), 'pgfence_cancel_requests_total', { route }) ?? 0;
    for (const [worker, clients] of byWorker) {
      const client = clients[0] as pg.Client;
      let forwarded = false;
      let local = false;
      // Node's round robin hands connections to the workers in turn, so within a few rounds the
      // CancelRequest lands once on the owner and once on the other worker.
      for (let round = 0; round < 8 && !(forwarded && local); round++) {
        const before = { worker: await routed('worker'), local: await routed('local') };
        const slow = client.query('SELECT pg_sleep(30)').then(
          () => null,
          (e: pg.DatabaseError) => e,
        );
        await pollUntil('the sleep runs', async () => {
          const r = await db.direct<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'");
          return r.rows[0]?.n === 1 ? true : undefined;
        });
        const key = keyOf(client);
        await sendCancelRequest(port, key.processId, key.secretKey);
        const error = await slow;
        expect(error?.code, `worker ${worker}, round ${round}`).toBe('57014');
        if ((await routed('worker')) > before.worker) forwarded = true;
        if ((await routed('local')) > before.local) local = true;
      }
      expect({ worker, forwarded, local }).toEqual({ worker, forwarded: true, local: true });
      expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    }
  });

  it('shares pool.size out: never more backends than configured, whatever the load on both workers', async () => {
    const clients = [...(await clientsOnBothWorkers('acme', 3)).values()].flat();
    let most = 0;
    let running = true;
    const load = Promise.all(
      clients.map(async (client) => {
        for (let i = 0; i < 5; i++) await client.query('SELECT pg_sleep(0.05)');
      }),
    ).finally(() => (running = false));
    for (let i = 0; i < 10_000 && running; i++) {
      const r = await db.direct<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
      most = Math.max(most, r.rows[0]?.n ?? 0);
    }
    await load;
    // Each worker got one backend of the two; both were busy, so both were open.
    expect(most).toBe(2);
  });

  it('answers the admin console and /metrics for the whole instance', async () => {
    const byWorker = await clientsOnBothWorkers('umbrella');
    const umbrellaClients = [...byWorker.values()].flat();
    for (const client of umbrellaClients) await client.query('SELECT 1');
    const console = await connect('ops', 'pgfence');
    const clients = await console.query('SHOW CLIENTS');
    const umbrellaRows = clients.rows.filter((r) => r.tenant === 'umbrella');
    expect(umbrellaRows).toHaveLength(umbrellaClients.length);
    expect(new Set(umbrellaRows.map((r) => r.worker))).toEqual(new Set([0, 1]));
    const pools = await console.query('SHOW POOLS');
    expect(pools.rows.find((r) => r.tenant === 'umbrella')?.cl_active).toBe(umbrellaClients.length);
    const databases = await console.query('SHOW DATABASES');
    expect(databases.rows[0]).toMatchObject({ pool_size: 2 });
    const servers = await console.query('SHOW SERVERS');
    expect(servers.rows.length).toBeLessThanOrEqual(2);

    const metrics = await scrape(adminPort);
    const accepted = valueOf(metrics, 'pgfence_client_connections_total', { result: 'accepted' }) ?? 0;
    // Every client of this file so far, of both workers, the console included.
    expect(accepted).toBe(opened.length);
    expect(valueOf(metrics, 'pgfence_pools_client_active_connections', { tenant: 'umbrella', target: 'default' })).toBe(umbrellaClients.length);
    expect(valueOf(metrics, 'pgfence_workers')).toBe(2);

    const killed = await console.query('KILL TENANT umbrella');
    expect(killed.rows).toEqual([]);
    await pollUntil('umbrella clients gone', async () => {
      const rows = (await console.query('SHOW CLIENTS')).rows.filter((r) => r.tenant === 'umbrella');
      return rows.length === 0 ? true : undefined;
    });
  });

  it('answers /readyz with a worker\'s verdict, backend probe included', async () => {
    const response = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
    expect([response.status, await response.text()]).toEqual([200, expect.stringMatching(/^ready: backend 127\.0\.0\.1:\d+\/\S+ accepts connections\n$/)]);
  });

  it('reloads every worker on SIGHUP', async () => {
    await writeFile(serve.file, yaml('suspended'));
    serve.child.kill('SIGHUP');
    await serve.logged(isMsg('configuration reloaded in every worker'));
    // Two connections: node's round robin puts them on both workers.
    for (let i = 0; i < 2; i++) {
      const refused = await connect('umbrella').catch((e: pg.DatabaseError) => e);
      expect((refused as pg.DatabaseError).message).toContain('suspended');
    }
  });

  it('throttles failed logins per instance: the free failures are not multiplied by the workers', async () => {
    const throttled = async (): Promise<number> => valueOf(await scrape(adminPort), 'pgfence_auth_throttled_total') ?? 0;
    const before = await throttled();
    const failedAt = new Set<number>();
    for (let i = 0; i < 8; i++) {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'acme', database: 'app', password: 'not-a-token' });
      client.on('error', () => undefined);
      const error = await client.connect().then(
        () => null,
        (e: pg.DatabaseError) => e,
      );
      expect(error?.code).toBe('28P01');
    }
    for (const r of serve.records) if (r.msg === 'authentication failed' && typeof r['worker'] === 'number') failedAt.add(r['worker']);
    // Node's round robin spread the failures over both workers; each counted the other's, so the
    // four free failures were for the instance and the four after them were held.
    expect([...failedAt].sort()).toEqual([0, 1]);
    expect((await throttled()) - before).toBe(4);
  });

  it('restarts a worker that dies; its clients lose their connection, the others go on', async () => {
    const byWorker = await clientsOnBothWorkers('acme');
    const [survivor] = byWorker.get(0) as pg.Client[];
    const [victim] = byWorker.get(1) as pg.Client[];
    const lost = new Promise<void>((resolve) => victim?.once('end', () => resolve()));
    process.kill(await pidOfWorker(1), 'SIGKILL');
    await lost;
    expect((await survivor?.query('SELECT whoami() AS me'))?.rows[0].me).toBe('acme');
    const restartedPid = await pidOfWorker(1, 2);
    expect(restartedPid).not.toBe(await pidOfWorker(1));
    const again = await clientsOnBothWorkers('globex');
    expect((await again.get(1)?.[0]?.query('SELECT whoami() AS me'))?.rows[0].me).toBe('globex');
    expect(valueOf(await scrape(adminPort), 'pgfence_worker_restarts_total')).toBe(1);
  });

  it('drains every worker on SIGTERM and exits 0', async () => {
    await Promise.all(opened.map((c) => c.end().catch(() => undefined)));
    serve.child.kill('SIGTERM');
    expect(await serve.exited).toBe(0);
    expect(serve.count(isMsg('pgfence stopped'))).toBe(3);
  });
});

describe('workers: 2 with a backend that cannot be reached', () => {
  it('is not ready, and /readyz says why (the workers probe the backend)', async () => {
    const deadPort = await closedPort();
    const down = await ServeProcess.start(
      `
workers: 2
listen: { host: 127.0.0.1, port: 0 }
backend: { url: "postgres://nobody@127.0.0.1:${deadPort}/app", connectTimeoutMs: 1000 }
jwt: { secret: "\${TEST_JWT_SECRET}", issuer: pgfence-test }
tenancy: { tenants: [{ id: acme }] }
admin: { enabled: true, port: 0 }
log: { level: info }
`,
      { TEST_JWT_SECRET: db.config.jwt.secret as string },
    );
    try {
      const admin = (await down.logged(isMsg('admin endpoint listening')))['port'] as number;
      const response = await fetch(`http://127.0.0.1:${admin}/readyz`);
      expect(response.status).toBe(503);
      expect(await response.text()).toContain(`not ready: backend 127.0.0.1:${deadPort}/app cannot be reached`);
    } finally {
      await down.stop();
    }
  });
});
