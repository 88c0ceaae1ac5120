import net from 'node:net';
import type { Logger } from 'pino';
import { type AdminServer, Metrics, startAdminServer } from './admin/index.js';
import { createTokenVerifier } from './auth/index.js';
import { resolveBackendTarget } from './config/load.js';
import type { Config } from './config/schema.js';
import { CancelRegistry } from './frontend/cancel-registry.js';
import { ClientSession, type SessionDeps } from './frontend/session.js';
import { clientTlsContext } from './frontend/tls.js';
import { Guard } from './guard/index.js';
import { BackendPool } from './pool/pool.js';
import { createTenantResolver } from './tenancy/index.js';

export interface RunningPgfence {
  readonly host: string;
  readonly port: number;
  readonly pool: BackendPool;
  readonly metrics: Metrics;
  /** Port of the admin HTTP endpoint, when enabled. */
  readonly adminPort: number | null;
  /** Live client sessions. */
  readonly sessionCount: number;
  close(): Promise<void>;
}

/** Starts the listener and everything behind it; resolves once it accepts connections. */
export interface StartOptions {
  /** Node's process metrics (event loop, heap) in /metrics; off for proxies started inside tests. */
  processMetrics?: boolean;
}

export async function startPgfence(config: Config, log: Logger, options: StartOptions = {}): Promise<RunningPgfence> {
  const metrics = new Metrics({ processMetrics: options.processMetrics ?? true });
  const guard = await Guard.create({ cacheSize: config.guard.cacheSize });
  const verifier = await createTokenVerifier(config.jwt);
  const target = resolveBackendTarget(config.backend);
  const tenants = createTenantResolver(config.tenancy, target, { connectTimeoutMs: config.backend.connectTimeoutMs });
  const pool = new BackendPool(
    target,
    {
      size: config.pool.size,
      maxPerTenant: config.pool.maxPerTenant,
      acquireTimeoutMs: config.pool.acquireTimeoutMs,
      resetTimeoutMs: config.pool.resetTimeoutMs,
      idleTimeoutMs: config.pool.idleTimeoutMs,
      maxLifetimeMs: config.pool.maxLifetimeMs,
      healthCheckAfterIdleMs: config.pool.healthCheckAfterIdleMs,
      connectTimeoutMs: config.backend.connectTimeoutMs,
      maxMessageBytes: config.listen.maxMessageBytes,
    },
    log.child({ component: 'pool' }),
    metrics,
  );
  pool.onAcquired = (seconds) => metrics.acquireWait(seconds);
  const tls = config.listen.tls === undefined ? null : clientTlsContext(config.listen.tls);
  const deps: SessionDeps = { config, guard, verifier, tenants, pool, cancels: new CancelRegistry(), log, metrics, tls };
  const sessions = new Set<ClientSession>();

  const server = net.createServer({ noDelay: true }, (socket) => {
    const session = new ClientSession(socket, deps);
    sessions.add(session);
    socket.once('close', () => sessions.delete(session));
    session.start();
  });
  server.on('error', (error) => log.error({ err: error.message }, 'listener error'));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;
  log.info({ host: address.address, port: address.port, backend: `${target.host}:${target.port}/${target.database}` }, 'pgfence listening');

  let closing: Promise<void> | null = null;
  metrics.setSources({ clients: () => sessions.size, pool: () => pool.stats });
  const admin: AdminServer | null = config.admin.enabled
    ? await startAdminServer(config.admin, { metrics, ready: async () => closing === null && server.listening }, log.child({ component: 'admin' }))
    : null;
  return {
    host: address.address,
    port: address.port,
    pool,
    metrics,
    adminPort: admin?.port ?? null,
    get sessionCount() {
      return sessions.size;
    },
    close() {
      closing ??= (async () => {
        await admin?.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const session of sessions) session.terminate();
        });
        await pool.close();
        await tenants.close();
        log.info('pgfence stopped');
      })();
      return closing;
    },
  };
}
