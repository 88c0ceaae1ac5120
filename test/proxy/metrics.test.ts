import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, type TestProxy } from '../support/proxy.js';

let proxy: TestProxy;

beforeAll(async () => {
  proxy = await startTestProxy({ admin: { enabled: true, host: '127.0.0.1', port: 0 } });
});
afterAll(async () => {
  await proxy?.close();
});

async function scrape(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${proxy.running.adminPort}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

/** A series' value; 0 for a series not exported yet (prom-client shows a labelled counter once it moved). */
function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('metrics of a running pgfence', () => {
  it('counts connections, statements, rejections and query durations per tenant', async () => {
    const before = await scrape();
    const client = await proxy.connect('acme');
    // The refused statement goes first: Postgres flushes an ErrorResponse before its ReadyForQuery,
    // so pg settles that promise before the round trip ends; the next query orders it.
    await client.query('SELECT * FROM tenant_globex.secrets').catch(() => undefined);
    await client.query('SELECT 1');
    await client.query('SELECT count(*) FROM items');
    await client.query('BEGIN');
    await client.query('SELECT 1');
    await client.query('COMMIT');
    const text = await scrape();
    await client.end();
    expect(value(text, 'pgfence_client_connections_total{result="accepted"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'pgfence_statements_total{tenant="acme"}')).toBeGreaterThanOrEqual(3);
    expect(value(text, 'pgfence_statements_rejected_total{tenant="acme",reason="foreign_schema"}')).toBe(1);
    expect(value(text, 'pgfence_query_duration_seconds_count{tenant="acme"}')).toBeGreaterThanOrEqual(3);
    // Session mode: the client holds its backend, which is pinned to acme.
    expect(value(text, 'pgfence_pools_server_active_connections{target="default"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'pgfence_pools_server_pinned_connections{tenant="acme",target="default"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'pgfence_pools_client_active_connections{tenant="acme",target="default"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'pgfence_pools_client_waiting_connections{tenant="acme",target="default"}')).toBe(0);
    expect(value(text, 'pgfence_backend_connection_attempts_total{result="opened",target="default"}')).toBeGreaterThanOrEqual(1);
    // PgBouncer's stats: 6 round trips, 4 transactions (3 autocommit statements and BEGIN..COMMIT) between the scrapes.
    const delta = (series: string): number => value(text, series) - value(before, series);
    expect(delta('pgfence_stats_queries_pooled_total{tenant="acme"}')).toBe(6);
    expect(delta('pgfence_stats_sql_transactions_pooled_total{tenant="acme"}')).toBe(4);
    expect(delta('pgfence_stats_queries_duration_seconds_total{tenant="acme"}')).toBeGreaterThan(0);
    expect(value(text, 'pgfence_stats_server_assignments_total{tenant="acme"}')).toBeGreaterThanOrEqual(1);
    // The counters moved with the traffic between two scrapes.
    expect(delta('pgfence_stats_received_bytes_total')).toBeGreaterThan(0);
    expect(delta('pgfence_stats_sent_bytes_total')).toBeGreaterThan(0);
    expect(value(before, 'pgfence_statements_total{tenant="acme"}')).toBeLessThan(value(text, 'pgfence_statements_total{tenant="acme"}'));
  });

  it('counts refused connections by reason and answers /readyz', async () => {
    await proxy.connect('initech').catch(() => undefined);
    const text = await scrape();
    expect(value(text, 'pgfence_client_connections_total{result="tenant_refused"}')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'pgfence_auth_failures_total{reason="suspended_tenant"}')).toBeGreaterThanOrEqual(1);
    const ready = await fetch(`http://127.0.0.1:${proxy.running.adminPort}/readyz`);
    expect(ready.status).toBe(200);
  });
});
