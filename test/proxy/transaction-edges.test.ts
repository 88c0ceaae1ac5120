import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendConnection } from '../../src/backend/connection.js';
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
  it('a client that stops reading does not hand a paused backend to the next tenant', async () => {
    const slow = await readyWire('acme');
    slow.socket.pause();
    const unbind = BackendConnection.prototype.unbind;
    let releasedPaused = 0;
    BackendConnection.prototype.unbind = function (this: BackendConnection) {
      if ((this as unknown as { socket: { isPaused(): boolean } }).socket.isPaused()) releasedPaused++;
      unbind.call(this);
    };
    try {
      // One small transaction at a time, until pgfence stopped reading the backend for this
      // client (whose socket is full) just as the transaction ended and the backend went back.
      for (let i = 0; i < 20_000 && releasedPaused === 0; i++) {
        slow.write(message('Q', "SELECT repeat('x', 4000)\0"));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      expect(releasedPaused).toBeGreaterThan(0);
      const globex = await proxy.connect('globex');
      try {
        expect((await globex.query('SELECT owner FROM items LIMIT 1')).rows).toEqual([{ owner: 'globex' }]);
      } finally {
        await globex.end();
      }
    } finally {
      BackendConnection.prototype.unbind = unbind;
      slow.close();
    }
  }, 60_000);

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
