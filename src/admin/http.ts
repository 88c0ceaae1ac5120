import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';
import type { ReadinessVerdict } from './readiness.js';

/**
 * The admin HTTP endpoint: Prometheus metrics and health probes. It has no authentication, so it
 * listens on loopback unless configured otherwise, and it serves nothing secret: metric names,
 * counts and tenant ids, never a token, password, SQL text or connection string.
 *
 *   GET /metrics  Prometheus text exposition
 *   GET /healthz  200 "ok" while the process runs (liveness)
 *   GET /readyz   200 when `ready()` says ready within the timeout, else 503 (readiness); the
 *                 body is one line saying why (admin/readiness.ts)
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
  /** This process's metrics, or (`workers: N`) the primary's aggregation of every worker's. */
  metrics: Pick<Metrics, 'render' | 'contentType'>;
  /**
   * Whether pgfence can serve clients now, with the reason as one line of text (which must hold
   * nothing secret); a rejection or a late answer counts as not ready.
   */
  ready: () => Promise<boolean | ReadinessVerdict>;
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
      log.error({ err: error }, 'admin request failed');
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
        const verdict = await probe(deps.ready, readyTimeoutMs, log);
        send(res, verdict.ready ? 200 : 503, `${verdict.reason}\n`);
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
  server.on('error', (error) => log.error({ err: error }, 'admin endpoint error'));
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

const READY: ReadinessVerdict = { ready: true, reason: 'ready' };
const NOT_READY: ReadinessVerdict = { ready: false, reason: 'not ready' };

/** `ready()` with a deadline; throwing, rejecting, answering late or not `true` all mean not ready. */
async function probe(ready: AdminDeps['ready'], timeoutMs: number, log: Logger): Promise<ReadinessVerdict> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<ReadinessVerdict>((resolve) => {
    timer = setTimeout(() => resolve({ ready: false, reason: `not ready: the readiness check did not answer within ${timeoutMs} ms` }), timeoutMs);
  });
  try {
    const answer = Promise.resolve()
      .then(ready)
      .then(
        (value): ReadinessVerdict => {
          if (value === true) return READY;
          if (typeof value === 'object' && value !== null && typeof value.reason === 'string') return { ready: value.ready === true, reason: value.reason };
          return NOT_READY;
        },
        (error: unknown) => {
          log.warn({ err: error }, 'readiness check failed');
          return NOT_READY;
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
