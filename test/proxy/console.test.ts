import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../../src/auth/index.js';
import { hasCommand, pollUntil } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

const run = promisify(execFile);
const havePsql = await hasCommand('psql');

let proxy: TestProxy;
let adminToken: string;

beforeAll(async () => {
  proxy = await startTestProxy({ pool: { mode: 'transaction', size: 3 } });
  adminToken = await mintToken(proxy.config.jwt, { tenantId: null, user: 'ops', ttlSeconds: 300, adminClaim: proxy.config.admin.consoleClaim });
});
afterAll(async () => {
  await proxy?.close();
});

async function consoleClient(password = adminToken): Promise<pg.Client> {
  const client = new pg.Client({ host: '127.0.0.1', port: proxy.port, user: 'ops', database: 'pgfence', password });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

describe('the admin console (database pgfence)', () => {
  it('refuses a tenant token without the admin claim', async () => {
    const error = await consoleClient(await proxy.token('acme')).catch((e: pg.DatabaseError) => e);
    expect((error as pg.DatabaseError).code).toBe('28000');
    expect((error as pg.DatabaseError).message).toContain('admin console');
  });

  it('shows clients, servers, pools, tenants and stats as rows', async () => {
    const tenant = await proxy.connect('acme');
    await tenant.query('SELECT count(*) FROM items');
    await tenant.query('SELECT * FROM tenant_globex.secrets').catch(() => undefined);
    const admin = await consoleClient();
    try {
      const clients = await admin.query('SHOW CLIENTS');
      expect(clients.rows.some((r) => Object.values(r).includes('acme'))).toBe(true);
      const pools = await admin.query('show pools;');
      // Typed columns: pg hands out numbers for int4.
      const acmePool = pools.rows.find((r) => r.tenant === 'acme');
      expect(acmePool).toMatchObject({ pool_mode: 'transaction', cl_active: 1, cl_waiting: 0, maxwait: 0 });
      expect(pools.rows.at(-1)).toMatchObject({ tenant: null, pool_mode: 'transaction' });
      const poolTotal = (key: string): number => pools.rows.reduce((n, r) => n + (r[key] as number), 0);
      expect(poolTotal('sv_idle') + poolTotal('sv_used') + poolTotal('sv_active') + poolTotal('sv_tested') + poolTotal('sv_login')).toBeGreaterThanOrEqual(1);
      const databases = await admin.query('SHOW DATABASES');
      expect(databases.rows[0]).toMatchObject({ pool_size: 3, pool_mode: 'transaction', paused: 0 });
      const lists = await admin.query('SHOW LISTS');
      expect(lists.rows.find((r) => r.list === 'used_clients')?.items).toBeGreaterThanOrEqual(2);
      const servers = await admin.query('SHOW SERVERS');
      expect(servers.rows.length).toBeGreaterThanOrEqual(1);
      const tenants = await admin.query('SHOW TENANTS');
      expect(tenants.rows.map((r) => Object.values(r)[0])).toEqual(expect.arrayContaining(['acme', 'globex', 'initech']));
      const stats = await admin.query('SHOW STATS');
      const acme = stats.rows.find((r) => r.tenant === 'acme');
      // numeric columns arrive as strings of digits; two round trips, two transactions.
      expect(acme).toMatchObject({ total_query_count: '2', total_xact_count: '2', statements: '2', rejected: '1' });
      expect(Number(acme?.total_query_time)).toBeGreaterThan(0);
      const config = await admin.query('SHOW CONFIG');
      const secret = config.rows.find((r) => r.key === 'jwt.secret');
      expect(config.rows.find((r) => r.key === 'pool.size')).toMatchObject({ value: '3', default: '20', changeable: 'yes' });
      expect(Object.values(secret ?? {})).toContain('********');
      expect(JSON.stringify(config.rows)).not.toContain(proxy.config.jwt.secret as string);
      const unknown = await admin.query('DROP TABLE x').catch((e: pg.DatabaseError) => e);
      expect((unknown as pg.DatabaseError).code).toBe('42601');
    } finally {
      await admin.end();
      await tenant.end();
    }
  });

  it('KILL TENANT disconnects that tenant only; PAUSE and RESUME hold and release new transactions', async () => {
    const victim = await proxy.connect('globex');
    const other = await proxy.connect('acme');
    const ended = new Promise<void>((resolve) => victim.once('end', () => resolve()));
    const admin = await consoleClient();
    try {
      await admin.query('KILL TENANT globex');
      await ended;
      expect((await other.query('SELECT 1 AS one')).rows[0].one).toBe(1);
      await admin.query('PAUSE');
      let ran = false;
      const held = other.query('SELECT 2 AS two').finally(() => (ran = true));
      // The pool shows the transaction waiting for a backend, and it has not run.
      await pollUntil('a client waiting in SHOW POOLS', async () =>
        (await admin.query('SHOW POOLS')).rows.find((r) => r.tenant === 'acme')?.cl_waiting === 1 ? true : undefined,
      );
      expect(ran).toBe(false);
      await admin.query('RESUME');
      expect((await held).rows[0].two).toBe(2);
    } finally {
      await admin.end();
      await other.end();
    }
  });

  it('RECONNECT closes every backend as it is released; new ones serve the next transactions', async () => {
    const client = await proxy.connect('acme');
    const admin = await consoleClient();
    try {
      const pid = async (): Promise<number> => (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number;
      const before = await pid();
      const servers = await admin.query('SHOW SERVERS');
      expect(servers.rows.map((r) => r.remote_pid)).toContain(before);
      expect(servers.rows.every((r) => r.close_needed === 0)).toBe(true);
      await admin.query('RECONNECT');
      const after = await pid();
      expect(after).not.toBe(before);
      const now = await admin.query('SHOW SERVERS');
      expect(now.rows.map((r) => r.remote_pid)).not.toContain(before);
    } finally {
      await admin.end();
      await client.end();
    }
  });

  it.skipIf(!havePsql)('prints tables in psql', async () => {
    const { stdout } = await run('psql', ['-X', '-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'ops', '-d', 'pgfence', '-c', 'SHOW POOLS', '-c', 'SHOW HELP'], {
      env: { ...process.env, PGPASSWORD: adminToken },
    });
    expect(stdout).toMatch(/transaction/);
    expect(stdout).toMatch(/KILL TENANT/i);
    // psql right-aligns numeric columns: the header row has PgBouncer's names.
    expect(stdout).toMatch(/database\s*\|\s*user\s*\|\s*cl_active\s*\|\s*cl_waiting/);
  });
});
