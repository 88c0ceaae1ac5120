import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyOwner } from '../../src/cluster/cancel-key.js';
import { pollUntil } from '../support/helpers.js';
import { startTestProxy, type TestProxy } from '../support/proxy.js';
import { sendCancelRequest } from '../support/wire.js';
import { keyOf } from './support.js';

/**
 * Peering across machines, as PgBouncer's peer_id: two single-process pgfence instances, as if
 * behind one TCP load balancer. A CancelRequest for a key instance 1 issued reaches instance 2,
 * which sends it on to instance 1.
 */

let first: TestProxy;
let second: TestProxy;

beforeAll(async () => {
  first = await startTestProxy({ peerId: 1, pool: { size: 2 } });
  second = await startTestProxy({ peerId: 2, peers: [{ id: 1, host: '127.0.0.1', port: first.port }, { id: 2, host: '127.0.0.1', port: 1 }] });
});
afterAll(async () => {
  await second?.close();
  await first?.close();
});

const routed = async (proxy: TestProxy, route: string): Promise<number> => {
  const families = await proxy.running.metrics.registry.getMetricsAsJSON();
  const family = families.find((f) => f.name === 'pgfence_cancel_requests_total');
  return family?.values.find((v) => v.labels['route'] === route)?.value ?? 0;
};

describe('peers', () => {
  it('writes the peer id into the keys an instance issues', async () => {
    const client = await first.connect('acme');
    try {
      const key = keyOf(client);
      expect(keyOwner(key.processId, key.secretKey)).toEqual({ peer: 1, worker: 0 });
    } finally {
      await client.end();
    }
  });

  it('passes a CancelRequest that reached the wrong instance on to the one that owns the key', async () => {
    const client = await first.connect('acme');
    try {
      const slow = client.query('SELECT pg_sleep(30)').then(
        () => null,
        (e: pg.DatabaseError) => e,
      );
      await pollUntil('the sleep runs', async () => {
        const r = await first.direct<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'");
        return r.rows[0]?.n === 1 ? true : undefined;
      });
      const key = keyOf(client);
      await sendCancelRequest(second.port, key.processId, key.secretKey);
      expect((await slow)?.code).toBe('57014');
      expect(await routed(second, 'peer')).toBe(1);
      expect(await routed(first, 'local')).toBe(1);
      expect((await client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    } finally {
      await client.end();
    }
  });

  it('drops a key of a peer nobody knows, and a key of an instance without peering', async () => {
    const client = await second.connect('acme');
    try {
      const key = keyOf(client);
      // The same random part under peer id 3 (unknown) and 0 (no peering): neither cancels anything here.
      const peer3 = (key.secretKey & 0x3ffff) | (3 << 18);
      await sendCancelRequest(second.port, key.processId, peer3);
      await sendCancelRequest(second.port, key.processId, key.secretKey & 0x3ffff);
      expect(await routed(second, 'unroutable')).toBe(2);
    } finally {
      await client.end();
    }
  });

  it('refuses a peer list without this instance\'s id, and duplicate peer ids', async () => {
    const { configSchema } = await import('../../src/config/schema.js');
    const base = { jwt: { secret: 'x'.repeat(32) }, tenancy: { tenants: [{ id: 'acme' }] } };
    const noId = configSchema.safeParse({ ...base, peers: [{ id: 1, host: 'a' }] });
    expect(noId.success).toBe(false);
    const duplicate = configSchema.safeParse({ ...base, peerId: 1, peers: [{ id: 2, host: 'a' }, { id: 2, host: 'b' }] });
    expect(duplicate.error?.issues.map((i) => i.message)).toEqual(['duplicate peer id 2']);
  });
});
