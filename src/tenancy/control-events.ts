import pg from 'pg';
import type { Logger } from 'pino';
import { nodePostgresTarget } from '../backend/node-postgres.js';
import type { ResolvedBackendTarget } from '../config/load.js';
import { type PauseEvent, readPauseEvent } from '../placement/tenant-pauses.js';
import { changedTenant, controlChannel } from './control.js';
import { TenantRefused } from './errors.js';
import { quoteIdent } from './names.js';
import type { TenantResolver } from './resolver.js';

/** application_name of the listening connection; `pgfence tenant suspend` counts them in pg_stat_activity. */
export const CONTROL_EVENTS_APPLICATION = 'pgfence-control-events';

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 5_000;

export interface ControlEventsOptions {
  target: ResolvedBackendTarget;
  schema: string;
  connectTimeoutMs: number;
  /** The resolver in use now (a reload may replace it). */
  resolver: () => TenantResolver;
  /** Tenants with at least one live session. */
  liveTenants: () => Iterable<string>;
  /** Ends every session of a tenant; returns how many. */
  killTenant: (tenantId: string) => number;
  /** A tenant's pause or resume by `pgfence tenant move` (src/placement/tenant-pauses.ts). */
  onPause?: (event: PauseEvent) => void;
  log: Logger;
}

export interface ControlEvents {
  /** Resolves once the first LISTEN is in place (or the first attempt failed and a retry is scheduled). */
  readonly ready: Promise<void>;
  /** NOTIFY from the listening connection (its pid names this proxy); dropped when not connected. */
  notify(channel: string, payload: string): void;
  close(): Promise<void>;
}

/**
 * How a running proxy hears `pgfence tenant suspend|resume|drop`: one connection, as the service
 * role, LISTENs on the control channel. A notification names a tenant; the proxy forgets its
 * cached row, reads it again, and ends the tenant's live sessions when it is no longer active. The
 * payload is a hint, never an order (anyone connected to the database may NOTIFY): only what the
 * registry says ends sessions. After a lost connection (when notifications may have been missed)
 * the whole cache is dropped and every tenant with live sessions is checked again.
 */
export function watchControlEvents(options: ControlEventsOptions): ControlEvents {
  const { log } = options;
  const channel = controlChannel(options.schema);
  let client: pg.Client | null = null;
  let closed = false;
  let retryMs = FIRST_RETRY_MS;
  let timer: NodeJS.Timeout | undefined;

  const recheck = async (tenantId: string): Promise<void> => {
    try {
      await options.resolver().resolve(tenantId);
      log.debug({ tenant: tenantId }, 'tenant still active: its sessions are kept');
    } catch (error) {
      if (!(error instanceof TenantRefused) || error.reason === 'registry_unavailable') {
        log.error({ tenant: tenantId, err: error instanceof Error ? error.message : String(error) }, 'tenant change announced but the registry could not be read; sessions kept');
        return;
      }
      const killed = options.killTenant(tenantId);
      log.info({ tenant: tenantId, reason: error.reason, killed }, 'tenant no longer active: its sessions were ended');
    }
  };

  const onNotification = (message: pg.Notification): void => {
    if (message.channel !== channel) return;
    const pause = readPauseEvent(message.payload);
    if (pause !== null) {
      options.onPause?.(pause);
      return;
    }
    const tenantId = changedTenant(message.payload);
    options.resolver().forget(tenantId);
    const live = new Set(options.liveTenants());
    const toCheck = tenantId === null ? [...live] : live.has(tenantId) ? [tenantId] : [];
    log.debug({ tenant: tenantId, checked: toCheck.length }, 'tenant change announced');
    for (const id of toCheck) void recheck(id);
  };

  const connect = async (): Promise<void> => {
    if (closed) return;
    const next = new pg.Client({
      ...nodePostgresTarget(options.target),
      connectionTimeoutMillis: options.connectTimeoutMs,
      application_name: CONTROL_EVENTS_APPLICATION,
    });
    next.on('error', () => undefined);
    next.on('notification', onNotification);
    next.on('end', () => {
      if (client !== next) return;
      client = null;
      if (!closed) lost('connection ended');
    });
    try {
      await next.connect();
      await next.query(`LISTEN ${quoteIdent(channel)}`);
    } catch (error) {
      await next.end().catch(() => undefined);
      lost(error instanceof Error ? error.message : String(error));
      return;
    }
    if (closed) {
      await next.end().catch(() => undefined);
      return;
    }
    const reconnected = retryMs !== FIRST_RETRY_MS;
    client = next;
    retryMs = FIRST_RETRY_MS;
    log.info({ channel }, 'listening for tenant changes');
    // Whatever was announced while nobody listened: read every live tenant again.
    if (reconnected) onNotification({ channel, payload: undefined, processId: 0 } as pg.Notification);
  };

  const lost = (reason: string): void => {
    if (closed) return;
    log.warn({ err: reason, retryInMs: retryMs }, 'tenant change listener lost its connection; reconnecting');
    timer = setTimeout(() => void connect(), retryMs);
    timer.unref();
    retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
  };

  const ready = connect();
  return {
    ready,
    notify(to, payload) {
      client?.query('SELECT pg_catalog.pg_notify($1, $2)', [to, payload]).catch((error: unknown) => {
        log.warn({ err: error instanceof Error ? error.message : String(error), channel: to }, 'could not notify on the control database');
      });
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      await ready;
      const current = client;
      client = null;
      await current?.end().catch(() => undefined);
    },
  };
}
