import net from 'node:net';
import type { Logger } from 'pino';
import { type AdminServer, livePoolsView, Metrics, startAdminServer } from './admin/index.js';
import { createTokenVerifier } from './auth/index.js';
import { resolveBackendTarget } from './config/load.js';
import { planReload } from './config/reload.js';
import type { Config } from './config/schema.js';
import { Readiness, type ReadinessVerdict } from './admin/readiness.js';
import { BackendConnection } from './backend/connection.js';
import { AuthThrottle } from './frontend/auth-throttle.js';
import { cancelRegistry, type WorkerHooks } from './cluster/hooks.js';
import { sharedPoolOptions } from './cluster/shares.js';
import type { CancelRegistry } from './frontend/cancel-registry.js';
import { clientErrors } from './frontend/errors.js';
import { consoleContext } from './admin/console-context.js';
import { ClientSession } from './frontend/client-session.js';
import type { SessionDeps } from './frontend/session-deps.js';
import { clientTlsContext } from './frontend/tls.js';
import { Guard } from './guard/index.js';
import type { BackendPool, PoolOptions } from './pool/pool.js';
import { ChannelListeners } from './placement/listeners.js';
import { BackendPools } from './placement/pools.js';
import { targetReadiness, unreachableTargets } from './placement/reachability.js';
import { TenantPauses } from './placement/tenant-pauses.js';
import { createTenantResolver, TenantRefused, type Tenant, type TenantResolver } from './tenancy/index.js';
import { controlAckChannel } from './tenancy/control.js';
import { type ControlEvents, watchControlEvents } from './tenancy/control-events.js';

export interface RunningPgfence {
  readonly host: string;
  readonly port: number;
  readonly pool: BackendPool;
  /** Every backend target's pools (`pool` is the target default's). */
  readonly pools: BackendPools;
  readonly metrics: Metrics;
  /** The BackendKeyData of this process's clients (cluster/worker.ts passes it the keys other workers received). */
  readonly cancels: CancelRegistry;
  /** Port of the admin HTTP endpoint, when enabled. */
  readonly adminPort: number | null;
  /** Live client sessions. */
  readonly sessionCount: number;
  /** Takes what can change live from a new configuration; reports what could not. */
  reload(next: Config): Promise<{ applied: string[]; notApplied: string[] }>;
  /** Disconnects every client of a tenant; returns how many. */
  killTenant(tenantId: string): number;
  /** What /readyz answers for this process (a worker answers it for the primary's /readyz). */
  ready(): Promise<ReadinessVerdict>;
  /** Tenants paused here for a move (`pgfence tenant move`), until it resumes them. */
  pausedTenants(): string[];
  /** Resolves when SHUTDOWN is issued in the admin console; the caller then calls close() (as for SIGTERM). */
  readonly shutdownRequested: Promise<void>;
  /** Stops accepting, lets transactions finish for `listen.shutdownTimeoutMs`, then closes everything. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Node's process metrics (event loop, heap) in /metrics; off for proxies started inside tests. */
  processMetrics?: boolean;
  /** Where RELOAD in the admin console rereads the configuration; without it RELOAD is refused. */
  loadConfig?: () => Promise<Config>;
  /**
   * Set in a worker of `workers: N` (cluster/worker.ts): the pool gets the worker's shares, cancel
   * keys carry its index, the console answers for every worker, and the primary serves the admin
   * endpoint. Absent: one process, as always.
   */
  worker?: WorkerHooks;
}

/** PgBouncer's default stats_period: SHOW STATS's avg_* columns cover this much time. */
const STATS_PERIOD_MS = 60_000;

function poolOptions(config: Config): PoolOptions {
  return {
    size: config.pool.size,
    maxPerTenant: config.pool.maxPerTenant,
    acquireTimeoutMs: config.pool.acquireTimeoutMs,
    resetTimeoutMs: config.pool.resetTimeoutMs,
    idleTimeoutMs: config.pool.idleTimeoutMs,
    maxLifetimeMs: config.pool.maxLifetimeMs,
    healthCheckAfterIdleMs: config.pool.healthCheckAfterIdleMs,
    connectTimeoutMs: config.backend.connectTimeoutMs,
    maxMessageBytes: config.listen.maxMessageBytes,
    maxPreparedStatements: config.pool.maxPreparedStatements,
  };
}

function tenantResolver(config: Config): TenantResolver {
  return createTenantResolver(config.tenancy, resolveBackendTarget(config.backend), { connectTimeoutMs: config.backend.connectTimeoutMs });
}

/** Starts the listener and everything behind it; resolves once it accepts connections. */
export async function startPgfence(config: Config, log: Logger, options: StartOptions = {}): Promise<RunningPgfence> {
  const metrics = new Metrics({ processMetrics: options.processMetrics ?? true });
  const target = resolveBackendTarget(config.backend);
  const worker = options.worker;
  // One pool per backend target (and per tenant database in use); `pool` is the target default's.
  const pools = new BackendPools(config, log, metrics, (o) => sharedPoolOptions(o, worker?.index ?? 0, worker?.count ?? 1));
  const pool = pools.default;
  // Sessions read their dependencies through this object, so a reload reaches new connections
  // (and new transactions) without touching the ones already pinned.
  const deps: SessionDeps = {
    config,
    guard: await Guard.create({ cacheSize: config.guard.cacheSize }),
    verifier: await createTokenVerifier(config.jwt),
    tenants: tenantResolver(config),
    pool,
    pools,
    cancels: cancelRegistry(config, metrics, log, worker),
    authThrottle: new AuthThrottle(
      () => deps.config.listen.authThrottle,
      log.child({ component: 'auth-throttle' }),
      () => metrics.authThrottled(),
      Date.now,
      worker === undefined ? undefined : (key) => worker.loginFailed(key),
    ),
    pauses: null,
    listeners: new ChannelListeners((name) => pools.spec(name), (spec) => spec.pool, log.child({ component: 'listener' })),
    log,
    metrics,
    console: null,
    tls: config.listen.tls === undefined ? null : clientTlsContext(config.listen.tls),
  };
  if (worker !== undefined) worker.onLoginFailedElsewhere = (key) => deps.authThrottle.failedElsewhere(key);
  const sessions = new Set<ClientSession>();

  const forget = (session: ClientSession): void => {
    sessions.delete(session);
  };
  const server = net.createServer({ noDelay: true }, (socket) => {
    const session = new ClientSession(socket, deps, forget);
    sessions.add(session);
    session.start();
  });
  server.on('error', (error) => log.error({ err: error }, 'listener error'));

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
  metrics.setSources({
    pools: () => livePoolsView(sessions, pools.all(), deps.config.pool.healthCheckAfterIdleMs),
  });
  // PgBouncer's stats_period: SHOW STATS's averages cover the last minute.
  metrics.rollStatsPeriod();
  const statsPeriod = setInterval(() => metrics.rollStatsPeriod(), STATS_PERIOD_MS);
  statsPeriod.unref();
  const readiness = new Readiness(
    {
      draining: () => closing !== null,
      listening: () => server.listening,
      pooledConnections: () => {
        const stats = pool.stats;
        return stats.idle + stats.active + stats.resetting;
      },
      probeBackend: async () => (await BackendConnection.connect(target, poolOptions(deps.config))).destroy(),
      backendName: `${target.host}:${target.port}/${target.database}`,
    },
    () => deps.config.admin.readyProbeCacheMs,
  );
  // With several backend targets, /readyz also names the ones that cannot be reached (src/placement).
  const readyWithTargets = async (): Promise<ReadinessVerdict> => {
    const verdict = await readiness.check();
    const specs = pools.targetNames().flatMap((name) => pools.spec(name) ?? []);
    if (!verdict.ready || specs.length <= 1) return verdict;
    const { ready, detail } = targetReadiness(await unreachableTargets(specs), specs.length);
    return detail === null ? verdict : { ready, reason: `${verdict.reason}\n${detail}` };
  };
  const admin: AdminServer | null = config.admin.enabled && worker === undefined
    ? await startAdminServer(config.admin, { metrics, ready: () => readyWithTargets() }, log.child({ component: 'admin' }))
    : null;

  async function reload(next: Config): Promise<{ applied: string[]; notApplied: string[] }> {
    const plan = planReload(deps.config, next);
    const effective = plan.effective;
    // Build everything first: a key that does not load leaves the running configuration untouched.
    const verifier = await createTokenVerifier(effective.jwt);
    const tls = effective.listen.tls === undefined ? null : clientTlsContext(effective.listen.tls);
    const guard = plan.applied.some((k) => k.startsWith('guard')) ? await Guard.create({ cacheSize: effective.guard.cacheSize }) : deps.guard;
    const tenantsChanged = plan.applied.some((k) => k.startsWith('tenancy'));
    const oldTenants = deps.tenants;
    if (tenantsChanged) deps.tenants = tenantResolver(effective);
    deps.verifier = verifier;
    deps.tls = tls;
    deps.guard = guard;
    deps.config = effective;
    const targets = pools.reconfigure(effective);
    deps.listeners.retarget(targets.replaced);
    // Tenants of a removed target are refused from now on (08004); their sessions end after their transaction.
    const removed = new Set(targets.removed);
    for (const session of sessions) if (session.target !== null && removed.has(session.target)) session.targetRemoved();
    if (targets.opened.length + targets.replaced.length + targets.removed.length > 0) log.info(targets, 'backend targets reloaded');
    log.level = effective.log.level;
    if (tenantsChanged) await oldTenants.close();
    log.info({ applied: plan.applied, notApplied: plan.notApplied }, 'configuration reloaded');
    return { applied: plan.applied, notApplied: plan.notApplied };
  }

  function killTenant(tenantId: string): number {
    let killed = 0;
    for (const session of sessions) {
      if (session.tenantId !== tenantId) continue;
      session.terminate(clientErrors.tenantKilled(tenantId));
      killed++;
    }
    return killed;
  }

  // `pgfence tenant move`: the tenant's transactions wait while it is copied, then follow it.
  const control = config.tenancy.control;
  const pauses =
    control === undefined
      ? null
      : new TenantPauses({
          busy: (id) => [...sessions].some((s) => s.tenantId === id && s.holdsBackend),
          endBoundSessions: (id) => {
            if (deps.config.pool.mode !== 'session') return;
            for (const session of sessions) if (session.tenantId === id) session.drain(clientErrors.tenantMoved(id));
          },
          rehome: (id) => rehome(id),
          acknowledge: (ack) => controlEvents?.notify(controlAckChannel(control.schema), JSON.stringify(ack)),
          log: log.child({ component: 'tenant-pauses' }),
        });
  deps.pauses = pauses;

  /** After a pause: the tenant's row read again; its sessions follow it, or end when it is no longer served. */
  async function rehome(tenantId: string): Promise<void> {
    deps.tenants.forget(tenantId);
    let tenant: Tenant;
    try {
      tenant = await deps.tenants.resolve(tenantId);
    } catch (error) {
      const gone = error instanceof TenantRefused && error.reason !== 'registry_unavailable';
      log.warn({ tenant: tenantId, err: error instanceof Error ? error.message : String(error) }, 'tenant resumed but not served: its sessions are ended');
      for (const session of sessions) {
        if (session.tenantId === tenantId) session.terminate(gone ? clientErrors.tenantKilled(tenantId) : clientErrors.tenantMoved(tenantId));
      }
      return;
    }
    // The waiting transactions go on only once the sessions listen where the tenant lives now.
    await Promise.all([...sessions].filter((s) => s.tenantId === tenantId).map((s) => s.rehome(tenant)));
  }

  // With the registry pgfence owns, `pgfence tenant suspend` ends live sessions here too.
  const controlEvents: ControlEvents | null =
    config.tenancy.control === undefined
      ? null
      : watchControlEvents({
          target,
          schema: config.tenancy.control.schema,
          connectTimeoutMs: config.backend.connectTimeoutMs,
          resolver: () => deps.tenants,
          liveTenants: () => [...sessions].flatMap((s) => (s.tenantId === null ? [] : [s.tenantId])),
          killTenant,
          onPause: (event) => pauses?.onEvent(event),
          log: log.child({ component: 'control-events' }),
        });
  await controlEvents?.ready;


  let stopped: () => void = () => undefined;
  const shutdownRequested = new Promise<void>((resolve) => (stopped = resolve));
  const local = consoleContext({
    deps,
    sessions,
    target: { host: target.host, port: target.port, database: target.database, user: target.user },
    listenPort: address.port,
    shutdown: () => {
      log.info('SHUTDOWN from the admin console');
      // After the answer has been written: the console session is then ended with the others.
      setImmediate(stopped);
    },
    reload: async () => {
      if (options.loadConfig === undefined) throw new Error('this pgfence was started without a configuration file');
      return reload(await options.loadConfig());
    },
    killTenant,
  });
  deps.console = worker === undefined ? local : worker.console(local);

  return {
    host: address.address,
    port: address.port,
    pool,
    pools,
    metrics,
    cancels: deps.cancels,
    adminPort: admin?.port ?? null,
    get sessionCount() {
      return sessions.size;
    },
    reload,
    killTenant,
    ready: readyWithTargets,
    pausedTenants: () => pauses?.pausedTenants ?? [],
    shutdownRequested,
    close() {
      closing ??= (async () => {
        clearInterval(statsPeriod);
        // The admin endpoint stays up while clients drain: /readyz says 503 "draining", /metrics still answers.
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        pauses?.close();
        for (const session of sessions) session.drain();
        const deadline = Date.now() + deps.config.listen.shutdownTimeoutMs;
        while (sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
        for (const session of sessions) session.terminate();
        await stopped;
        await admin?.close();
        await pools.close();
        await deps.listeners.close();
        await controlEvents?.close();
        await deps.tenants.close();
        log.info('pgfence stopped');
      })();
      return closing;
    },
  };
}
