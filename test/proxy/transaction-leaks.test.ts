import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

/**
 * Transaction pooling hands a clean backend to the next client of the same tenant without
 * DISCARD ALL. Statements that may run code the guard cannot see (user functions, nextval...)
 * must mark the backend dirty, so whatever that code left in the session is gone for the next
 * client. One backend (pool.size 1), so client B is served by the very session client A used.
 */

let proxy: TestProxy;

beforeAll(async () => {
  proxy = await startTestProxy({ pool: { mode: 'transaction', size: 1 } });
  await proxy.direct(`
    CREATE FUNCTION tenant_acme.lk() RETURNS void LANGUAGE sql AS 'SELECT pg_advisory_lock(4246)';
    CREATE FUNCTION tenant_acme.mk_temp() RETURNS void LANGUAGE plpgsql AS $$ BEGIN CREATE TEMP TABLE leak_t (x int); END $$;
    CREATE FUNCTION tenant_acme.set_leak() RETURNS text LANGUAGE sql AS $$ SELECT set_config('app.leak', 'x', false) $$;
    CREATE FUNCTION tenant_acme.grow_work_mem() RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('work_mem', '17MB', false); END $$;`);
});
afterAll(async () => {
  await proxy?.close();
});

/** DISCARD ALL resets pgfence has run so far (successful ones). */
async function resets(): Promise<number> {
  const metric = await proxy.running.metrics.registry.getSingleMetric('pgfence_backend_resets_total')?.get();
  return metric?.values.find((v) => v.labels['result'] === 'ok')?.value ?? 0;
}

async function pidOf(client: pg.Client): Promise<number> {
  return (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number;
}

interface Handover {
  /** The server process that served A, and then B. */
  pidA: number;
  pidB: number;
  /** Resets between A's statement and B's connect. */
  resetsBetween: number;
  /** What A's last statement of `leave` returned, in A's own session. */
  seenByA: pg.QueryResultRow | undefined;
}

/**
 * Client A runs `leave` (one simple Query: its statements share one server session, so the last
 * one can show that the effect is there) and disconnects; client B of the same tenant then runs
 * `check` on the same backend. Resets are counted from A's connect to B's connect: both connects
 * wait for the single backend, so a reset started on A's release has finished by then.
 */
async function handover(leave: string, check: (b: pg.Client) => Promise<void>): Promise<Handover> {
  const a = await proxy.connect('acme');
  let pidA: number;
  let seenByA: pg.QueryResultRow | undefined;
  const before = await resets();
  try {
    const results = (await a.query(leave)) as unknown as pg.QueryResult[] | pg.QueryResult;
    const last = Array.isArray(results) ? results[results.length - 1] : results;
    seenByA = last?.rows[0];
    pidA = seenByA?.['pid'] as number;
  } finally {
    await a.end();
  }
  const b = await proxy.connect('acme');
  try {
    const resetsBetween = (await resets()) - before;
    const pidB = await pidOf(b);
    await check(b);
    return { pidA, pidB, resetsBetween, seenByA };
  } finally {
    await b.end();
  }
}

describe('transaction pooling: what hidden code leaves in a session does not reach the next client', () => {
  it('a session advisory lock taken inside a SQL function', async () => {
    let held = -1;
    const h = await handover(
      'SELECT lk(); SELECT pg_backend_pid() AS pid, (SELECT count(*)::int FROM pg_locks WHERE locktype = \'advisory\' AND objid = 4246 AND pid = pg_backend_pid()) AS held',
      async (b) => {
        // The guard refuses session advisory locks, so the check reads pg_locks, for B's own
        // session and (directly) for anyone in this database.
        const mine = await b.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 4246 AND pid = pg_backend_pid()");
        held = mine.rows[0]?.n as number;
        const anyone = await proxy.direct<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 4246 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        );
        held += anyone.rows[0]?.n as number;
      },
    );
    expect(h.seenByA?.['held']).toBe(1);
    expect(h.pidB).toBe(h.pidA);
    expect(held).toBe(0);
    expect(h.resetsBetween).toBe(1);
  });

  it('a temporary table created inside a plpgsql function', async () => {
    let seen: unknown = 'unchecked';
    const h = await handover("SELECT mk_temp(); SELECT pg_backend_pid() AS pid, to_regclass('pg_temp.leak_t')::text AS t", async (b) => {
      // to_regclass through pg_temp looks only in B's own temporary schema.
      seen = (await b.query("SELECT to_regclass('pg_temp.leak_t')::text AS t")).rows[0]?.t;
    });
    expect(h.seenByA?.['t']).toBe('leak_t');
    expect(h.pidB).toBe(h.pidA);
    expect(seen).toBeNull();
    expect(h.resetsBetween).toBe(1);
  });

  it('a custom setting set with set_config inside a SQL function', async () => {
    let seen: unknown = 'unchecked';
    const h = await handover("SELECT set_leak(); SELECT pg_backend_pid() AS pid, current_setting('app.leak', true) AS v", async (b) => {
      seen = (await b.query("SELECT current_setting('app.leak', true) AS v")).rows[0]?.v;
    });
    expect(h.seenByA?.['v']).toBe('x');
    expect(h.pidB).toBe(h.pidA);
    expect([null, '']).toContain(seen);
    expect(h.resetsBetween).toBe(1);
  });

  it('a server setting set with set_config inside a plpgsql function', async () => {
    let seen: unknown = 'unchecked';
    const h = await handover("SELECT grow_work_mem(); SELECT pg_backend_pid() AS pid, current_setting('work_mem') AS v", async (b) => {
      seen = (await b.query('SHOW work_mem')).rows[0]?.work_mem;
    });
    expect(h.seenByA?.['v']).toBe('17MB');
    expect(h.pidB).toBe(h.pidA);
    expect(seen).not.toBe('17MB');
    expect(h.resetsBetween).toBe(1);
  });

  it("the session's last sequence value (nextval)", async () => {
    let code: string | undefined = 'unchecked';
    const h = await handover("SELECT nextval('counter'); SELECT pg_backend_pid() AS pid, lastval() AS v", async (b) => {
      code = (await errorOf(b.query('SELECT lastval()'))).code;
    });
    expect(Number(h.seenByA?.['v'])).toBeGreaterThan(0);
    expect(h.pidB).toBe(h.pidA);
    expect(code).toBe('55000');
    expect(h.resetsBetween).toBe(1);
  });

  it('built-ins only: the next client gets the same session, not reset', async () => {
    let kept: unknown = 'unchecked';
    const a = await proxy.connect('acme');
    const before = await resets();
    let pidA: number;
    try {
      // A named statement is prepared on the server under pgfence's name; it survives only if
      // the session is handed over as it is (DISCARD ALL would drop it).
      const counted = await a.query<{ n: number; pid: number }>({ name: 'count_items', text: 'SELECT count(*)::int AS n, pg_backend_pid() AS pid FROM items WHERE $1::int IS NOT NULL', values: [1] });
      expect(counted.rows[0]?.n).toBe(2);
      pidA = counted.rows[0]?.pid as number;
    } finally {
      await a.end();
    }
    const b = await proxy.connect('acme');
    try {
      expect(await resets()).toBe(before);
      expect(await pidOf(b)).toBe(pidA);
      kept = (await b.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'pgfence_%'")).rows[0]?.n;
    } finally {
      await b.end();
    }
    expect(kept).toBe(1);
  });
});
