import { AggregatorRegistry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import { Metrics, OTHER_TENANT, type PoolRow, type PoolsView, QueryTimer } from '../../src/admin/index.js';
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
      pgfence_tripwires_total: 'counter',
      pgfence_cancel_requests_total: 'counter',
      pgfence_backend_connection_attempts_total: 'counter',
      pgfence_backend_connections_closed_total: 'counter',
      pgfence_backend_resets_total: 'counter',
      pgfence_acquire_timeouts_total: 'counter',
      pgfence_acquire_wait_seconds: 'histogram',
      pgfence_query_duration_seconds: 'histogram',
      pgfence_stats_sql_transactions_pooled_total: 'counter',
      pgfence_stats_queries_pooled_total: 'counter',
      pgfence_stats_queries_duration_seconds_total: 'counter',
      pgfence_stats_sql_transactions_duration_seconds_total: 'counter',
      pgfence_stats_client_wait_seconds_total: 'counter',
      pgfence_stats_server_assignments_total: 'counter',
      pgfence_stats_received_bytes_total: 'counter',
      pgfence_stats_sent_bytes_total: 'counter',
      pgfence_pools_client_active_connections: 'gauge',
      pgfence_pools_client_waiting_connections: 'gauge',
      pgfence_pools_client_login_connections: 'gauge',
      pgfence_pools_client_maxwait_seconds: 'gauge',
      pgfence_pools_server_active_connections: 'gauge',
      pgfence_pools_server_idle_connections: 'gauge',
      pgfence_pools_server_used_connections: 'gauge',
      pgfence_pools_server_testing_connections: 'gauge',
      pgfence_pools_server_login_connections: 'gauge',
      pgfence_pools_server_pinned_connections: 'gauge',
    });
    // Units in the name: seconds and bytes; no mixed event counters.
    for (const name of byName.keys()) expect(name, name).toMatch(/^pgfence_[a-z_]+$/);
    for (const family of families) expect(family.help.length, family.name).toBeGreaterThan(10);
    const text = await scrape(metrics);
    expect(text.types.get('pgfence_statements_total')).toBe('counter');
    expect(text.types.get('pgfence_query_duration_seconds')).toBe('histogram');
    expect(text.types.get('pgfence_pools_server_idle_connections')).toBe('gauge');
  });

  it('exports the outcomes of fixed sets at 0 before anything happened', async () => {
    const text = await scrape(new Metrics({ processMetrics: false }));
    for (const result of ['accepted', 'auth_failed', 'tenant_refused', 'startup_refused', 'backend_unavailable', 'protocol_error']) {
      expect(valueOf(text, 'pgfence_client_connections_total', { result }), result).toBe(0);
    }
    for (const result of ['opened', 'failed']) expect(valueOf(text, 'pgfence_backend_connection_attempts_total', { result, target: 'default' })).toBe(0);
    expect(valueOf(text, 'pgfence_backend_connections_closed_total', { target: 'default' })).toBe(0);
    for (const result of ['ok', 'failed']) expect(valueOf(text, 'pgfence_backend_resets_total', { result, target: 'default' })).toBe(0);
    expect(valueOf(text, 'pgfence_acquire_timeouts_total', { target: 'default' })).toBe(0);
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
    expect(valueOf(text, 'pgfence_backend_connection_attempts_total', { result: 'opened', target: 'default' })).toBe(2);
    expect(valueOf(text, 'pgfence_backend_connection_attempts_total', { result: 'failed', target: 'default' })).toBe(1);
    expect(valueOf(text, 'pgfence_backend_connections_closed_total', { target: 'default' })).toBe(1);
    expect(valueOf(text, 'pgfence_backend_resets_total', { result: 'ok', target: 'default' })).toBe(2);
    expect(valueOf(text, 'pgfence_backend_resets_total', { result: 'failed', target: 'default' })).toBe(1);
    expect(valueOf(text, 'pgfence_tripwires_total', { what: 'search_path' })).toBe(1);
    expect(valueOf(text, 'pgfence_acquire_timeouts_total', { target: 'default' })).toBe(1);
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
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_bucket', { le: '0.001', target: 'default' })).toBe(1);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_bucket', { le: '0.005', target: 'default' })).toBe(2);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_bucket', { le: '1', target: 'default' })).toBe(2);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_bucket', { le: '2.5', target: 'default' })).toBe(3);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_bucket', { le: '+Inf', target: 'default' })).toBe(3);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_count', { target: 'default' })).toBe(3);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_sum', { target: 'default' })).toBeCloseTo(2.0035, 6);
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

function row(tenant: string | null, fields: Partial<PoolRow> = {}): PoolRow {
  return { tenant, clActive: 0, clWaiting: 0, svActive: 0, svBeingCanceled: 0, svIdle: 0, svUsed: 0, svTested: 0, svLogin: 0, maxWaitMs: 0, ...fields };
}

describe('Metrics: gauges computed at scrape time', () => {
  it('reads the pool view when scraped, not before, and sums the server states over the rows', async () => {
    const metrics = new Metrics({ processMetrics: false });
    let view: PoolsView = {
      pools: [{ target: 'default', rows: [row('acme', { clActive: 2, clWaiting: 1, svActive: 2, svBeingCanceled: 1, maxWaitMs: 250 }), row('globex', { svIdle: 1, svUsed: 2, svTested: 1 }), row(null, { svIdle: 3, svLogin: 1 })] }],
      loginClients: 4,
      consoleClients: 1,
    };
    let reads = 0;
    metrics.setSources({
      pools: () => {
        reads++;
        return view;
      },
    });
    expect(reads).toBe(0);

    let text = await scrape(metrics);
    expect(reads).toBeGreaterThan(0);
    expect(valueOf(text, 'pgfence_pools_client_active_connections', { tenant: 'acme', target: 'default' })).toBe(2);
    expect(valueOf(text, 'pgfence_pools_client_waiting_connections', { tenant: 'acme', target: 'default' })).toBe(1);
    expect(valueOf(text, 'pgfence_pools_client_login_connections')).toBe(4);
    expect(valueOf(text, 'pgfence_pools_client_maxwait_seconds', { target: 'default' })).toBe(0.25);
    expect(valueOf(text, 'pgfence_pools_server_active_connections', { target: 'default' })).toBe(3);
    expect(valueOf(text, 'pgfence_pools_server_idle_connections', { target: 'default' })).toBe(4);
    expect(valueOf(text, 'pgfence_pools_server_used_connections', { target: 'default' })).toBe(2);
    expect(valueOf(text, 'pgfence_pools_server_testing_connections', { target: 'default' })).toBe(1);
    expect(valueOf(text, 'pgfence_pools_server_login_connections', { target: 'default' })).toBe(1);
    expect(valueOf(text, 'pgfence_pools_server_pinned_connections', { tenant: 'acme', target: 'default' })).toBe(3);
    expect(valueOf(text, 'pgfence_pools_server_pinned_connections', { tenant: 'globex', target: 'default' })).toBe(4);

    view = { pools: [{ target: 'default', rows: [row('acme', { clActive: 1 }), row(null)] }], loginClients: 0, consoleClients: 0 };
    text = await scrape(metrics);
    expect(valueOf(text, 'pgfence_pools_client_active_connections', { tenant: 'acme', target: 'default' })).toBe(1);
    expect(samplesOf(text, 'pgfence_pools_client_active_connections').map((s) => s.labels['tenant'])).toEqual(['acme']);
    expect(valueOf(text, 'pgfence_pools_server_idle_connections', { target: 'default' })).toBe(0);
    expect(valueOf(text, 'pgfence_pools_client_maxwait_seconds', { target: 'default' })).toBe(0);
  });

  it('folds tenants beyond the cap into (other)', async () => {
    const metrics = new Metrics({ maxTenants: 2, processMetrics: false });
    const view: PoolsView = {
      pools: [{ target: 'default', rows: [row('acme', { svIdle: 2 }), row('globex', { svIdle: 1 }), row('hooli', { svIdle: 1 }), row('initech', { svActive: 3 }), row(null)] }],
      loginClients: 0,
      consoleClients: 0,
    };
    metrics.setSources({ pools: () => view });
    const text = await scrape(metrics);
    expect(valueOf(text, 'pgfence_pools_server_pinned_connections', { tenant: 'acme', target: 'default' })).toBe(2);
    expect(valueOf(text, 'pgfence_pools_server_pinned_connections', { tenant: 'globex', target: 'default' })).toBe(1);
    expect(valueOf(text, 'pgfence_pools_server_pinned_connections', { tenant: OTHER_TENANT, target: 'default' })).toBe(4);
  });

  it('exports no per-pool samples while nothing is wired in, and 0 login clients', async () => {
    const text = await scrape(new Metrics({ processMetrics: false }));
    expect(samplesOf(text, 'pgfence_pools_client_active_connections')).toEqual([]);
    expect(samplesOf(text, 'pgfence_pools_server_pinned_connections')).toEqual([]);
    expect(samplesOf(text, 'pgfence_pools_server_idle_connections')).toEqual([]);
    expect(samplesOf(text, 'pgfence_pools_client_maxwait_seconds')).toEqual([]);
    expect(valueOf(text, 'pgfence_pools_client_login_connections')).toBe(0);
  });

  it('labels every pool series with its backend target; a tenant database pool adds into its target', async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.setSources({
      pools: () => ({
        pools: [
          { target: 'default', rows: [row('acme', { clActive: 1, svActive: 1 }), row(null, { svIdle: 2 })] },
          { target: 'eu', rows: [row('globex', { clActive: 2, clWaiting: 1, svActive: 2, maxWaitMs: 3000 }), row(null, { svLogin: 1 })] },
          // A tenant database on eu: its own pool, counted under eu.
          { target: 'eu', rows: [row('hooli', { clActive: 1, svIdle: 1 }), row('globex', { svIdle: 1 }), row(null, { svIdle: 1 })] },
        ],
        loginClients: 3,
        consoleClients: 0,
      }),
    });
    const text = await scrape(metrics);
    expect(valueOf(text, 'pgfence_pools_client_active_connections', { tenant: 'acme', target: 'default' })).toBe(1);
    expect(valueOf(text, 'pgfence_pools_client_active_connections', { tenant: 'globex', target: 'eu' })).toBe(2);
    expect(valueOf(text, 'pgfence_pools_client_active_connections', { tenant: 'hooli', target: 'eu' })).toBe(1);
    expect(valueOf(text, 'pgfence_pools_client_waiting_connections', { tenant: 'globex', target: 'eu' })).toBe(1);
    expect(valueOf(text, 'pgfence_pools_server_pinned_connections', { tenant: 'globex', target: 'eu' })).toBe(3);
    expect(valueOf(text, 'pgfence_pools_server_active_connections', { target: 'default' })).toBe(1);
    expect(valueOf(text, 'pgfence_pools_server_active_connections', { target: 'eu' })).toBe(2);
    expect(valueOf(text, 'pgfence_pools_server_idle_connections', { target: 'default' })).toBe(2);
    expect(valueOf(text, 'pgfence_pools_server_idle_connections', { target: 'eu' })).toBe(3);
    expect(valueOf(text, 'pgfence_pools_server_login_connections', { target: 'eu' })).toBe(1);
    expect(valueOf(text, 'pgfence_pools_client_maxwait_seconds', { target: 'default' })).toBe(0);
    expect(valueOf(text, 'pgfence_pools_client_maxwait_seconds', { target: 'eu' })).toBe(3);
    expect(valueOf(text, 'pgfence_pools_client_login_connections')).toBe(3);
    expect(samplesOf(text, 'pgfence_pools_client_active_connections', { tenant: 'acme' }).map((s) => s.labels['target'])).toEqual(['default']);
  });

  it("counts each target's backend connections, resets, acquire timeouts and waits under its own label", async () => {
    const metrics = new Metrics({ processMetrics: false });
    const eu = metrics.target('eu');
    expect(metrics.target('eu')).toBe(eu);
    eu.backendConnection('opened');
    eu.backendConnection('failed');
    eu.backendConnection('closed');
    eu.backendReset('ok');
    eu.acquireTimeout();
    eu.acquireWait(0.002, 'globex');
    metrics.backendConnection('opened');
    metrics.acquireWait(0.5, 'acme');
    const text = await scrape(metrics);
    expect(valueOf(text, 'pgfence_backend_connection_attempts_total', { result: 'opened', target: 'eu' })).toBe(1);
    expect(valueOf(text, 'pgfence_backend_connection_attempts_total', { result: 'failed', target: 'eu' })).toBe(1);
    expect(valueOf(text, 'pgfence_backend_connection_attempts_total', { result: 'opened', target: 'default' })).toBe(1);
    expect(valueOf(text, 'pgfence_backend_connection_attempts_total', { result: 'failed', target: 'default' })).toBe(0);
    expect(valueOf(text, 'pgfence_backend_connections_closed_total', { target: 'eu' })).toBe(1);
    expect(valueOf(text, 'pgfence_backend_resets_total', { result: 'ok', target: 'eu' })).toBe(1);
    expect(valueOf(text, 'pgfence_acquire_timeouts_total', { target: 'eu' })).toBe(1);
    expect(valueOf(text, 'pgfence_acquire_timeouts_total', { target: 'default' })).toBe(0);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_count', { target: 'eu' })).toBe(1);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_bucket', { target: 'eu', le: '0.005' })).toBe(1);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_count', { target: 'default' })).toBe(1);
    // The wait also counts into the tenant's PgBouncer stats, whatever its target.
    expect(valueOf(text, 'pgfence_stats_server_assignments_total', { tenant: 'globex' })).toBe(1);
    expect(valueOf(text, 'pgfence_stats_client_wait_seconds_total', { tenant: 'globex' })).toBe(0.002);
  });
});

describe('Metrics: PgBouncer stats per tenant', () => {
  it('counts transactions, queries and their time through the query timer', async () => {
    const metrics = new Metrics({ processMetrics: false });
    let now = 0;
    const acme = metrics.tenant('acme');
    const timer = new QueryTimer(acme as unknown as ConstructorParameters<typeof QueryTimer>[0], () => now);
    const I = 0x49;
    const T = 0x54;
    // BEGIN; SELECT; COMMIT (3 round trips, one transaction of 30 ms), then one autocommit SELECT (5 ms).
    timer.sent();
    now = 10;
    timer.answered(T);
    timer.sent();
    now = 20;
    timer.answered(T);
    timer.sent();
    now = 30;
    timer.answered(I);
    now = 100;
    timer.sent();
    now = 105;
    timer.answered(I);

    const text = await scrape(metrics);
    expect(valueOf(text, 'pgfence_stats_queries_pooled_total', { tenant: 'acme' })).toBe(4);
    expect(valueOf(text, 'pgfence_stats_sql_transactions_pooled_total', { tenant: 'acme' })).toBe(2);
    expect(valueOf(text, 'pgfence_stats_queries_duration_seconds_total', { tenant: 'acme' })).toBeCloseTo(0.035, 9);
    expect(valueOf(text, 'pgfence_stats_sql_transactions_duration_seconds_total', { tenant: 'acme' })).toBeCloseTo(0.035, 9);
    expect(valueOf(text, 'pgfence_query_duration_seconds_count', { tenant: 'acme' })).toBe(4);
    expect(acme.totals()).toMatchObject({ queries: 4, transactions: 2, queryMicros: 35_000, transactionMicros: 35_000 });
  });

  it('counts server assignments and wait per tenant, and bytes for the whole process', async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.acquireWait(0, 'acme');
    metrics.acquireWait(0.5, 'acme');
    metrics.acquireWait(0.25, 'globex');
    metrics.tenant('acme').received += 100;
    metrics.tenant('acme').sent += 1000;
    metrics.clientBytesIn(8);
    metrics.clientBytesOut(20);
    const text = await scrape(metrics);
    expect(valueOf(text, 'pgfence_stats_server_assignments_total', { tenant: 'acme' })).toBe(2);
    expect(valueOf(text, 'pgfence_stats_client_wait_seconds_total', { tenant: 'acme' })).toBe(0.5);
    expect(valueOf(text, 'pgfence_stats_client_wait_seconds_total', { tenant: 'globex' })).toBe(0.25);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_count', { target: 'default' })).toBe(3);
    expect(valueOf(text, 'pgfence_stats_received_bytes_total')).toBe(108);
    expect(valueOf(text, 'pgfence_stats_sent_bytes_total')).toBe(1020);
  });

  it('keeps totals of the previous stats period for the averages', () => {
    const metrics = new Metrics({ processMetrics: false });
    expect(metrics.statsPeriod).toBeNull();
    metrics.tenant('acme').queryDuration(0.001);
    metrics.rollStatsPeriod(1_000);
    metrics.tenant('acme').queryDuration(0.001);
    expect(metrics.statsPeriod?.at).toBe(1_000);
    expect(metrics.statsPeriod?.totals.get('acme')?.queries).toBe(1);
    expect(metrics.tenant('acme').totals().queries).toBe(2);
  });
});

describe('Metrics: nothing touches prom-client until a scrape', () => {
  it('a million hot-path events cost no prom-client call; one scrape publishes them', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const families = await metrics.registry.getMetricsAsJSON();
    expect(families.length).toBeGreaterThan(0);
    // Every prom-client method that counts or hashes labels throws from now on until the scrape.
    const spies = metrics.registry.getMetricsAsArray().flatMap((m) =>
      (['inc', 'set', 'observe', 'labels'] as const).flatMap((method) => {
        const target = m as unknown as Record<string, unknown>;
        return typeof target[method] === 'function' ? [vi.spyOn(target as Record<string, () => void>, method)] : [];
      }),
    );
    const acme = metrics.tenant('acme');
    const timer = acme.queryTimer();
    for (let i = 0; i < 1_000_000; i++) {
      acme.statement();
      timer.sent();
      timer.answered(0x49);
      acme.received += 10;
    }
    metrics.acquireWait(0.001, 'acme');
    metrics.backendReset('ok');
    // A pool of another target counts through its handle, the same way.
    const eu = metrics.target('eu');
    for (let i = 0; i < 1_000; i++) {
      eu.acquireWait(0.001, 'acme');
      eu.backendReset('ok');
    }
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    const text = await scrape(metrics);
    expect(valueOf(text, 'pgfence_statements_total', { tenant: 'acme' })).toBe(1_000_000);
    expect(valueOf(text, 'pgfence_stats_sql_transactions_pooled_total', { tenant: 'acme' })).toBe(1_000_000);
    expect(spies.some((spy) => spy.mock.calls.length > 0)).toBe(true);
  });

  it('aggregates across workers with prom-client AggregatorRegistry: sums, and the maximum wait', async () => {
    const workers = [new Metrics({ processMetrics: false }), new Metrics({ processMetrics: false })];
    workers[0]?.tenant('acme').statement();
    workers[1]?.tenant('acme').statement();
    workers[1]?.tenant('acme').queryDuration(0.002);
    workers[0]?.setSources({ pools: () => ({ pools: [{ target: 'default', rows: [row('acme', { maxWaitMs: 2000, svIdle: 1 }), row(null)] }], loginClients: 0, consoleClients: 0 }) });
    workers[1]?.setSources({ pools: () => ({ pools: [{ target: 'default', rows: [row('acme', { maxWaitMs: 500, svIdle: 2 }), row(null)] }], loginClients: 0, consoleClients: 0 }) });
    const merged = AggregatorRegistry.aggregate(await Promise.all(workers.map((w) => w?.registry.getMetricsAsJSON())));
    const text = parseExposition(await merged.metrics());
    expect(valueOf(text, 'pgfence_statements_total', { tenant: 'acme' })).toBe(2);
    expect(valueOf(text, 'pgfence_pools_server_idle_connections', { target: 'default' })).toBe(3);
    expect(valueOf(text, 'pgfence_pools_client_maxwait_seconds', { target: 'default' })).toBe(2);
    expect(valueOf(text, 'pgfence_query_duration_seconds_bucket', { tenant: 'acme', le: '0.005' })).toBe(1);
    expect(valueOf(text, 'pgfence_query_duration_seconds_count', { tenant: 'acme' })).toBe(1);
  });
});
