import { describe, expect, it } from 'vitest';
import { Metrics, OTHER_TENANT, type PoolSnapshot, QueryTimer } from '../../src/admin/index.js';
import { type Exposition, parseExposition, samplesOf, valueOf } from './exposition.js';

async function scrape(metrics: Metrics): Promise<Exposition> {
  return parseExposition(await metrics.render());
}

const QUERY_BUCKETS = ['0.001', '0.005', '0.025', '0.1', '0.5', '2.5', '10', '+Inf'];

describe('Metrics: names and types', () => {
  it('follows the Prometheus conventions: pgfence_ prefix, _total counters, _seconds histograms', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const families = await metrics.registry.getMetricsAsJSON();
    const byName = new Map(families.map((f) => [f.name, String(f.type)]));
    expect(Object.fromEntries(byName)).toEqual({
      pgfence_client_connections_total: 'counter',
      pgfence_auth_failures_total: 'counter',
      pgfence_auth_throttled_total: 'counter',
      pgfence_statements_total: 'counter',
      pgfence_statements_rejected_total: 'counter',
      pgfence_backend_connections_total: 'counter',
      pgfence_backend_resets_total: 'counter',
      pgfence_tripwire_total: 'counter',
      pgfence_client_bytes_total: 'counter',
      pgfence_acquire_timeouts_total: 'counter',
      pgfence_acquire_wait_seconds: 'histogram',
      pgfence_query_duration_seconds: 'histogram',
      pgfence_clients: 'gauge',
      pgfence_backends: 'gauge',
      pgfence_pool_waiting_clients: 'gauge',
      pgfence_backends_pinned: 'gauge',
    });
    for (const family of families) expect(family.help.length, family.name).toBeGreaterThan(10);
    const text = await scrape(metrics);
    expect(text.types.get('pgfence_statements_total')).toBe('counter');
    expect(text.types.get('pgfence_query_duration_seconds')).toBe('histogram');
    expect(text.types.get('pgfence_backends')).toBe('gauge');
  });

  it('exports the outcomes of fixed sets at 0 before anything happened', async () => {
    const text = await scrape(new Metrics({ processMetrics: false }));
    for (const result of ['accepted', 'auth_failed', 'tenant_refused', 'startup_refused', 'backend_unavailable', 'protocol_error']) {
      expect(valueOf(text, 'pgfence_client_connections_total', { result }), result).toBe(0);
    }
    for (const result of ['opened', 'failed', 'closed']) expect(valueOf(text, 'pgfence_backend_connections_total', { result })).toBe(0);
    for (const result of ['ok', 'failed']) expect(valueOf(text, 'pgfence_backend_resets_total', { result })).toBe(0);
    expect(valueOf(text, 'pgfence_acquire_timeouts_total')).toBe(0);
    expect(samplesOf(text, 'pgfence_statements_total')).toEqual([]);
  });

  it('gives each instance its own registry, so several can live in one process', async () => {
    const a = new Metrics({ processMetrics: false });
    const b = new Metrics({ processMetrics: false });
    a.clientConnection('accepted');
    expect(valueOf(await scrape(a), 'pgfence_client_connections_total', { result: 'accepted' })).toBe(1);
    expect(valueOf(await scrape(b), 'pgfence_client_connections_total', { result: 'accepted' })).toBe(0);
  });

  it('adds the process and Node.js metrics unless told not to', async () => {
    const withProcess = await scrape(new Metrics());
    expect(withProcess.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(withProcess.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
    const without = await scrape(new Metrics({ processMetrics: false }));
    expect([...without.types.keys()].every((name) => name.startsWith('pgfence_'))).toBe(true);
  });

  it('refuses a tenant cap that is not a whole number', () => {
    expect(() => new Metrics({ maxTenants: -1 })).toThrow(RangeError);
    expect(() => new Metrics({ maxTenants: 1.5 })).toThrow(RangeError);
  });
});

describe('Metrics: counters', () => {
  it('counts connections, authentication failures, backends, resets, tripwires and acquire timeouts', async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.clientConnection('accepted');
    metrics.clientConnection('accepted');
    metrics.clientConnection('auth_failed');
    metrics.authFailure('expired');
    metrics.clientConnection('tenant_refused');
    metrics.authFailure('suspended_tenant');
    metrics.clientConnection('protocol_error');
    metrics.backendConnection('opened');
    metrics.backendConnection('opened');
    metrics.backendConnection('failed');
    metrics.backendConnection('closed');
    metrics.backendReset('ok');
    metrics.backendReset('ok');
    metrics.backendReset('failed');
    metrics.tripwire('search_path');
    metrics.acquireTimeout();

    const text = await scrape(metrics);
    expect(valueOf(text, 'pgfence_client_connections_total', { result: 'accepted' })).toBe(2);
    expect(valueOf(text, 'pgfence_client_connections_total', { result: 'auth_failed' })).toBe(1);
    expect(valueOf(text, 'pgfence_client_connections_total', { result: 'tenant_refused' })).toBe(1);
    expect(valueOf(text, 'pgfence_client_connections_total', { result: 'protocol_error' })).toBe(1);
    expect(valueOf(text, 'pgfence_client_connections_total', { result: 'startup_refused' })).toBe(0);
    expect(valueOf(text, 'pgfence_auth_failures_total', { reason: 'expired' })).toBe(1);
    expect(valueOf(text, 'pgfence_auth_failures_total', { reason: 'suspended_tenant' })).toBe(1);
    expect(valueOf(text, 'pgfence_backend_connections_total', { result: 'opened' })).toBe(2);
    expect(valueOf(text, 'pgfence_backend_connections_total', { result: 'failed' })).toBe(1);
    expect(valueOf(text, 'pgfence_backend_connections_total', { result: 'closed' })).toBe(1);
    expect(valueOf(text, 'pgfence_backend_resets_total', { result: 'ok' })).toBe(2);
    expect(valueOf(text, 'pgfence_backend_resets_total', { result: 'failed' })).toBe(1);
    expect(valueOf(text, 'pgfence_tripwire_total', { what: 'search_path' })).toBe(1);
    expect(valueOf(text, 'pgfence_acquire_timeouts_total')).toBe(1);
  });

  it('counts statements and rejections per tenant and reason', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const acme = metrics.tenant('acme');
    const globex = metrics.tenant('globex');
    for (let i = 0; i < 5; i++) acme.statement();
    globex.statement();
    acme.rejected('foreign_schema');
    acme.rejected('foreign_schema');
    acme.rejected('pin_change');
    globex.rejected('parse_error');

    const text = await scrape(metrics);
    expect(valueOf(text, 'pgfence_statements_total', { tenant: 'acme' })).toBe(5);
    expect(valueOf(text, 'pgfence_statements_total', { tenant: 'globex' })).toBe(1);
    expect(valueOf(text, 'pgfence_statements_rejected_total', { tenant: 'acme', reason: 'foreign_schema' })).toBe(2);
    expect(valueOf(text, 'pgfence_statements_rejected_total', { tenant: 'acme', reason: 'pin_change' })).toBe(1);
    expect(valueOf(text, 'pgfence_statements_rejected_total', { tenant: 'globex', reason: 'parse_error' })).toBe(1);
    expect(samplesOf(text, 'pgfence_statements_rejected_total')).toHaveLength(3);
  });

  it('hands out one cached handle per tenant', () => {
    const metrics = new Metrics({ processMetrics: false });
    expect(metrics.tenant('acme')).toBe(metrics.tenant('acme'));
    expect(metrics.tenant('acme').label).toBe('acme');
  });
});

describe('Metrics: histograms', () => {
  it('records backend acquire waits in seconds', async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.acquireWait(0.0005);
    metrics.acquireWait(0.003);
    metrics.acquireWait(2);

    const text = await scrape(metrics);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_bucket', { le: '0.001' })).toBe(1);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_bucket', { le: '0.005' })).toBe(2);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_bucket', { le: '1' })).toBe(2);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_bucket', { le: '2.5' })).toBe(3);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_bucket', { le: '+Inf' })).toBe(3);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_count')).toBe(3);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_sum')).toBeCloseTo(2.0035, 6);
  });

  it('records query durations per tenant with a small bucket set', async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.tenant('acme').queryDuration(0.002);
    metrics.tenant('acme').queryDuration(0.2);
    metrics.tenant('globex').queryDuration(20);

    const text = await scrape(metrics);
    const acmeBuckets = samplesOf(text, 'pgfence_query_duration_seconds_bucket', { tenant: 'acme' });
    expect(acmeBuckets.map((s) => s.labels['le'])).toEqual(QUERY_BUCKETS);
    expect(acmeBuckets.map((s) => s.value)).toEqual([0, 1, 1, 1, 2, 2, 2, 2]);
    expect(valueOf(text, 'pgfence_query_duration_seconds_count', { tenant: 'acme' })).toBe(2);
    expect(valueOf(text, 'pgfence_query_duration_seconds_bucket', { tenant: 'globex', le: '10' })).toBe(0);
    expect(valueOf(text, 'pgfence_query_duration_seconds_bucket', { tenant: 'globex', le: '+Inf' })).toBe(1);
    expect(valueOf(text, 'pgfence_query_duration_seconds_sum', { tenant: 'globex' })).toBe(20);
  });

  it("feeds a tenant's histogram through its query timer", async () => {
    const metrics = new Metrics({ processMetrics: false });
    const timer = metrics.tenant('acme').queryTimer();
    timer.sent();
    timer.answered();
    const text = await scrape(metrics);
    expect(valueOf(text, 'pgfence_query_duration_seconds_count', { tenant: 'acme' })).toBe(1);
    expect(valueOf(text, 'pgfence_query_duration_seconds_sum', { tenant: 'acme' })).toBeLessThan(1);
  });
});

describe('QueryTimer', () => {
  function fakeTimer(): { timer: QueryTimer; seen: number[]; at(ms: number): void } {
    let now = 0;
    const seen: number[] = [];
    const timer = new QueryTimer(
      (seconds) => seen.push(seconds),
      () => now,
    );
    return { timer, seen, at: (ms) => (now = ms) };
  }

  it('pairs pipelined round trips with their answers in order', () => {
    const { timer, seen, at } = fakeTimer();
    at(0);
    timer.sent();
    at(10);
    timer.sent();
    at(15);
    timer.sent();
    expect(timer.pending).toBe(3);
    at(30);
    timer.answered();
    at(50);
    timer.answered();
    timer.answered();
    expect(seen).toEqual([0.03, 0.04, 0.035]);
    expect(timer.pending).toBe(0);
  });

  it('ignores an answer with nothing outstanding, and forgets everything on clear()', () => {
    const { timer, seen, at } = fakeTimer();
    timer.answered();
    expect(seen).toEqual([]);
    timer.sent();
    timer.sent();
    timer.clear();
    expect(timer.pending).toBe(0);
    at(5);
    timer.sent();
    at(7);
    timer.answered();
    expect(seen).toEqual([0.002]);
  });

  it('keeps pairing correctly through a pipeline that never drains', () => {
    const { timer, seen, at } = fakeTimer();
    let t = 0;
    at(t);
    timer.sent();
    for (let i = 0; i < 5_000; i++) {
      at(++t);
      timer.sent();
      at(++t);
      timer.answered();
    }
    // One round trip stays outstanding throughout, so each answer pairs with the send before the
    // latest one: the first 2 ms after it, every later one 3 ms.
    expect(seen).toHaveLength(5_000);
    expect(seen[0]).toBeCloseTo(0.002, 9);
    expect(new Set(seen.slice(1).map((s) => s.toFixed(6)))).toEqual(new Set([(0.003).toFixed(6)]));
    expect(timer.pending).toBe(1);
  });
});

describe('Metrics: the tenant cap', () => {
  it('counts tenants beyond the cap under tenant="(other)"', async () => {
    const metrics = new Metrics({ maxTenants: 2, processMetrics: false });
    for (const tenant of ['acme', 'globex', 'initech', 'hooli', 'acme', 'initech']) metrics.tenant(tenant).statement();
    metrics.tenant('hooli').rejected('foreign_schema');
    metrics.tenant('hooli').queryDuration(0.01);

    expect(metrics.tenant('initech').label).toBe(OTHER_TENANT);
    expect(metrics.tenant('acme').label).toBe('acme');
    const text = await scrape(metrics);
    expect(valueOf(text, 'pgfence_statements_total', { tenant: 'acme' })).toBe(2);
    expect(valueOf(text, 'pgfence_statements_total', { tenant: 'globex' })).toBe(1);
    expect(valueOf(text, 'pgfence_statements_total', { tenant: OTHER_TENANT })).toBe(3);
    expect(samplesOf(text, 'pgfence_statements_total').map((s) => s.labels['tenant']).sort()).toEqual([OTHER_TENANT, 'acme', 'globex'].sort());
    expect(valueOf(text, 'pgfence_statements_rejected_total', { tenant: OTHER_TENANT, reason: 'foreign_schema' })).toBe(1);
    expect(valueOf(text, 'pgfence_query_duration_seconds_count', { tenant: OTHER_TENANT })).toBe(1);
  });

  it('caps at 1,000 distinct tenants by default', async () => {
    const metrics = new Metrics({ processMetrics: false });
    for (let i = 0; i < 1_200; i++) metrics.tenant(`t${i}`).statement();
    const text = await scrape(metrics);
    const series = samplesOf(text, 'pgfence_statements_total');
    expect(series).toHaveLength(1_001);
    expect(valueOf(text, 'pgfence_statements_total', { tenant: 't999' })).toBe(1);
    expect(valueOf(text, 'pgfence_statements_total', { tenant: 't1000' })).toBeUndefined();
    expect(valueOf(text, 'pgfence_statements_total', { tenant: OTHER_TENANT })).toBe(200);
  });

  it('puts every tenant under (other) with a cap of 0', () => {
    const metrics = new Metrics({ maxTenants: 0, processMetrics: false });
    expect(metrics.tenant('acme').label).toBe(OTHER_TENANT);
  });
});

describe('Metrics: gauges computed at scrape time', () => {
  it('reads the sources when scraped, not before', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const pool: { -readonly [K in keyof PoolSnapshot]: number } = { idle: 3, active: 2, resetting: 1, connecting: 0, waiting: 4 };
    let clients = 7;
    let reads = 0;
    metrics.setSources({
      clients: () => clients,
      pool: () => {
        reads++;
        return { ...pool };
      },
    });
    expect(reads).toBe(0);

    let text = await scrape(metrics);
    expect(reads).toBeGreaterThan(0);
    expect(valueOf(text, 'pgfence_clients')).toBe(7);
    expect(valueOf(text, 'pgfence_backends', { state: 'idle' })).toBe(3);
    expect(valueOf(text, 'pgfence_backends', { state: 'active' })).toBe(2);
    expect(valueOf(text, 'pgfence_backends', { state: 'resetting' })).toBe(1);
    expect(valueOf(text, 'pgfence_backends', { state: 'connecting' })).toBe(0);
    expect(valueOf(text, 'pgfence_pool_waiting_clients')).toBe(4);

    clients = 1;
    Object.assign(pool, { idle: 0, active: 5, waiting: 0, connecting: 2 });
    text = await scrape(metrics);
    expect(valueOf(text, 'pgfence_clients')).toBe(1);
    expect(valueOf(text, 'pgfence_backends', { state: 'idle' })).toBe(0);
    expect(valueOf(text, 'pgfence_backends', { state: 'active' })).toBe(5);
    expect(valueOf(text, 'pgfence_backends', { state: 'connecting' })).toBe(2);
    expect(valueOf(text, 'pgfence_pool_waiting_clients')).toBe(0);
  });

  it('reports pinned backends per tenant, dropping tenants no longer pinned and folding those beyond the cap', async () => {
    const metrics = new Metrics({ maxTenants: 2, processMetrics: false });
    let pinned = new Map([
      ['acme', 2],
      ['globex', 1],
      ['initech', 3],
      ['hooli', 1],
    ]);
    metrics.setSources({ pinned: () => pinned });
    let text = await scrape(metrics);
    expect(valueOf(text, 'pgfence_backends_pinned', { tenant: 'acme' })).toBe(2);
    expect(valueOf(text, 'pgfence_backends_pinned', { tenant: 'globex' })).toBe(1);
    expect(valueOf(text, 'pgfence_backends_pinned', { tenant: OTHER_TENANT })).toBe(4);

    pinned = new Map([['acme', 1]]);
    text = await scrape(metrics);
    expect(samplesOf(text, 'pgfence_backends_pinned')).toEqual([{ name: 'pgfence_backends_pinned', labels: { tenant: 'acme' }, value: 1 }]);
  });

  it('exports no backend samples and zero clients while nothing is wired in', async () => {
    const text = await scrape(new Metrics({ processMetrics: false }));
    expect(samplesOf(text, 'pgfence_backends')).toEqual([]);
    expect(samplesOf(text, 'pgfence_backends_pinned')).toEqual([]);
    expect(valueOf(text, 'pgfence_clients')).toBe(0);
    expect(valueOf(text, 'pgfence_pool_waiting_clients')).toBe(0);
  });
});
