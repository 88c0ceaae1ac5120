import { writeFile } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LogRecord, ServeProcess, workerOf } from '../cluster/support.js';
import { createTestDatabase, type TestDatabase, withClient } from '../support/db.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { SEED_SQL } from '../support/seed.js';
import { connectRefusal, currentDatabase, sessionEnd } from './support.js';

/**
 * `workers: 2` (`pgfence serve` in a child process) reloading `backends` on SIGHUP with live
 * clients on both workers: each worker opens the new target with its share of the target's pool
 * and later lets it go. The registry (in the default target's database) places globex on `eu`.
 */

let db: TestProxy;
let eu: TestDatabase;
let serve: ServeProcess;
let port: number;
const opened: pg.Client[] = [];

const yaml = (withEu: boolean): string => `
workers: 2
listen: { host: 127.0.0.1, port: 0, shutdownTimeoutMs: 2000 }
backend: { url: "${db.directUrl}" }
${withEu ? `backends: { eu: { url: "${eu.url}", pool: { size: 2 } } }` : ''}
jwt: { secret: "\${TEST_JWT_SECRET}", issuer: pgfence-test }
tenancy: { registry: { query: "SELECT status, target FROM public.registry WHERE id = $1", cacheTtlMs: 0 } }
pool: { mode: transaction, size: 2, acquireTimeoutMs: 20000 }
log: { level: info }
`;

const isMsg = (msg: string) => (r: LogRecord): boolean => r.msg === msg;

function clientConfig(tenant: string, password: string): pg.ClientConfig {
  return { host: '127.0.0.1', port, user: tenant, database: 'app', password };
}

async function connect(tenant: string): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(tenant, await db.token(tenant)));
  client.on('error', () => undefined);
  await client.connect();
  opened.push(client);
  return client;
}

/** Clients of `tenant`, opened one by one until each worker holds `each` (bounded by count). */
async function clientsOnBothWorkers(tenant: string, each: number): Promise<pg.Client[]> {
  const byWorker = new Map<number, pg.Client[]>([[0, []], [1, []]]);
  for (let i = 0; i < 20 * each && [...byWorker.values()].some((c) => c.length < each); i++) {
    const client = await connect(tenant);
    const mine = byWorker.get(workerOf(client));
    if (mine !== undefined && mine.length < each) mine.push(client);
  }
  expect([...byWorker.values()].map((c) => c.length)).toEqual([each, each]);
  return [...byWorker.values()].flat();
}

async function reload(withEu: boolean, nth: number): Promise<void> {
  await writeFile(serve.file, yaml(withEu));
  serve.child.kill('SIGHUP');
  await serve.logged(isMsg('configuration reloaded in every worker'), nth);
}

beforeAll(async () => {
  db = await startTestProxy();
  eu = await createTestDatabase('workers_eu');
  await withClient(eu.url, (c) => c.query(SEED_SQL));
  await db.direct(`CREATE TABLE public.registry (id text PRIMARY KEY, status text NOT NULL, target text)`);
  await db.direct(`INSERT INTO public.registry VALUES ('acme', 'active', NULL), ('globex', 'active', 'eu')`);
  serve = await ServeProcess.start(yaml(false), { TEST_JWT_SECRET: db.config.jwt.secret as string });
  port = (await serve.logged(isMsg('pgfence listening with workers')))['port'] as number;
});

afterAll(async () => {
  await Promise.all(opened.map((c) => c.end().catch(() => undefined)));
  await serve?.stop();
  await eu?.drop();
  await db?.close();
});

describe('workers: 2 reloading backends', () => {
  it('adds a target in every worker, each with its share of its pool, and removes it, with live clients on both', async () => {
    const acme = await clientsOnBothWorkers('acme', 1);
    // Before: globex's target is unknown, on whichever worker the connect lands.
    for (let i = 0; i < 2; i++) expect((await connectRefusal(clientConfig('globex', await db.token('globex')))).code).toBe('08004');

    await reload(true, 1);
    for (const client of acme) expect((await client.query('SELECT whoami() AS me')).rows).toEqual([{ me: 'acme' }]);
    const globex = await clientsOnBothWorkers('globex', 2);
    for (const client of globex) expect(await currentDatabase(client)).toBe(eu.name);
    // backends.eu.pool.size 2 over 2 workers: one backend each, both busy under load from both.
    let most = 0;
    let running = true;
    const load = Promise.all(
      globex.map(async (client) => {
        for (let i = 0; i < 4; i++) await client.query('SELECT pg_sleep(0.05)');
      }),
    ).finally(() => (running = false));
    for (let i = 0; i < 10_000 && running; i++) {
      const r = await withClient(eu.url, (c) =>
        c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()'),
      );
      most = Math.max(most, r.rows[0]?.n ?? 0);
    }
    await load;
    expect(most).toBe(2);

    // Removed: the idle globex sessions of both workers end with 08004; acme's go on.
    const ends = globex.map((client) => sessionEnd(client));
    await reload(false, 2);
    for (const end of await Promise.all(ends)) expect(end.code).toBe('08004');
    for (const client of acme) expect((await client.query('SELECT whoami() AS me')).rows).toEqual([{ me: 'acme' }]);
    for (let i = 0; i < 2; i++) expect((await connectRefusal(clientConfig('globex', await db.token('globex')))).code).toBe('08004');
  });
});
