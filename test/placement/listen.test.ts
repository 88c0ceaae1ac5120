import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase, withClient } from '../support/db.js';
import { pollUntil } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { SEED_SQL } from '../support/seed.js';

/** The next notification the client receives. */
function nextNotification(client: pg.Client): Promise<pg.Notification> {
  return new Promise((resolve) => client.once('notification', resolve));
}

/**
 * Transaction pooling's LISTEN over two targets: a tenant's notifications come from the database
 * its data lives in, through a listener connection opened there on demand.
 */
describe('LISTEN / NOTIFY for tenants on two targets (transaction pooling)', () => {
  let eu: TestDatabase;
  let proxy: TestProxy;
  let defaultDb: string;

  beforeAll(async () => {
    eu = await createTestDatabase('listen_eu');
    await withClient(eu.url, (c) => c.query(SEED_SQL));
    proxy = await startTestProxy({
      pool: { mode: 'transaction', size: 2, acquireTimeoutMs: 5_000 },
      backends: { eu: { url: eu.url, pool: { size: 2 } } },
      tenancy: {
        tenants: [{ id: 'acme' }, { id: 'globex', placement: { target: 'eu' } }, { id: 'umbrella', placement: { target: 'eu' } }],
      },
    });
    defaultDb = new URL(proxy.directUrl).pathname.slice(1);
  });

  afterAll(async () => {
    await proxy?.close();
    await eu?.drop();
  });

  /**
   * Waits until the connections whose last statement was `sql` are in exactly `databases` (both
   * databases are on the one server), and says whether they came to be. The pool backend that ran
   * the client's own LISTEN shows it too until its reset starts, hence the wait.
   */
  async function runningIn(sql: string, databases: string[]): Promise<boolean> {
    return pollUntil(`${sql} running in ${databases.join(', ')}`, async () => {
      const r = await proxy.direct<{ datname: string }>('SELECT datname FROM pg_stat_activity WHERE query = $1 ORDER BY datname', [sql]);
      return JSON.stringify(r.rows.map((row) => row.datname)) === JSON.stringify(databases) ? true : undefined;
    }, 1_000);
  }

  it("a tenant on eu gets a NOTIFY sent directly on eu's database, through a listener on eu, not on default", async () => {
    const globex = await proxy.connect('globex');
    try {
      await globex.query('LISTEN jobs');
      expect(await runningIn('LISTEN "globex.jobs"', [eu.name])).toBe(true);
      const received = nextNotification(globex);
      await withClient(eu.url, (c) => c.query(`NOTIFY "globex.jobs", 'from eu'`));
      const n = await received;
      expect(n.channel).toBe('jobs');
      expect(n.payload).toBe('from eu');
      // And one through pgfence, from another client of the tenant.
      const sender = await proxy.connect('globex');
      const again = nextNotification(globex);
      await sender.query(`NOTIFY jobs, 'through pgfence'`);
      expect((await again).payload).toBe('through pgfence');
      await sender.end();
    } finally {
      await globex.end();
    }
  });

  it('a tenant on default is served by the default listener as before', async () => {
    const acme = await proxy.connect('acme');
    const sender = await proxy.connect('acme');
    try {
      await acme.query('LISTEN jobs');
      expect(await runningIn('LISTEN "acme.jobs"', [defaultDb])).toBe(true);
      const received = nextNotification(acme);
      await sender.query(`NOTIFY jobs, 'acme job'`);
      const n = await received;
      expect(n.channel).toBe('jobs');
      expect(n.payload).toBe('acme job');
    } finally {
      await acme.end();
      await sender.end();
    }
  });

  it("never delivers another tenant's notification, whatever channel name a tenant listens on", async () => {
    const globex = await proxy.connect('globex');
    const umbrella = await proxy.connect('umbrella');
    const acme = await proxy.connect('acme');
    const senders = { acme: await proxy.connect('acme'), umbrella: await proxy.connect('umbrella'), globex: await proxy.connect('globex') };
    try {
      // globex tries to listen to the others' channels by their server names; umbrella (same target) and acme listen on "jobs" too.
      await globex.query('LISTEN jobs');
      await globex.query('LISTEN "acme.jobs"');
      await globex.query('LISTEN "umbrella.jobs"');
      await umbrella.query('LISTEN jobs');
      await acme.query('LISTEN jobs');
      const seenByGlobex: string[] = [];
      globex.on('notification', (n) => seenByGlobex.push(`${n.channel}:${n.payload ?? ''}`));
      const umbrellaGot = nextNotification(umbrella);
      const acmeGot = nextNotification(acme);
      await senders.umbrella.query(`NOTIFY jobs, 'umbrella job'`);
      await senders.acme.query(`NOTIFY jobs, 'acme job'`);
      // A NOTIFY on another tenant's server channel, sent through pgfence, stays in the sender's own namespace.
      await senders.umbrella.query(`NOTIFY "globex.jobs", 'forged'`);
      // Sent directly on eu's database: reaches umbrella, whose channel it is, and nobody else.
      await withClient(eu.url, (c) => c.query(`NOTIFY "umbrella.jobs", 'direct for umbrella'`));
      expect((await umbrellaGot).payload).toBe('umbrella job');
      expect((await acmeGot).payload).toBe('acme job');
      // globex's own notification goes through eu's listener after everything sent on eu above:
      // once globex has it, any of those would have reached it first.
      const own = nextNotification(globex);
      await senders.globex.query(`NOTIFY jobs, 'globex job'`);
      await own;
      expect(seenByGlobex).toEqual(['jobs:globex job']);
    } finally {
      for (const c of [globex, umbrella, acme, senders.acme, senders.umbrella, senders.globex]) await c.end();
    }
  });

  it("closes a target's listener once its last client stops listening, and opens it again on demand", async () => {
    const umbrella = await proxy.connect('umbrella');
    await umbrella.query('LISTEN lonely');
    expect(proxy.running.pools.targetNames()).toContain('eu');
    const listening = async (): Promise<number> => {
      const r = await withClient(eu.url, (c) =>
        c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND (query LIKE 'LISTEN %' OR query LIKE 'UNLISTEN %')"),
      );
      return r.rows[0]?.n ?? 0;
    };
    await pollUntil('one listener on eu', async () => ((await listening()) === 1 ? true : undefined), 1_000);
    await umbrella.query('UNLISTEN lonely');
    // Its server connection ends: no connection of pgfence's is left listening on eu.
    await pollUntil('the listener on eu closed', async () => ((await listening()) === 0 ? true : undefined));
    const received = nextNotification(umbrella);
    await umbrella.query('LISTEN again');
    await withClient(eu.url, (c) => c.query(`NOTIFY "umbrella.again", 'back'`));
    expect((await received).payload).toBe('back');
    await umbrella.end();
  });
});
