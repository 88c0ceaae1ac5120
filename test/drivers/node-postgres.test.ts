import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import Cursor from 'pg-cursor';
import QueryStream from 'pg-query-stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TestProxy } from '../support/proxy.js';
import { WireClient } from '../support/wire.js';
import { collectNotifications, POOL_MODES, startDriverProxy } from './support.js';

/**
 * What node-postgres and its companions (pg-cursor, pg-query-stream, pg-copy-streams) do against
 * Postgres, through pgfence. Session pooling holds a backend per client (4 here): each test's
 * clients are ended after it.
 */
describe.each(POOL_MODES)('node-postgres through pgfence (%s pooling)', (mode) => {
  let proxy: TestProxy;
  const clients: pg.Client[] = [];

  beforeAll(async () => {
    proxy = await startDriverProxy(mode);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.end().catch(() => undefined)));
  });
  afterAll(async () => {
    await proxy?.close();
  });

  async function connect(tenant: string): Promise<pg.Client> {
    const client = await proxy.connect(tenant);
    clients.push(client);
    return client;
  }

  // LISTEN is refused in transaction pooling today (0A000): these state the desired behaviour.
  const itListen = it;

  it('reuses a named statement many times', async () => {
    const client = await connect('acme');
    const notes: string[] = [];
    for (let i = 0; i < 100; i++) {
      const r = await client.query<{ note: string }>({ name: 'item-note', text: 'SELECT note FROM items WHERE id = $1', values: [(i % 2) + 1] });
      notes.push(r.rows[0]?.note ?? '');
    }
    expect(notes.filter((n) => n === 'acme item 1')).toHaveLength(50);
    expect(notes.filter((n) => n === 'acme item 2')).toHaveLength(50);
  });

  it('keeps more than 250 distinct named statements of one client working, twice over', async () => {
    // Transaction pooling keeps at most pool.maxPreparedStatements (200) per backend and re-prepares
    // evicted ones; the client must not notice.
    const client = await connect('globex');
    const count = 260;
    for (let pass = 0; pass < 2; pass++) {
      const sums: number[] = [];
      for (let i = 0; i < count; i++) {
        const r = await client.query<{ n: number }>({ name: `plus-${i}`, text: `SELECT $1::int + ${i} AS n`, values: [pass * 1000] });
        sums.push(r.rows[0]?.n ?? -1);
      }
      expect(sums).toEqual(Array.from({ length: count }, (_, i) => pass * 1000 + i));
    }
    // What the server holds: all of them on the client's own backend, or at most the cap on a shared one.
    const held = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_prepared_statements');
    if (mode === 'session') expect(held.rows[0]?.n).toBe(count);
    else expect(held.rows[0]?.n).toBeLessThanOrEqual(200);
  });

  it('reads a pg-cursor in batches inside a transaction', async () => {
    const client = await connect('acme');
    await client.query('BEGIN');
    const cursor = client.query(new Cursor<{ n: number }>('SELECT g AS n FROM generate_series(1, 1000) g WHERE g % $1 = 0', [2]));
    const batches: number[] = [];
    let sum = 0;
    for (let i = 0; i < 100; i++) {
      const rows = await cursor.read(100);
      if (rows.length === 0) break;
      batches.push(rows.length);
      for (const row of rows) sum += row.n;
    }
    await cursor.close();
    const inside = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM items');
    await client.query('COMMIT');
    expect(batches).toEqual([100, 100, 100, 100, 100]);
    expect(sum).toBe(250_500); // 2 + 4 + … + 1000
    expect(inside.rows[0]?.n).toBe(2);
  });

  it('streams 50,000 rows with pg-query-stream', async () => {
    const client = await connect('umbrella');
    const stream = client.query(new QueryStream('SELECT g AS n, repeat($1, 20) AS pad FROM generate_series(1, 50000) g', ['x'], { batchSize: 500 }));
    let rows = 0;
    let sum = 0;
    let last = 0;
    let ordered = true;
    for await (const row of stream as AsyncIterable<{ n: number; pad: string }>) {
      rows++;
      sum += row.n;
      if (row.n !== last + 1 || row.pad.length !== 20) ordered = false;
      last = row.n;
    }
    expect(rows).toBe(50_000);
    expect(sum).toBe((50_000 * 50_001) / 2);
    expect(ordered).toBe(true);
    // The backend is usable afterwards (transaction mode: it went back to the pool at Sync).
    const after = await client.query<{ note: string }>('SELECT note FROM items ORDER BY id LIMIT 1');
    expect(after.rows[0]?.note).toBe('umbrella item 1');
  });

  it('copies rows in with COPY FROM STDIN and out with COPY TO STDOUT (pg-copy-streams)', async () => {
    const client = await connect('acme');
    const lines = Array.from({ length: 1000 }, (_, i) => `copied ${mode} ${i}\n`);
    await pipeline(Readable.from(lines), client.query(copyFrom('COPY items (note) FROM STDIN')));
    const counted = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM items WHERE note LIKE 'copied %'");
    expect(counted.rows[0]?.n).toBe(1000);
    // Outside the fence: the rows landed in acme's table, nowhere else.
    const landed = await proxy.direct<{ n: number }>("SELECT count(*)::int AS n FROM tenant_acme.items WHERE note LIKE 'copied %'");
    expect(landed.rows[0]?.n).toBe(1000);

    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        done();
      },
    });
    await pipeline(client.query(copyTo("COPY (SELECT note FROM items WHERE note LIKE 'copied %' ORDER BY id) TO STDOUT")), sink);
    expect(Buffer.concat(chunks).toString('utf8')).toBe(lines.join(''));
  });

  itListen('delivers a NOTIFY to a LISTEN of the same tenant, under its own channel name', async () => {
    const listener = await connect('acme');
    const notifier = await connect('acme');
    const inbox = collectNotifications(listener);
    await listener.query('LISTEN jobs');
    await notifier.query("NOTIFY jobs, 'job 42 done'");
    const [note] = await inbox.atLeast(1);
    expect(note?.channel).toBe('jobs');
    expect(note?.payload).toBe('job 42 done');
    // A NOTIFY without a payload reaches the same listener with an empty one.
    await notifier.query('NOTIFY jobs');
    const [, second] = await inbox.atLeast(2);
    expect(second?.channel).toBe('jobs');
    expect(second?.payload).toBe('');
  });

  itListen("keeps acme's notifications from a client of another tenant", async () => {
    const acmeListener = await connect('acme');
    const globex = await connect('globex');
    const acmeInbox = collectNotifications(acmeListener);
    const globexInbox = collectNotifications(globex);
    await acmeListener.query('LISTEN jobs');
    // The same name, and acme's channel spelled out as pgfence maps it on the server.
    await globex.query('LISTEN jobs; LISTEN "acme.jobs"');
    const acme = await connect('acme');
    await acme.query("NOTIFY jobs, 'for acme only'");
    expect((await acmeInbox.atLeast(1))[0]?.payload).toBe('for acme only');
    // The server delivers notifications in commit order: once globex sees its own later one,
    // acme's would have come before it if it were coming at all.
    await globex.query("NOTIFY jobs, 'globex own'");
    await globexInbox.atLeast(1);
    expect(globexInbox.received.map((n) => [n.channel, n.payload])).toEqual([['jobs', 'globex own']]);
    expect(acmeInbox.received.map((n) => n.payload)).toEqual(['for acme only']);
  });

  // node-postgres writes Terminate before its startup packet when end() follows connect() at once.
  // Postgres closes such a connection without a word; through pgfence it gets FATAL 08P01 today,
  // which rejects connect() (an unhandled rejection, a crash, where the app did not await it).
  it('lets a client end right after connect(), as Postgres does: no FATAL, no error event', async () => {
    const direct = await connectThenEnd({ connectionString: proxy.directUrl });
    expect(direct).toEqual({ errors: [], rejected: undefined });
    const through = await connectThenEnd(await proxy.clientConfig('acme'));
    expect(through).toEqual({ errors: [], rejected: undefined });

    // On the wire: Terminate as the very first message gets the socket closed and not one byte back.
    const wire = await WireClient.connect(proxy.port);
    wire.write(Buffer.from([0x58, 0, 0, 0, 4]));
    expect((await wire.untilClosed()).length).toBe(0);
  });
});

/** Calls connect() and end() back to back; what the client reported (errors emitted, connect's rejection). */
async function connectThenEnd(config: pg.ClientConfig): Promise<{ errors: unknown[]; rejected: unknown }> {
  const client = new pg.Client(config);
  const errors: unknown[] = [];
  client.on('error', (error) => errors.push(error));
  let rejected: unknown;
  void client.connect().catch((error: unknown) => {
    rejected = error;
  });
  await client.end();
  await new Promise((resolve) => setImmediate(resolve)); // a FATAL read before the close has been handled by now
  return { errors, rejected };
}
