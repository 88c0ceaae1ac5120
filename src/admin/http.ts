import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';

/**
 * The admin HTTP endpoint: Prometheus metrics and health probes. It has no authentication, so it
 * listens on loopback unless configured otherwise, and it serves nothing secret: metric names,
 * counts and tenant ids, never a token, password, SQL text or connection string.
 *
 *   GET /metrics  Prometheus text exposition
 *   GET /healthz  200 "ok" while the process runs (liveness)
 *   GET /readyz   200 when `ready()` resolves true within the timeout, else 503 (readiness)
 *
 * HEAD is answered like GET without a body; any other method on these paths gets 405, and any
 * other path 404.
 */

export interface AdminServerOptions {
  host: string;
  port: number;
  /** How long /readyz waits for `ready()`; default 2 s. */
  readyTimeoutMs?: number;
}

export interface AdminDeps {
  metrics: Metrics;
  /**
   * Whether pgfence can serve clients now; a rejection or a late answer counts as not ready. With
   * a detail (e.g. the backend targets that cannot be reached), the body carries it.
   */
  ready: () => Promise<boolean | { ready: boolean; detail: string | null }>;
}

export interface AdminServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

export const DEFAULT_READY_TIMEOUT_MS = 2_000;

const TEXT = 'text/plain; charset=utf-8';
const ALLOW = 'GET, HEAD';
const ROUTES = new Set(['/metrics', '/healthz', '/readyz']);

/** Starts the admin endpoint; resolves once it listens (port 0 picks a free port). */
export async function startAdminServer(opts: AdminServerOptions, deps: AdminDeps, log: Logger): Promise<AdminServer> {
  const readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const server = http.createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      log.error({ err: error instanceof Error ? error.message : String(error) }, 'admin request failed');
      if (!res.headersSent) send(res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  // A probe or a scrape is one small request: slow or idle clients are not kept around.
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = pathOf(req.url);
    if (path === null || !ROUTES.has(path)) {
      send(res, 404, 'not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'method not allowed\n', TEXT, { Allow: ALLOW });
      return;
    }
    switch (path) {
      case '/healthz':
        send(res, 200, 'ok\n');
        return;
      case '/readyz': {
        const { ready, detail } = await probe(deps.ready, readyTimeoutMs, log);
        send(res, ready ? 200 : 503, `${ready ? 'ready' : 'not ready'}\n${detail === null ? '' : `${detail}\n`}`);
        return;
      }
      case '/metrics':
        send(res, 200, await deps.metrics.render(), deps.metrics.contentType);
        return;
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => log.error({ err: error.message }, 'admin endpoint error'));
  const address = server.address() as AddressInfo;
  log.info({ host: address.address, port: address.port }, 'admin endpoint listening');

  let closing: Promise<void> | null = null;
  return {
    host: address.address,
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** `ready()` with a deadline; throwing, rejecting, answering late or not `true` all mean not ready. */
async function probe(ready: AdminDeps['ready'], timeoutMs: number, log: Logger): Promise<{ ready: boolean; detail: string | null }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<{ ready: boolean; detail: string | null }>((resolve) => {
    timer = setTimeout(() => resolve({ ready: false, detail: null }), timeoutMs);
  });
  try {
    const answer = Promise.resolve()
      .then(ready)
      .then(
        (value) => (typeof value === 'object' && value !== null ? { ready: value.ready === true, detail: value.detail } : { ready: value === true, detail: null }),
        (error: unknown) => {
          log.warn({ err: error instanceof Error ? error.message : String(error) }, 'readiness check failed');
          return { ready: false, detail: null };
        },
      );
    return await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The path of a request target, without the query string; null when it cannot be parsed. */
function pathOf(url: string | undefined): string | null {
  if (url === undefined || !url.startsWith('/')) return null;
  const end = url.indexOf('?');
  return end < 0 ? url : url.slice(0, end);
}

function send(res: http.ServerResponse, status: number, body: string, contentType = TEXT, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(body);
}
