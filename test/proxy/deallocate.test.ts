import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

// Transaction pooling over one backend: the client's protocol statements live under pgfence's names.
let proxy: TestProxy;

beforeAll(async () => {
  proxy = await startTestProxy({ pool: { mode: 'transaction', size: 1, acquireTimeoutMs: 5_000 } });
});
afterAll(async () => {
  await proxy?.close();
});

const named = (c: pg.Client, name: string, text: string): Promise<pg.QueryResult> => c.query({ name, text });

describe('SQL DEALLOCATE in transaction pooling names the client’s own statements', () => {
  it('DEALLOCATE name drops that statement: the client may prepare the name again, other clients keep theirs', async () => {
    const a = await proxy.connect('acme');
    const b = await proxy.connect('acme');
    try {
      expect((await named(a, 'q1', 'SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      expect((await named(b, 'q1', 'SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      await a.query('DEALLOCATE q1');
      // node-postgres remembers q1 as prepared: a new Parse under the same name must be accepted.
      expect((await a.query({ name: 'q1b', text: 'SELECT 2 AS n' })).rows).toEqual([{ n: 2 }]);
      expect((await named(b, 'q1', 'SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    } finally {
      await a.end();
      await b.end();
    }
  });

  it('DEALLOCATE of a name the client never prepared fails as on Postgres, naming the client’s name only', async () => {
    const c = await proxy.connect('acme');
    try {
      const err = await errorOf(c.query('DEALLOCATE never_prepared'));
      expect(err.code).toBe('26000');
      expect(err.message).toContain('never_prepared');
      expect(err.message).not.toContain('pgfence_');
    } finally {
      await c.end();
    }
  });

  it('DEALLOCATE ALL forgets every statement of the client and nothing breaks for the others', async () => {
    const a = await proxy.connect('acme');
    const b = await proxy.connect('acme');
    try {
      await named(a, 'x1', 'SELECT 10 AS n');
      await named(a, 'x2', 'SELECT 20 AS n');
      await named(b, 'y1', 'SELECT 30 AS n');
      const held = async (): Promise<number> =>
        (await a.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'pgfence_%'")).rows[0].n;
      expect(await held()).toBeGreaterThanOrEqual(3);
      await a.query('DEALLOCATE ALL');
      expect(await held()).toBe(0);
      // b's statement is prepared again, unseen, on the backend that lost it.
      expect((await named(b, 'y1', 'SELECT 30 AS n')).rows).toEqual([{ n: 30 }]);
      expect((await a.query({ name: 'x3', text: 'SELECT 40 AS n' })).rows).toEqual([{ n: 40 }]);
    } finally {
      await a.end();
      await b.end();
    }
  });
});
