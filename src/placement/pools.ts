import type { Logger } from 'pino';
import type { Metrics } from '../admin/index.js';
import type { Config } from '../config/schema.js';
import { BackendPool, type PoolOptions } from '../pool/pool.js';
import type { Tenant } from '../tenancy/index.js';
import { PlacementRefused } from './errors.js';
import { DEFAULT_TARGET, type Placement } from './placement.js';
import { type TargetSpec, targetSpecs } from './targets.js';

/** One pool of BackendPools: a target's own, or one tenant database's on it. */
export interface PlacedPool {
  target: string;
  /** The database its backends connect to. */
  database: string;
  /** True for a tenant database's pool (database per tenant). */
  tenantDatabase: boolean;
  pool: BackendPool;
}

interface TargetPools {
  spec: TargetSpec;
  own: BackendPool;
  /** `own` as sessions hold it: never closed, so one object serves them all. */
  ownHeld: HeldPool;
  /** Tenant databases' pools by database name, least recently opened first. */
  databases: Map<string, BackendPool>;
  /** Sessions holding each tenant database's pool: a pool someone holds is never closed. */
  holders: Map<BackendPool, number>;
}

/** A session's pool, until it lets go of it (when it ends). */
export interface HeldPool {
  readonly pool: BackendPool;
  /** Idempotent. */
  letGo(): void;
}

/**
 * Every backend pool of the process: one per target (its configured database), and one per tenant
 * database in use on a target (database per tenant), at most `maxDatabases` of those per target.
 * A session asks `forTenant` for the pool of its tenant's placement; an unknown target is refused
 * (PlacementRefused), never replaced by the default.
 */
export class BackendPools {
  private readonly targets = new Map<string, TargetPools>();
  private closed = false;

  constructor(
    config: Config,
    private readonly log: Logger,
    private readonly metrics: Metrics | null,
    /** With `workers: N`, this worker's share of each pool's figures. */
    private readonly share: (options: PoolOptions) => PoolOptions = (options) => options,
  ) {
    for (const spec of targetSpecs(config).values()) {
      const own = this.open(spec, spec.target.database, false);
      this.targets.set(spec.name, { spec, own, ownHeld: { pool: own, letGo: () => undefined }, databases: new Map(), holders: new Map() });
    }
  }

  /** The pool of the target `default` (the `backend` key). */
  get default(): BackendPool {
    return (this.targets.get(DEFAULT_TARGET) as TargetPools).own;
  }

  /** Target names, `default` first. */
  targetNames(): string[] {
    return [...this.targets.keys()];
  }

  spec(target: string): TargetSpec | undefined {
    return this.targets.get(target)?.spec;
  }

  /**
   * The pool serving a tenant, held by the caller until it lets go: its target's own, or its
   * database's on that target (opened on first use). Throws PlacementRefused for a target this
   * process does not have, or when the target already has maxDatabases tenant databases in use.
   */
  forTenant(tenant: Tenant): HeldPool {
    const placement: Placement = tenant.placement ?? { target: DEFAULT_TARGET, database: null };
    const entry = this.targets.get(placement.target);
    if (entry === undefined) throw new PlacementRefused('unknown_target', tenant.id, placement);
    const database = placement.database;
    if (database === null || database === entry.spec.target.database) return entry.ownHeld;
    if (this.closed) throw new Error('pools are closing');
    let pool = entry.databases.get(database);
    if (pool === undefined) {
      if (entry.databases.size >= entry.spec.maxDatabases && !this.evictUnused(entry)) {
        throw new PlacementRefused('too_many_databases', tenant.id, placement);
      }
      pool = this.open(entry.spec, database, true);
      entry.databases.set(database, pool);
    }
    const held = pool;
    entry.holders.set(held, (entry.holders.get(held) ?? 0) + 1);
    let gone = false;
    return {
      pool: held,
      letGo: () => {
        if (gone) return;
        gone = true;
        const left = (entry.holders.get(held) ?? 1) - 1;
        if (left > 0) entry.holders.set(held, left);
        else entry.holders.delete(held);
      },
    };
  }

  /** Every pool now, target by target, the target's own first. */
  all(): PlacedPool[] {
    const out: PlacedPool[] = [];
    for (const { spec, own, databases } of this.targets.values()) {
      out.push({ target: spec.name, database: spec.target.database, tenantDatabase: false, pool: own });
      for (const [database, pool] of databases) out.push({ target: spec.name, database, tenantDatabase: true, pool });
    }
    return out;
  }

  /** New limits and timeouts from a reload (targets themselves are not reloaded). */
  reconfigure(config: Config): void {
    const specs = targetSpecs(config);
    for (const entry of this.targets.values()) {
      const next = specs.get(entry.spec.name);
      if (next === undefined) continue;
      entry.spec = { ...next, target: entry.spec.target };
      entry.own.reconfigure(this.share(entry.spec.pool));
      for (const pool of entry.databases.values()) pool.reconfigure(this.share(entry.spec.databasePool));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.all().map(({ pool }) => pool.close()));
  }

  private open(spec: TargetSpec, database: string, tenantDatabase: boolean): BackendPool {
    const log = this.log.child({ component: 'pool', target: spec.name, ...(tenantDatabase ? { database } : {}) });
    const pool = new BackendPool({ ...spec.target, database }, this.share(tenantDatabase ? spec.databasePool : spec.pool), log, this.metrics);
    const metrics = this.metrics;
    if (metrics !== null) pool.onAcquired = (seconds, tenant) => metrics.acquireWait(seconds, tenant);
    return pool;
  }

  /** Closes the oldest tenant-database pool no session holds; false when every one is held. */
  private evictUnused(entry: TargetPools): boolean {
    for (const [database, pool] of entry.databases) {
      const s = pool.stats;
      if (entry.holders.has(pool) || s.active + s.resetting + s.connecting + s.waiting > 0) continue;
      entry.databases.delete(database);
      void pool.close();
      this.log.info({ target: entry.spec.name, database }, 'closed the pool of an unused tenant database');
      return true;
    }
    return false;
  }
}
