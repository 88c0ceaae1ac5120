import { BackendError } from '../backend/errors.js';

/**
 * What GET /readyz answers: whether this pgfence can serve a client now, and why not.
 *
 * Not ready while it drains (shutdown) or no longer listens, and when the backend cannot be
 * reached: a probe opens a fresh server connection (startup and authentication, then Terminate)
 * and its answer is reused for `probeCacheMs`, so a load balancer polling every second costs
 * Postgres at most one short connection per `probeCacheMs`; concurrent checks share one probe.
 * A backend that refuses new connections with 53300 (max_connections or a role's CONNECTION
 * LIMIT reached) while the pool still holds server connections is ready: those serve clients.
 * `probeCacheMs: 0` turns the backend probe off (ready = listening and not draining).
 */

export interface ReadinessDeps {
  draining: () => boolean;
  listening: () => boolean;
  /** Server connections the pool holds now (idle, active or resetting). */
  pooledConnections: () => number;
  /** Opens one server connection and closes it; rejects with why it could not. */
  probeBackend: () => Promise<void>;
  /** Where the probe goes, for the reason text (host:port/database, never credentials). */
  backendName: string;
  now?: () => number;
}

export interface ReadinessVerdict {
  ready: boolean;
  /** One line for the body of /readyz. */
  reason: string;
}

/** SQLSTATE of "too many connections" (max_connections, reserved slots, a role's or database's CONNECTION LIMIT). */
export const TOO_MANY_CONNECTIONS = '53300';

export class Readiness {
  private last: { at: number; error: Error | null } | null = null;
  private inFlight: Promise<Error | null> | null = null;
  private readonly now: () => number;

  constructor(
    private readonly deps: ReadinessDeps,
    private readonly probeCacheMs: () => number,
  ) {
    this.now = deps.now ?? Date.now;
  }

  async check(): Promise<ReadinessVerdict> {
    if (this.deps.draining()) return { ready: false, reason: 'not ready: draining (pgfence is shutting down)' };
    if (!this.deps.listening()) return { ready: false, reason: 'not ready: not listening for clients' };
    const cacheMs = this.probeCacheMs();
    if (cacheMs <= 0) return { ready: true, reason: 'ready' };
    const error = await this.probe(cacheMs);
    if (error === null) return { ready: true, reason: `ready: backend ${this.deps.backendName} accepts connections` };
    const backend = `backend ${this.deps.backendName}`;
    if (error instanceof BackendError && error.sqlstate === TOO_MANY_CONNECTIONS) {
      const pooled = this.deps.pooledConnections();
      if (pooled > 0) return { ready: true, reason: `ready: serving from ${pooled} pooled server connection(s); ${backend} refuses new ones (53300: ${error.message})` };
      return { ready: false, reason: `not ready: ${backend} refuses new connections (53300: ${error.message}) and the pool holds none` };
    }
    const code = error instanceof BackendError && error.sqlstate !== undefined ? `${error.sqlstate}: ` : '';
    return { ready: false, reason: `not ready: ${backend} cannot be reached (${code}${error.message})` };
  }

  /** The last probe's error (null = it connected) when younger than `cacheMs`, else a new probe's. */
  private probe(cacheMs: number): Promise<Error | null> {
    const last = this.last;
    if (last !== null && this.now() - last.at < cacheMs) return Promise.resolve(last.error);
    this.inFlight ??= this.deps
      .probeBackend()
      .then(
        () => null,
        (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
      )
      .then((error) => {
        this.last = { at: this.now(), error };
        this.inFlight = null;
        return error;
      });
    return this.inFlight;
  }
}
