import { once } from 'node:events';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authenticatedWire, backendGone, pollUntil } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { message, sendCancelRequest, splitMessages, type WireClient } from '../support/wire.js';

let proxy: TestProxy;

beforeAll(async () => {
  proxy = await startTestProxy({ pool: { size: 4, acquireTimeoutMs: 5_000 } });
});
afterAll(async () => {
  await proxy?.close();
});

async function withTenant<T>(tenant: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await proxy.connect(tenant);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`);
}

const readyWire = (tenant: string): Promise<WireClient> => authenticatedWire(proxy, tenant);

describe('protocol paths through pgfence', () => {
  it('runs multi-statement simple queries and returns every result', async () => {
    await withTenant('acme', async (client) => {
      const results = (await client.query('SELECT 1 AS a; SELECT owner FROM items LIMIT 1; SELECT 3 AS c')) as unknown as pg.QueryResult[];
      expect(results.map((r) => r.rows[0])).toEqual([{ a: 1 }, { owner: 'acme' }, { c: 3 }]);
    });
  });

  it('relays errors and notices from the server with their SQLSTATE', async () => {
    await withTenant('acme', async (client) => {
      const notices: string[] = [];
      client.on('notice', (n) => notices.push(n.message ?? ''));
      await client.query("DO $$ BEGIN RAISE NOTICE 'hello from acme'; END $$");
      expect(notices).toContain('hello from acme');
      const err = await client.query('SELECT 1/0').catch((e: pg.DatabaseError) => e);
      expect((err as pg.DatabaseError).code).toBe('22012');
      const ok = await client.query('SELECT 2 AS two');
      expect(ok.rows[0].two).toBe(2);
    });
  });

  it('pipelines extended-protocol batches with Parse/Bind/Describe/Execute/Close/Sync', async () => {
    const wire = await readyWire('acme');
    try {
      const int4 = Buffer.alloc(2 + 2 + 4 + 2);
      int4.writeInt16BE(0, 0); // no parameter format codes
      int4.writeInt16BE(1, 2); // one parameter
      int4.writeInt32BE(1, 4);
      const bindBody = Buffer.concat([cstr(''), cstr('s1'), Buffer.from([0, 0, 0, 1, 0, 0, 0, 1]), Buffer.from('2'), Buffer.from([0, 0])]);
      wire.write(Buffer.concat([
        message('P', Buffer.concat([cstr('s1'), cstr('SELECT note FROM items WHERE id = $1'), Buffer.from([0, 0])])),
        message('B', bindBody),
        message('D', Buffer.concat([Buffer.from('P'), cstr('')])),
        message('E', Buffer.concat([cstr(''), Buffer.from([0, 0, 0, 0])])),
        message('C', Buffer.concat([Buffer.from('S'), cstr('s1')])),
        message('S', ''),
        message('Q', cstr('SELECT 42')),
      ]));
      await wire.until('Z');
      const all = splitMessages(await wire.bytes(0));
      const types = all.map((m) => m.type).join('');
      expect(types).toContain('12TDC3Z');
      const row = all.find((m) => m.type === 'D');
      expect(row?.body.toString()).toContain('acme item 2');
    } finally {
      wire.close();
    }
  });

  it('COPY FROM STDIN and COPY TO STDOUT work', async () => {
    const writer = await readyWire('globex');
    try {
      writer.write(message('Q', cstr('CREATE TABLE copy_in (id int, note text); COPY copy_in FROM STDIN')));
      await writer.until('G');
      writer.write(Buffer.concat([message('d', '1\tone\n'), message('d', '2\ttwo\n'), message('c', '')]));
      const done = await writer.until('Z');
      expect(done.map((m) => m.type)).toContain('C');
      writer.write(message('Q', cstr('SELECT count(*) FROM copy_in')));
      const counted = await writer.until('Z');
      expect(counted.find((m) => m.type === 'D')?.body.subarray(6).toString()).toBe('2');
    } finally {
      writer.close();
    }
    const wire = await readyWire('globex');
    try {
      wire.write(message('Q', cstr('COPY (SELECT owner FROM items ORDER BY id) TO STDOUT')));
      const all = await wire.until('Z');
      const data = all.filter((m) => m.type === 'd').map((m) => m.body.toString()).join('');
      expect(data).toBe('globex\nglobex\n');
      expect(all.map((m) => m.type)).toContain('H');
    } finally {
      wire.close();
    }
  });

  it('delivers LISTEN/NOTIFY between sessions of the same tenant, under the names the client used', async () => {
    const listener = await proxy.connect('acme');
    try {
      await listener.query('LISTEN jobs');
      const got = once(listener, 'notification');
      await withTenant('acme', (c) => c.query("NOTIFY jobs, 'job 1'"));
      const [note] = (await got) as [pg.Notification];
      expect(note.channel).toBe('jobs');
      expect(note.payload).toBe('job 1');
      // Its own notification carries the process id pgfence gave it, as Postgres would.
      const own = once(listener, 'notification');
      await listener.query("NOTIFY jobs, 'self'");
      const [self] = (await own) as [pg.Notification];
      expect(self.processId).toBe((listener as unknown as { processID: number }).processID);
    } finally {
      await listener.end();
    }
  });

  it('keeps channels tenant-private: another tenant can neither hear nor forge them', async () => {
    const acme = await proxy.connect('acme');
    const heard: string[] = [];
    acme.on('notification', (n) => heard.push(`${n.channel}:${n.payload}`));
    const ownArrived = new Promise<void>((resolve) => acme.on('notification', (n) => n.payload === 'from acme' && resolve()));
    try {
      await acme.query('LISTEN jobs');
      await withTenant('globex', async (c) => {
        await c.query("NOTIFY jobs, 'from globex'");
        await c.query(`NOTIFY "acme.jobs", 'forged'`);
        // pg_notify's channel is the tenant's own too: this one is globex's "acme.jobs".
        await c.query("SELECT pg_notify('acme.jobs', 'forged')");
        await c.query({ text: 'SELECT pg_notify($1, $2)', values: ['jobs', 'forged by parameter'] });
        const computed = await c.query("SELECT pg_notify('jo' || 'bs', 'forged')").catch((e: pg.DatabaseError) => e);
        expect((computed as pg.DatabaseError).code).toBe('42501');
        const inDo = await c.query("DO $$ BEGIN NOTIFY jobs, 'x'; END $$").catch((e: pg.DatabaseError) => e);
        expect((inDo as pg.DatabaseError).code).toBe('42501');
      });
      await withTenant('acme', (c) => c.query("SELECT 1; NOTIFY jobs, 'from acme'; SELECT 2"));
      // A listener gets notifications in commit order, and globex's all committed before acme's:
      // once acme's own has arrived, any of them that leaked through has arrived before it.
      await ownArrived;
      expect(heard).toEqual(['jobs:from acme']);
      // On the server the session listens on the tenant-private name.
      const channels = await acme.query('SELECT pg_listening_channels() AS c');
      expect(channels.rows.map((r) => r.c)).toEqual(['acme.jobs']);
    } finally {
      await acme.end();
    }
  });

  it('carries values of tens of megabytes both ways', async () => {
    await withTenant('acme', async (client) => {
      const big = 'x'.repeat(24 * 1024 * 1024);
      const r = await client.query('SELECT length($1::text) AS n, $1::text AS echo', [big]);
      expect(r.rows[0].n).toBe(big.length);
      expect(r.rows[0].echo === big).toBe(true);
    });
  });

  it('routes a CancelRequest with the pgfence-issued key to the right backend', async () => {
    await withTenant('acme', async (client) => {
      const started = Date.now();
      const slow = client.query('SELECT pg_sleep(20)').catch((e: pg.DatabaseError) => e);
      // Cancel only once the query runs on the backend: a cancel that comes before it cancels nothing.
      const backendPid = await pollUntil('pg_sleep(20) running on a backend', async () => {
        const running = await proxy.direct<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query = 'SELECT pg_sleep(20)'",
        );
        return running.rows[0]?.pid;
      });
      // The key node-postgres got at startup is pgfence's, not the backend's.
      const key = client as unknown as { processID: number; secretKey: number };
      expect(backendPid).toBeGreaterThan(0);
      expect(key.processID).not.toBe(backendPid);
      await sendCancelRequest(proxy.port, key.processID, key.secretKey);
      const err = (await slow) as pg.DatabaseError;
      expect(err.code).toBe('57014');
      expect(Date.now() - started).toBeLessThan(10_000);
      const after = await client.query('SELECT 1 AS one');
      expect(after.rows[0].one).toBe(1);
    });
  });

  it('a backend crash ends the client session with an error, and the pool drops it', async () => {
    const victim = await proxy.connect('acme');
    const pid = (await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const ended = new Promise((resolve) => victim.once('end', resolve));
    await proxy.direct('SELECT pg_terminate_backend($1)', [pid]);
    await ended;
    await withTenant('acme', async (client) => {
      const r = await client.query('SELECT pg_backend_pid() AS pid');
      expect(r.rows[0].pid).not.toBe(pid);
    });
  });

  it('a client that vanishes mid-transaction gets its backend closed, not reused', async () => {
    const wire = await readyWire('acme');
    wire.write(message('Q', cstr("BEGIN; INSERT INTO items (note) VALUES ('uncommitted'); SELECT pg_backend_pid()")));
    const all = await wire.until('Z');
    const pidRow = all.find((m) => m.type === 'D') as { body: Buffer };
    const pid = Number(pidRow.body.subarray(6).toString());
    wire.close();
    expect(await backendGone(proxy, pid)).toBe(true);
    const rows = await proxy.direct<{ n: number }>("SELECT count(*)::int AS n FROM tenant_acme.items WHERE note = 'uncommitted'");
    expect(rows.rows[0]?.n).toBe(0);
  });
});
