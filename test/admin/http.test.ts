import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type AdminServer, Metrics, type AdminDeps, type PoolRow, type PoolsView, startAdminServer } from '../../src/admin/index.js';
import { parseExposition, valueOf } from './exposition.js';

const silent = pino({ level: 'silent' });
const started: AdminServer[] = [];

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(started.splice(0).map((s) => s.close()));
});

async function start(deps: Partial<Omit<AdminDeps, 'metrics'>> & { metrics?: Metrics } = {}, readyTimeoutMs?: number, log = silent): Promise<{ server: AdminServer; url: string; metrics: Metrics }> {
  const metrics = deps.metrics ?? new Metrics({ processMetrics: false });
  const server = await startAdminServer(
    { host: '127.0.0.1', port: 0, ...(readyTimeoutMs === undefined ? {} : { readyTimeoutMs }) },
    { metrics, ready: deps.ready ?? (async () => true) },
    log,
  );
  started.push(server);
  return { server, url: `http://127.0.0.1:${server.port}`, metrics };
}

/**
 * The status of GET /readyz when ready() answers true after `answerMs`, and `elapseMs` pass once
 * it has been asked. Time is fake (setTimeout): the probe's deadline in pgfence and ready()'s
 * answer happen in the order their times say, however slow the machine; the HTTP exchange is real.
 */
async function readyzStatus(readyTimeoutMs: number | undefined, answerMs: number, elapseMs: number): Promise<number> {
  let asked!: () => void;
  const wasAsked = new Promise<void>((resolve) => (asked = resolve));
  const ready = (): Promise<boolean> => {
    asked();
    return new Promise<boolean>((resolve) => setTimeout(() => resolve(true), answerMs));
  };
  const { url } = await start({ ready }, readyTimeoutMs);
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const response = fetch(`${url}/readyz`);
  await wasAsked;
  await vi.advanceTimersByTimeAsync(elapseMs);
  const { status } = await response;
  vi.useRealTimers();
  return status;
}

/** A logger that keeps its JSON lines. */
function capturingLogger(): { log: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

describe('admin endpoint', () => {
  it('listens on the port it reports, picking a free one for port 0', async () => {
    const { server } = await start();
    expect(server.port).toBeGreaterThan(0);
    expect(server.host).toBe('127.0.0.1');
  });

  it('answers /healthz with 200 "ok" as plain text', async () => {
    const { url } = await start({ ready: async () => false });
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.text()).toBe('ok\n');
  });

  it('serves /metrics in the Prometheus text format with its content type', async () => {
    const { url, metrics } = await start();
    metrics.clientConnection('accepted');
    metrics.authFailure('bad_signature');
    const acme = metrics.tenant('acme');
    acme.statement();
    acme.statement();
    acme.rejected('foreign_schema');
    acme.queryDuration(0.004);
    metrics.acquireWait(0.02);

    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = parseExposition(await res.text());
    expect(valueOf(text, 'pgfence_client_connections_total', { result: 'accepted' })).toBe(1);
    expect(valueOf(text, 'pgfence_auth_failures_total', { reason: 'bad_signature' })).toBe(1);
    expect(valueOf(text, 'pgfence_statements_total', { tenant: 'acme' })).toBe(2);
    expect(valueOf(text, 'pgfence_statements_rejected_total', { tenant: 'acme', reason: 'foreign_schema' })).toBe(1);
    expect(valueOf(text, 'pgfence_query_duration_seconds_bucket', { tenant: 'acme', le: '0.005' })).toBe(1);
    expect(valueOf(text, 'pgfence_acquire_wait_seconds_count', { target: 'default' })).toBe(1);
  });

  it('computes the gauges from the sources on every scrape', async () => {
    const { url, metrics } = await start();
    const row = (tenant: string | null, fields: Partial<PoolRow>): PoolRow => ({
      tenant,
      clActive: 0,
      clWaiting: 0,
      svActive: 0,
      svBeingCanceled: 0,
      svIdle: 0,
      svUsed: 0,
      svTested: 0,
      svLogin: 0,
      maxWaitMs: 0,
      ...fields,
    });
    let view: PoolsView = { pools: [{ target: 'default', rows: [row('acme', { clActive: 3, svIdle: 1 }), row(null, { svIdle: 3, svLogin: 1 })] }], loginClients: 2, consoleClients: 0 };
    metrics.setSources({ pools: () => view });

    let text = parseExposition(await (await fetch(`${url}/metrics`)).text());
    expect(valueOf(text, 'pgfence_pools_client_active_connections', { tenant: 'acme', target: 'default' })).toBe(3);
    expect(valueOf(text, 'pgfence_pools_client_login_connections')).toBe(2);
    expect(valueOf(text, 'pgfence_pools_server_idle_connections', { target: 'default' })).toBe(4);
    expect(valueOf(text, 'pgfence_pools_server_login_connections', { target: 'default' })).toBe(1);
    expect(valueOf(text, 'pgfence_pools_client_waiting_connections', { tenant: 'acme', target: 'default' })).toBe(0);
    expect(valueOf(text, 'pgfence_pools_server_pinned_connections', { tenant: 'acme', target: 'default' })).toBe(1);

    view = { pools: [{ target: 'default', rows: [row('acme', { clWaiting: 9, svActive: 6, svTested: 2, maxWaitMs: 1500 }), row(null, {})] }], loginClients: 0, consoleClients: 1 };
    text = parseExposition(await (await fetch(`${url}/metrics`)).text());
    expect(valueOf(text, 'pgfence_pools_client_active_connections', { tenant: 'acme', target: 'default' })).toBe(0);
    expect(valueOf(text, 'pgfence_pools_server_active_connections', { target: 'default' })).toBe(6);
    expect(valueOf(text, 'pgfence_pools_server_testing_connections', { target: 'default' })).toBe(2);
    expect(valueOf(text, 'pgfence_pools_client_waiting_connections', { tenant: 'acme', target: 'default' })).toBe(9);
    expect(valueOf(text, 'pgfence_pools_client_maxwait_seconds', { target: 'default' })).toBe(1.5);
  });

  it('ignores a query string on a known path', async () => {
    const { url } = await start();
    expect((await fetch(`${url}/metrics?name[]=pgfence_pools_client_active_connections`)).status).toBe(200);
    expect((await fetch(`${url}/healthz?verbose=1`)).status).toBe(200);
  });

  it('answers 404 for any other path', async () => {
    const { url } = await start();
    for (const path of ['/', '/metrics/', '/metricsx', '/health', '/READYZ', '/admin']) {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).toBe(404);
      expect(await res.text()).toBe('not found\n');
    }
  });

  it('answers 405 with an Allow header for methods other than GET and HEAD', async () => {
    const { url } = await start();
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      for (const path of ['/metrics', '/healthz', '/readyz']) {
        const res = await fetch(`${url}${path}`, { method, ...(method === 'POST' || method === 'PUT' ? { body: 'x' } : {}) });
        expect(res.status, `${method} ${path}`).toBe(405);
        expect(res.headers.get('allow')).toBe('GET, HEAD');
        await res.text();
      }
    }
  });

  it('answers HEAD like GET without a body', async () => {
    const { url } = await start();
    const res = await fetch(`${url}/healthz`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    expect((await fetch(`${url}/metrics`, { method: 'HEAD' })).status).toBe(200);
  });

  it('answers 500 without details when a gauge source throws, and logs why', async () => {
    const { log, lines } = capturingLogger();
    const { url, metrics } = await start({}, undefined, log);
    metrics.setSources({
      pools: () => {
        throw new Error('pool exploded: password=hunter2');
      },
    });
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(500);
    const body = await res.text();
    expect(body).toBe('internal error\n');
    expect(body).not.toContain('hunter2');
    expect(lines.join('')).toContain('admin request failed');
    // The endpoint goes on serving.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('rejects a request line that is not a path', async () => {
    const { server } = await start();
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: server.port, path: 'http://elsewhere/metrics', method: 'GET' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(404);
  });
});

describe('admin endpoint: /readyz', () => {
  it('answers 200 while ready() resolves true and 503 once it resolves false, asking on every request', async () => {
    let ready = true;
    let asked = 0;
    const { url } = await start({
      ready: async () => {
        asked++;
        return ready;
      },
    });
    let res = await fetch(`${url}/readyz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await res.text()).toBe('ready\n');
    ready = false;
    res = await fetch(`${url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('not ready\n');
    expect(asked).toBe(2);
    // Liveness does not depend on readiness.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('answers 503 when ready() rejects or throws, without echoing the error', async () => {
    const rejecting = await start({ ready: () => Promise.reject(new Error('secret=hunter2')) });
    let res = await fetch(`${rejecting.url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('not ready\n');

    const throwing = await start({
      ready: () => {
        throw new Error('secret=hunter2');
      },
    });
    res = await fetch(`${throwing.url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.text()).not.toContain('hunter2');
  });

  it('answers 503 for anything but a literal true', async () => {
    const { url } = await start({ ready: async () => 'yes' as unknown as boolean });
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
  });

  it('answers 503 when ready() does not answer within the timeout', async () => {
    const { url } = await start({ ready: () => new Promise<boolean>(() => undefined) }, 100);
    const begun = performance.now();
    const res = await fetch(`${url}/readyz`);
    expect(res.status).toBe(503);
    expect(performance.now() - begun).toBeLessThan(1_500);
  });

  it('waits 2 s by default', async () => {
    // An answer 1 ms after the 2 s is too late; one 1 ms before them counts.
    expect(await readyzStatus(undefined, 2_001, 2_001)).toBe(503);
    expect(await readyzStatus(undefined, 1_999, 1_999)).toBe(200);
  });

  it('counts a slow but timely answer', async () => {
    expect(await readyzStatus(1_000, 999, 999)).toBe(200);
  });
});

describe('admin endpoint: lifecycle', () => {
  it('closes promptly even with a keep-alive connection open, and only once', async () => {
    const { server, url } = await start();
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http.get(`${url}/healthz`, { agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject);
    });
    const begun = performance.now();
    const first = server.close();
    expect(server.close()).toBe(first);
    await first;
    expect(performance.now() - begun).toBeLessThan(1_000);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    agent.destroy();
  });

  it('rejects when the port is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await expect(
        startAdminServer({ host: '127.0.0.1', port }, { metrics: new Metrics({ processMetrics: false }), ready: async () => true }, silent),
      ).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('logs where it listens', async () => {
    const { log, lines } = capturingLogger();
    const { server } = await start({}, undefined, log);
    const entry = lines.map((l) => JSON.parse(l) as { msg: string; port?: number }).find((l) => l.msg === 'admin endpoint listening');
    expect(entry?.port).toBe(server.port);
  });
});
