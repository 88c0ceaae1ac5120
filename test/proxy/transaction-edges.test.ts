import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticatedWire, errorOf } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { errorOfBody, message, type WireClient } from '../support/wire.js';

// Transaction pooling over a single backend: every client of every tenant takes turns on it.
let proxy: TestProxy;

beforeAll(async () => {
  proxy = await startTestProxy({ pool: { mode: 'transaction', size: 1, acquireTimeoutMs: 5_000, resetTimeoutMs: 2_000 } });
});
afterAll(async () => {
  await proxy?.close();
});

const readyWire = (tenant: string): Promise<WireClient> => authenticatedWire(proxy, tenant);

describe('transaction pooling edges', () => {
  it('stops reading from the server for a client that stops reading, and frees the backend when it goes', async () => {
    const slow = await readyWire('acme');
    slow.socket.pause();
    const executed = async (): Promise<number> => Number((await proxy.direct('SELECT last_value FROM tenant_acme.counter')).rows[0]?.last_value);
    const before = await executed();
    // 40 MB of answers the client never reads, pipelined: one batch that holds the single backend.
    slow.write(Buffer.concat(Array.from({ length: 10_000 }, () => message('Q', "SELECT nextval('counter'), repeat('x', 4000)\0"))));
    // Wait until the server has run some of them, then until it stops: pgfence no longer reads what
    // the server sends for this client, so the server blocks on its socket.
    let last = before;
    for (let i = 0; i < 10_000 && last === before; i++) last = await executed();
    let stable = 0;
    for (let i = 0; i < 10_000 && stable < 20; i++) {
      const now = await executed();
      stable = now === last ? stable + 1 : 0;
      last = now;
    }
    expect(stable).toBe(20);
    expect(last - before).toBeLessThan(10_000);
    slow.close();
    // The backend was mid-batch: it is closed, not reused, and the next client gets a fresh one.
    const globex = await proxy.connect('globex');
    try {
      expect((await globex.query('SELECT owner FROM items LIMIT 1')).rows).toEqual([{ owner: 'globex' }]);
    } finally {
      await globex.end();
    }
  });

  it('replaces backends killed while idle in the pool: every next client of every tenant is served', async () => {
    for (let round = 0; round < 5; round++) {
      const tenant = round % 2 === 0 ? 'acme' : 'globex';
      const c = await proxy.connect(tenant);
      const pid = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      await c.end();
      // The single backend now sits idle in the pool; its server process goes away under it.
      await proxy.direct('SELECT pg_terminate_backend($1)', [pid]);
      const next = await proxy.connect(round % 2 === 0 ? 'globex' : 'acme');
      try {
        const r = await next.query('SELECT owner FROM items LIMIT 1');
        expect(r.rows).toEqual([{ owner: round % 2 === 0 ? 'globex' : 'acme' }]);
      } finally {
        await next.end();
      }
    }
  });

  it("never lets a client bind the unnamed statement another client left on the backend", async () => {
    const int16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
    const parse = (sql: string): Buffer => message('P', Buffer.concat([Buffer.from(`\0${sql}\0`), int16(0)]));
    const bind = message('B', Buffer.concat([Buffer.from('\0\0'), int16(0), int16(0), int16(0)]));
    const execute = (portal: string): Buffer => message('E', Buffer.concat([Buffer.from(`${portal}\0`), Buffer.alloc(4)]));
    const sync = message('S', '');
    const first = await readyWire('acme');
    const second = await readyWire('acme');
    try {
      first.write(Buffer.concat([parse('SELECT secret FROM secrets'), sync]));
      await first.until('Z');
      // The failing Execute makes the server skip this client's Parse up to Sync, so only the
      // previous client's unnamed statement could be on the backend when the Bind comes.
      second.write(Buffer.concat([execute('nope'), parse('SELECT 1'), sync, bind, execute(''), sync]));
      const replies = [...(await second.until('Z')), ...(await second.until('Z'))];
      const rows = replies.filter((m) => m.type === 'D').map((m) => m.body.toString('latin1'));
      expect(rows.join('')).not.toContain('acme-secret');
      expect(replies.filter((m) => m.type === 'E').map((m) => errorOfBody(m.body).code)).toEqual(['34000', '26000']);
    } finally {
      first.close();
      second.close();
    }
  });

  it('prepares a named statement again after an error made pgfence forget what the backend holds', async () => {
    const first = await proxy.connect('acme');
    const second = await proxy.connect('acme');
    try {
      await first.query({ name: 'one', text: 'SELECT 1 AS one' });
      await errorOf(first.query('SELECT 1/0'));
      expect((await first.query({ name: 'uno', text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
      expect((await second.query({ name: 'one', text: 'SELECT 1 AS one' })).rows).toEqual([{ one: 1 }]);
    } finally {
      await first.end();
      await second.end();
    }
  });

  it('does not replay settings of one transaction (SET transaction_isolation) on the next backend', async () => {
    const c = await proxy.connect('acme');
    try {
      await c.query("SET transaction_isolation = 'serializable'");
      await c.query('SET transaction_deferrable = on');
      await c.query("SELECT set_config('transaction_read_only', 'on', false)");
      // Another tenant moves the backend: acme's next transaction gets a fresh pin.
      const globex = await proxy.connect('globex');
      await globex.query('SELECT 1');
      await globex.end();
      const r = await c.query("SELECT current_setting('transaction_isolation') AS iso, owner FROM items LIMIT 1");
      expect(r.rows).toEqual([{ iso: 'read committed', owner: 'acme' }]);
    } finally {
      await c.end();
    }
  });

  it('refuses tables and sequences created in pg_temp by name, like TEMP ones', async () => {
    const c = await proxy.connect('acme');
    try {
      for (const sql of ['CREATE TABLE pg_temp.scratch (x int)', 'CREATE TABLE pg_temp.scratch AS SELECT 1 AS x', 'CREATE SEQUENCE pg_temp.s', 'CREATE VIEW pg_temp.v AS SELECT 1']) {
        const err = await errorOf(c.query(sql));
        expect(err.code, sql).toBe('0A000');
      }
      await c.query('BEGIN');
      await c.query('CREATE TABLE pg_temp.scratch (x int) ON COMMIT DROP');
      await c.query('COMMIT');
    } finally {
      await c.end();
    }
  });
});
