import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

let proxy: TestProxy;

beforeAll(async () => {
  proxy = await startTestProxy({ pool: { mode: 'transaction', size: 2, acquireTimeoutMs: 5_000 } });
});
afterAll(async () => {
  await proxy?.close();
});

/** The next notification the client receives. */
function nextNotification(client: pg.Client): Promise<pg.Notification> {
  return new Promise((resolve) => client.once('notification', resolve));
}

describe('LISTEN / NOTIFY in transaction pooling', () => {
  it('delivers a notification to a listening client of the same tenant, with its own channel name', async () => {
    const listener = await proxy.connect('acme');
    const sender = await proxy.connect('acme');
    try {
      await listener.query('LISTEN jobs');
      const received = nextNotification(listener);
      await sender.query("NOTIFY jobs, 'job 1'");
      const n = await received;
      expect(n.channel).toBe('jobs');
      expect(n.payload).toBe('job 1');
    } finally {
      await listener.end();
      await sender.end();
    }
  });

  it("never delivers one tenant's notification to another tenant listening on the same name", async () => {
    const acme = await proxy.connect('acme');
    const globex = await proxy.connect('globex');
    const sender = await proxy.connect('acme');
    try {
      await acme.query('LISTEN orders');
      await globex.query('LISTEN orders');
      const seenByGlobex: string[] = [];
      globex.on('notification', (n) => seenByGlobex.push(n.payload ?? ''));
      const received = nextNotification(acme);
      await sender.query("NOTIFY orders, 'acme order'");
      expect((await received).payload).toBe('acme order');
      // globex's own notification comes after acme's on the same listener connection: once globex
      // has it, acme's would have arrived before it had it been delivered.
      const globexOwn = nextNotification(globex);
      const globexSender = await proxy.connect('globex');
      await globexSender.query("NOTIFY orders, 'globex order'");
      await globexOwn;
      await globexSender.end();
      expect(seenByGlobex).toEqual(['globex order']);
    } finally {
      await acme.end();
      await globex.end();
      await sender.end();
    }
  });

  it('a LISTEN in a transaction that rolls back, and UNLISTEN, stop delivery', async () => {
    const client = await proxy.connect('acme');
    const sender = await proxy.connect('acme');
    try {
      await client.query('BEGIN');
      await client.query('LISTEN rolled_back');
      await client.query('ROLLBACK');
      await client.query('LISTEN kept');
      await client.query('UNLISTEN kept');
      await client.query('LISTEN marker');
      const seen: string[] = [];
      client.on('notification', (n) => seen.push(n.channel));
      const marker = nextNotification(client);
      await sender.query("NOTIFY rolled_back; NOTIFY kept; NOTIFY marker");
      await marker;
      expect(seen).toEqual(['marker']);
    } finally {
      await client.end();
      await sender.end();
    }
  });

  it('stops listening on the server once the last client of a channel is gone', async () => {
    const client = await proxy.connect('umbrella');
    await client.query('LISTEN lonely');
    const listening = async (): Promise<boolean> => {
      const r = await proxy.direct("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pgfence' AND query = 'LISTEN \"umbrella.lonely\"'");
      return (r.rows[0]?.n ?? 0) > 0;
    };
    expect(await listening()).toBe(true);
    await client.end();
    const probe = await proxy.connect('umbrella');
    await probe.query('SELECT 1');
    await probe.end();
    // The UNLISTEN is queued on the listener connection after the client's close; a LISTEN queued
    // after it proves it has run.
    const other = await proxy.connect('umbrella');
    await other.query('LISTEN after');
    await other.end();
    expect(await listening()).toBe(false);
  });
});
