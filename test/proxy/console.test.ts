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
      expect(pools.rows).toHaveLength(1);
      expect(Object.values(pools.rows[0])).toContain('transaction');
      const servers = await admin.query('SHOW SERVERS');
      expect(servers.rows.length).toBeGreaterThanOrEqual(1);
      const tenants = await admin.query('SHOW TENANTS');
      expect(tenants.rows.map((r) => Object.values(r)[0])).toEqual(expect.arrayContaining(['acme', 'globex', 'initech']));
      const stats = await admin.query('SHOW STATS');
      const acme = stats.rows.find((r) => Object.values(r)[0] === 'acme');
      expect(acme).toBeDefined();
      const config = await admin.query('SHOW CONFIG');
      const secret = config.rows.find((r) => Object.values(r)[0] === 'jwt.secret');
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
      await pollUntil('a client waiting in SHOW POOLS', async () => ((await admin.query('SHOW POOLS')).rows[0]?.waiting === '1' ? true : undefined));
      expect(ran).toBe(false);
      await admin.query('RESUME');
      expect((await held).rows[0].two).toBe(2);
    } finally {
      await admin.end();
      await other.end();
    }
  });

  it.skipIf(!havePsql)('prints tables in psql', async () => {
    const { stdout } = await run('psql', ['-X', '-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'ops', '-d', 'pgfence', '-c', 'SHOW POOLS', '-c', 'SHOW HELP'], {
      env: { ...process.env, PGPASSWORD: adminToken },
    });
    expect(stdout).toMatch(/transaction/);
    expect(stdout).toMatch(/KILL TENANT/i);
  });
});
