import { LRUCache } from 'lru-cache';
import pg from 'pg';
import { nodePostgresTarget } from '../backend/node-postgres.js';
import type { ResolvedBackendTarget } from '../config/load.js';
import type { TenancyConfig } from '../config/schema.js';
import { placementFromRow, type RegistryPlacement } from '../placement/placement.js';
import { TenantRefused } from './errors.js';
import { NAME_PATTERN, servedTenant } from './names.js';
import type { TenantResolver, TenantResolverOptions } from './resolver.js';

/** What the registry said about a tenant: its status (and timeout) columns, or that it has no row. */
type Answer = { kind: 'found'; status: unknown; statementTimeoutMs: number | undefined; where: RegistryPlacement } | { kind: 'unknown' };

/** "No such tenant" is kept at most this long, so a tenant created a moment ago soon gets in. */
const UNKNOWN_TTL_MS = 5_000;
const CACHE_ENTRIES = 10_000;
const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * Tenants from the operator's registry query, run on the backend target with $1 = tenant id
 * over a small pg pool of its own. The query returns no row (unknown tenant) or one row with a
 * `status` column: 'active' is served, anything else ('suspended', NULL, 'deleted', ...) is
 * refused. Optional `target`, `database`, `schema` (or `placement`) columns place the tenant
 * (src/placement/placement.ts). Answers are cached for cacheTtlMs, "unknown" for at most 5 s; concurrent look-ups
 * of one tenant share one query. A failed query, or one that breaks the contract (no `status`
 * column, several rows), refuses with registry_unavailable and is not cached.
 */
export function registryResolver(
  tenancy: TenancyConfig,
  registry: NonNullable<TenancyConfig['registry']>,
  backend: ResolvedBackendTarget,
  options: TenantResolverOptions,
): TenantResolver {
  const timeout = options.queryTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const pool = new pg.Pool({
    ...nodePostgresTarget(backend),
    max: 2,
    idleTimeoutMillis: 30_000,
    allowExitOnIdle: true,
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_TIMEOUT_MS,
    statement_timeout: timeout,
    query_timeout: timeout + 1_000,
    application_name: 'pgfence-registry',
  });
  // An idle registry connection that dies is simply replaced on the next query.
  pool.on('error', () => undefined);
  const ttl = registry.cacheTtlMs;
  const cache = ttl > 0 ? new LRUCache<string, Answer>({ max: CACHE_ENTRIES, ttl }) : undefined;
  const inFlight = new Map<string, Promise<Answer>>();
  let closed: Promise<void> | undefined;
  /** Bumped by forget(): an answer asked for before it is not cached (it may predate the change). */
  let generation = 0;

  const ask = async (tenantId: string): Promise<Answer> => {
    const askedIn = generation;
    let result: pg.QueryResult;
    try {
      result = await pool.query(registry.query, [tenantId]);
    } catch (error) {
      throw new TenantRefused('registry_unavailable', tenantId, { cause: error });
    }
    if (!result.fields.some((f) => f.name === 'status')) {
      throw new TenantRefused('registry_unavailable', tenantId, { cause: new Error('the registry query returns no `status` column') });
    }
    if (result.rows.length > 1) {
      throw new TenantRefused('registry_unavailable', tenantId, {
        cause: new Error(`the registry query returned ${result.rows.length} rows for one tenant`),
      });
    }
    const row = result.rows[0] as ({ status?: unknown; statement_timeout_ms?: unknown } & Record<string, unknown>) | undefined;
    const answer: Answer =
      row === undefined
        ? { kind: 'unknown' }
        : { kind: 'found', status: row.status, statementTimeoutMs: timeoutColumn(row.statement_timeout_ms, tenantId), where: placementFromRow(row, tenantId) };
    if (askedIn === generation) cache?.set(tenantId, answer, answer.kind === 'unknown' ? { ttl: Math.min(ttl, UNKNOWN_TTL_MS) } : {});
    return answer;
  };

  const lookUp = (tenantId: string): Promise<Answer> => {
    const cached = cache?.get(tenantId);
    if (cached !== undefined) return Promise.resolve(cached);
    let pending = inFlight.get(tenantId);
    if (pending === undefined) {
      const asked: Promise<Answer> = ask(tenantId).finally(() => {
        if (inFlight.get(tenantId) === asked) inFlight.delete(tenantId);
      });
      pending = asked;
      inFlight.set(tenantId, pending);
    }
    return pending;
  };

  return {
    async resolve(tenantId) {
      if (!NAME_PATTERN.test(tenantId)) throw new TenantRefused('invalid_tenant_id', tenantId);
      if (closed !== undefined) throw new TenantRefused('registry_unavailable', tenantId, { cause: new Error('resolver closed') });
      const answer = await lookUp(tenantId);
      if (answer.kind === 'unknown') throw new TenantRefused('unknown_tenant', tenantId);
      if (answer.status !== 'active') throw new TenantRefused('suspended_tenant', tenantId);
      return servedTenant(tenancy, tenantId, answer.statementTimeoutMs, answer.where);
    },
    forget(tenantId) {
      generation++;
      if (tenantId === null) cache?.clear();
      else cache?.delete(tenantId);
      // A look-up already running may have read the old row: the next one asks again.
      if (tenantId === null) inFlight.clear();
      else inFlight.delete(tenantId);
    },
    close() {
      closed ??= pool.end();
      return closed;
    },
    known() {
      const out: Array<{ id: string; status: string }> = [];
      if (cache === undefined) return out;
      for (const id of cache.keys()) {
        const answer = cache.peek(id);
        if (answer?.kind === 'found') out.push({ id, status: typeof answer.status === 'string' ? answer.status : String(answer.status) });
      }
      return out;
    },
  };
}

/** The optional `statement_timeout_ms` column: absent or NULL means the configured default. */
function timeoutColumn(value: unknown, tenantId: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof ms === 'number' && Number.isSafeInteger(ms) && ms >= 0) return ms;
  throw new TenantRefused('registry_unavailable', tenantId, { cause: new Error('statement_timeout_ms must be a whole number of milliseconds') });
}
