import type pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { authenticatedWire, errorOf } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { errorOfBody, type WireClient } from '../support/wire.js';

/**
 * Transaction pooling keeps each client's named statements under server names of pgfence's own,
 * at most pool.maxPreparedStatements per backend (least recently used closed first). One backend
 * (pool.size 1), so every client here shares the server session whose statements are counted.
 * A fresh proxy per test: each starts from a backend that holds no statement.
 */

const CAP = 3;
let proxy: TestProxy;

beforeEach(async () => {
  proxy = await startTestProxy({ pool: { mode: 'transaction', size: 1, maxPreparedStatements: CAP } });
});
afterEach(async () => {
  await proxy?.close();
});

interface Held {
  statement: string;
  /** Changes whenever the server statement is prepared again. */
  prepared: string;
}

/** pgfence's statements on the backend serving `client` (a simple Query: it prepares nothing). */
async function held(client: pg.Client): Promise<Held[]> {
  const r = await client.query<Held>(
    "SELECT statement, prepare_time::text AS prepared FROM pg_prepared_statements WHERE name LIKE 'pgfence_%' ORDER BY statement",
  );
  return r.rows;
}

async function heldByWire(wire: WireClient): Promise<Held[]> {
  const rows = await simple(wire, "SELECT statement, prepare_time::text FROM pg_prepared_statements WHERE name LIKE 'pgfence_%' ORDER BY statement");
  return rows.map(([statement, prepared]) => ({ statement: statement as string, prepared: prepared as string }));
}

/** Runs one simple Query on a raw client; the text columns of its rows. */
async function simple(wire: WireClient, sql: string): Promise<Array<Array<string | null>>> {
  wire.write(serialize.query(sql));
  const replies = await wire.until('Z');
  const error = replies.find((m) => m.type === 'E');
  if (error !== undefined) throw new Error(errorOfBody(error.body).message);
  return replies.filter((m) => m.type === 'D').map((m) => dataRow(m.body));
}

function dataRow(body: Buffer): Array<string | null> {
  const columns = body.readInt16BE(0);
  const values: Array<string | null> = [];
  let offset = 2;
  for (let i = 0; i < columns; i++) {
    const length = body.readInt32BE(offset);
    offset += 4;
    if (length < 0) {
      values.push(null);
    } else {
      values.push(body.toString('utf8', offset, offset + length));
      offset += length;
    }
  }
  return values;
}

/** Bind + Execute of a named statement, unnamed portal. */
const run = (statement: string): Buffer[] => [serialize.bind({ statement, values: [] }), serialize.execute({ portal: '', rows: 0 })];

/** What a batch got back: the messages' types in order, its error's SQLSTATE, and the first column of its rows. */
async function batch(wire: WireClient, messages: Buffer[]): Promise<{ types: string; error: string | null; values: Array<string | null> }> {
  wire.write(Buffer.concat([...messages, serialize.sync()]));
  const replies = await wire.until('Z');
  const error = replies.find((m) => m.type === 'E');
  return {
    types: replies.map((m) => m.type).join(''),
    error: error === undefined ? null : errorOfBody(error.body).code,
    values: replies.filter((m) => m.type === 'D').map((m) => dataRow(m.body)[0] ?? null),
  };
}

describe('transaction pooling: the per-backend prepared statement cap', () => {
  it('keeps at most the cap, the least recently used closed first, and re-prepares evicted statements transparently', async () => {
    const client = await proxy.connect('acme');
    try {
      const text = (k: number): string => `SELECT $1::int + ${k} AS n`;
      const used: number[] = [];
      const use = async (k: number, value: number): Promise<void> => {
        const r = await client.query<{ n: number }>({ name: `q${k}`, text: text(k), values: [value] });
        expect(r.rows, `q${k}`).toEqual([{ n: value + k }]);
        used.push(k);
        // Exactly the CAP statements used last, distinct, are on the server.
        const recent = [...new Set([...used].reverse())].slice(0, CAP);
        const onServer = (await held(client)).map((h) => h.statement);
        expect(onServer, `after q${k}`).toEqual(recent.map(text).sort());
      };
      for (let k = 1; k <= 10; k++) await use(k, 100 * k);
      // node-postgres believes all ten are prepared and now sends only Bind and Execute.
      for (const k of [7, 2, 9, 1, 10, 4, 3, 8, 5, 6, 6, 1, 6]) await use(k, 7 * k);
    } finally {
      await client.end();
    }
  });

  it('an error at Execute forgets no statement: older ones are reused as they are', async () => {
    const client = await proxy.connect('acme');
    try {
      const double = { name: 'double', text: 'SELECT $1::int * 2 AS n' };
      const triple = { name: 'triple', text: 'SELECT $1::int * 3 AS n' };
      expect((await client.query({ ...double, values: [5] })).rows).toEqual([{ n: 10 }]);
      expect((await client.query({ ...triple, values: [5] })).rows).toEqual([{ n: 15 }]);
      const before = await held(client);
      expect(before.map((h) => h.statement)).toEqual([double.text, triple.text]);

      const err = await errorOf(client.query({ name: 'divide', text: 'SELECT 10 / $1::int AS n', values: [0] }));
      expect(err.code).toBe('22012');

      expect((await client.query({ ...double, values: [6] })).rows).toEqual([{ n: 12 }]);
      expect((await client.query({ ...triple, values: [6] })).rows).toEqual([{ n: 18 }]);
      const after = await held(client);
      // Still there, and not prepared again (same prepare_time); the failed statement's Parse did succeed.
      for (const h of before) expect(after, h.statement).toContainEqual(h);
      expect(after.map((h) => h.statement)).toContain('SELECT 10 / $1::int AS n');
      expect(after.length).toBeLessThanOrEqual(CAP);
    } finally {
      await client.end();
    }
  });

  it('a failed Parse in a batch forgets only the statements the server then skipped', async () => {
    const wire = await authenticatedWire(proxy, 'acme');
    try {
      const text = (k: number): string => `SELECT ${k} AS n`;
      // s1..s4 prepared in one batch: s1 is evicted by the cap, s2, s3, s4 stay.
      const prepared = await batch(wire, [1, 2, 3, 4].map((k) => serialize.parse({ name: `s${k}`, text: text(k), types: [] })));
      expect(prepared).toEqual({ types: '1111Z', error: null, values: [] });
      const before = await heldByWire(wire);
      expect(before.map((h) => h.statement)).toEqual([2, 3, 4].map(text));

      // The server refuses the Parse (the guard lets it through: the column is simply unknown), and
      // skips the rest of the batch, the Parse pgfence puts in front of the evicted s1 included.
      const failed = await batch(wire, [serialize.parse({ name: 'bad', text: 'SELECT no_such_column FROM items', types: [] }), ...run('s1')]);
      expect(failed).toEqual({ types: 'EZ', error: '42703', values: [] });

      // s4 was not touched: reused as it is. s1 (skipped) and s2 (closed to make room) are prepared again.
      const s4 = await batch(wire, run('s4'));
      expect(s4).toEqual({ types: '2DCZ', error: null, values: ['4'] });
      const middle = await heldByWire(wire);
      expect(middle).toContainEqual(before.find((h) => h.statement === text(4)));
      for (const k of [1, 2, 3, 4]) {
        const again = await batch(wire, run(`s${k}`));
        expect(again, `s${k}`).toEqual({ types: '2DCZ', error: null, values: [String(k)] });
      }
    } finally {
      wire.close();
    }
  });

  it('a Parse the guard refuses in a batch changes nothing on the server', async () => {
    const wire = await authenticatedWire(proxy, 'acme');
    try {
      const text = (k: number): string => `SELECT ${k} AS n`;
      await batch(wire, [1, 2].map((k) => serialize.parse({ name: `s${k}`, text: text(k), types: [] })));
      const before = await heldByWire(wire);
      expect(before.map((h) => h.statement)).toEqual([1, 2].map(text));

      const refused = await batch(wire, [serialize.parse({ name: 'bad', text: 'SELEC 1', types: [] }), ...run('s1')]);
      expect(refused.error).toBe('42601');
      expect(refused.types).toBe('EZ');

      expect(await batch(wire, run('s1'))).toEqual({ types: '2DCZ', error: null, values: ['1'] });
      expect(await heldByWire(wire)).toEqual(before);
    } finally {
      wire.close();
    }
  });

  // Known bug: prepare() (src/relay/client-to-server.ts) drops an evicted statement from the
  // backend's list when it queues its Close; when an earlier error makes the server skip that
  // Close, the server keeps the statement and pgfence no longer counts it: one more per such
  // error (observed counts 4, 5, 6 for a cap of 3), until a reset or a re-Parse of that text.
  it('errors never let the server hold more statements than the cap', async () => {
    const wire = await authenticatedWire(proxy, 'acme');
    try {
      const text = (k: number): string => `SELECT ${k} AS n`;
      let next = 1;
      const fill = async (): Promise<void> => {
        for (let i = 0; i < CAP; i++, next++) {
          const r = await batch(wire, [serialize.parse({ name: `s${next}`, text: text(next), types: [] }), ...run(`s${next}`)]);
          expect(r.error).toBeNull();
        }
      };
      await fill();
      const counts: number[] = [];
      for (let round = 0; round < 3; round++) {
        // The failed Parse makes the server skip the Close pgfence sends to evict a statement
        // for the (skipped) re-Parse of the oldest one; pgfence no longer counts the statement.
        const failed = await batch(wire, [serialize.parse({ name: `bad${round}`, text: 'SELECT no_such_column FROM items', types: [] }), ...run(`s${next - CAP}`)]);
        expect(failed.error).toBe('42703');
        await fill();
        counts.push((await heldByWire(wire)).length);
      }
      expect(counts).toEqual([CAP, CAP, CAP]);
    } finally {
      wire.close();
    }
  });

  it('two clients of a tenant alternating on one backend share the server statement', async () => {
    const x = await proxy.connect('acme');
    const y = await proxy.connect('acme');
    try {
      const text = 'SELECT $1::int - 1 AS n';
      expect((await x.query({ name: 'minus', text, values: [10] })).rows).toEqual([{ n: 9 }]);
      // Another client name, the same text: the same server statement.
      expect((await y.query({ name: 'dec', text, values: [20] })).rows).toEqual([{ n: 19 }]);
      const shared = await held(y);
      expect(shared.map((h) => h.statement)).toEqual([text]);
      for (let i = 0; i < 4; i++) {
        expect((await x.query({ name: 'minus', text, values: [i] })).rows).toEqual([{ n: i - 1 }]);
        expect((await y.query({ name: 'dec', text, values: [i + 100] })).rows).toEqual([{ n: i + 99 }]);
      }
      // Both now send only Bind and Execute: the one statement is used as it is, never prepared again.
      expect(await held(x)).toEqual(shared);
      expect(await held(y)).toEqual(shared);
    } finally {
      await Promise.all([x.end(), y.end()]);
    }
  });
});
