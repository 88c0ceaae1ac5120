import { isDeepStrictEqual } from 'node:util';
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
  /** The target as this pool connects to it (a retiring pool keeps the settings it was opened with). */
  spec: TargetSpec;
  /** A reload removed or changed its target: it serves no new transaction and closes once empty. */
  retiring: boolean;
}

interface TargetPools {
  spec: TargetSpec;
  own: BackendPool;
  /** Tenant databases' pools by database name, least recently opened first. */
  databases: Map<string, BackendPool>;
  /** Sessions holding each tenant database's pool: a pool someone holds is never closed. */
  holders: Map<BackendPool, number>;
  /** A reload removed or replaced this target: its pools drain. */
  retired: boolean;
}

/** A session's pool, until it lets go of it (when it ends). */
export interface HeldPool {
  /**
   * The pool to take the next backend from: the tenant's placement's, or after a reload changed
   * its target's settings, the new pool's. Throws PlacementRefused (08004) once a reload removed
   * the target, as a fresh connect is refused.
   */
  readonly pool: BackendPool;
  /** The pool last handed out, without the reload check (what SHOW POOLS counts the session under). */
  readonly current: BackendPool;
  /** Where the tenant is served: its target and the database there. */
  readonly target: string;
  readonly database: string;
  /** The tenant's own database on the target (database per tenant); null when it lives in the target's database. */
  readonly tenantDatabase: string | null;
  /** Idempotent. */
  letGo(): void;
}

/** What a reload did to the targets, by name. */
export interface TargetChanges {
  opened: string[];
  /** Connection settings changed: a new pool serves new transactions, the old one drains. */
  replaced: string[];
  /** No longer configured: its pools drain, its tenants are refused (08004). */
  removed: string[];
}

interface Taken {
  entry: TargetPools;
  pool: BackendPool;
  database: string;
  tenantDatabase: string | null;
  letGo(): void;
}

const DEFAULT_PLACEMENT: Placement = Object.freeze({ target: DEFAULT_TARGET, database: null });
/** A target's own pool is never closed while held: nothing to count. */
const NOTHING_TO_LET_GO = (): void => undefined;

/**
 * A session's hold on its tenant's pool, as a class (every session has one: an object literal with
 * getters and closures cost each idle client about 1.5 kB). After a reload retired the target's
 * pool, the next `pool` takes the placement's pool anew.
 */
class TenantHold implements HeldPool {
  private gone = false;

  constructor(
    private readonly take: (tenantId: string, placement: Placement) => Taken,
    private readonly tenantId: string,
    private readonly placement: Placement,
    private taken: Taken,
  ) {}

  get pool(): BackendPool {
    if (this.taken.entry.retired && !this.gone) {
      this.taken.letGo();
      this.taken = this.take(this.tenantId, this.placement);
    }
    return this.taken.pool;
  }

  get current(): BackendPool {
    return this.taken.pool;
  }

  get target(): string {
    return this.placement.target;
  }

  get database(): string {
    return this.taken.database;
  }

  get tenantDatabase(): string | null {
    return this.taken.tenantDatabase;
  }

  letGo(): void {
    this.gone = true;
    this.taken.letGo();
  }
}

/**
 * Every backend pool of the process: one per target (its configured database), and one per tenant
 * database in use on a target (database per tenant), at most `maxDatabases` of those per target.
 * A session asks `forTenant` for the pool of its tenant's placement; an unknown target is refused
 * (PlacementRefused), never replaced by the default. A reload (`reconfigure`) opens new targets and
 * lets the pools of removed or changed ones drain.
 */
export class BackendPools {
  private readonly targets = new Map<string, TargetPools>();
  /** Pools of removed or replaced targets until they have drained. */
  private readonly retiring: PlacedPool[] = [];
  private closed = false;
  /** PAUSE is in force: pools opened meanwhile start paused. */
  private paused = false;

  constructor(
    config: Config,
    private readonly log: Logger,
    private readonly metrics: Metrics | null,
    /** With `workers: N`, this worker's share of each pool's figures. */
    private readonly share: (options: PoolOptions) => PoolOptions = (options) => options,
  ) {
    for (const spec of targetSpecs(config).values()) this.targets.set(spec.name, this.openTarget(spec));
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
    const placement: Placement = tenant.placement ?? DEFAULT_PLACEMENT;
    return new TenantHold(this.taker, tenant.id, placement, this.take(tenant.id, placement));
  }

  /** `take` for the holds: one function for all of them. */
  private readonly taker = (tenantId: string, placement: Placement): Taken => this.take(tenantId, placement);

  /** Every pool now, target by target, the target's own first, then the pools still draining. */
  all(): PlacedPool[] {
    return [...[...this.targets.values()].flatMap((entry) => placedPools(entry, false)), ...this.retiring];
  }

  /**
   * A reload: new limits and timeouts for every target that stays; a new target gets its pool; a
   * target whose connection settings changed gets a new pool for new transactions while the old
   * one drains (transactions running on it finish there); a removed target's pools drain and its
   * tenants are refused from their next transaction on.
   */
  reconfigure(config: Config): TargetChanges {
    const specs = targetSpecs(config);
    const changes: TargetChanges = { opened: [], replaced: [], removed: [] };
    for (const [name, entry] of [...this.targets]) {
      const next = specs.get(name);
      if (next === undefined) {
        this.targets.delete(name);
        this.retire(entry);
        changes.removed.push(name);
      } else if (!isDeepStrictEqual(next.target, entry.spec.target)) {
        this.targets.set(name, this.openTarget(next));
        this.retire(entry);
        changes.replaced.push(name);
      } else {
        entry.spec = next;
        entry.own.reconfigure(this.share(next.pool));
        for (const pool of entry.databases.values()) pool.reconfigure(this.share(next.databasePool));
      }
    }
    for (const spec of specs.values()) {
      if (this.targets.has(spec.name)) continue;
      this.targets.set(spec.name, this.openTarget(spec));
      changes.opened.push(spec.name);
    }
    return changes;
  }

  /** PAUSE: every pool of every target stops handing out backends; resolves once none is in use. */
  async pause(): Promise<void> {
    this.paused = true;
    await Promise.all(this.all().map(({ pool }) => pool.pause()));
  }

  resume(): void {
    this.paused = false;
    for (const { pool } of this.all()) pool.resume();
  }

  /** RECONNECT on every pool of every target; returns how many backends were marked. */
  reconnect(): number {
    return this.all().reduce((n, { pool }) => n + pool.reconnect(), 0);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.all().map(({ pool }) => pool.close()));
  }

  private openTarget(spec: TargetSpec): TargetPools {
    return { spec, own: this.open(spec, spec.target.database, false), databases: new Map(), holders: new Map(), retired: false };
  }

  private open(spec: TargetSpec, database: string, tenantDatabase: boolean): BackendPool {
    const log = this.log.child({ component: 'pool', target: spec.name, ...(tenantDatabase ? { database } : {}) });
    const metrics = this.metrics?.target(spec.name) ?? null;
    const pool = new BackendPool({ ...spec.target, database }, this.share(tenantDatabase ? spec.databasePool : spec.pool), log, metrics);
    if (metrics !== null) pool.onAcquired = (seconds, tenant) => metrics.acquireWait(seconds, tenant);
    if (this.paused) void pool.pause();
    return pool;
  }

  /** The pool of a placement now, counted as held when it is a tenant database's. */
  private take(tenantId: string, placement: Placement): Taken {
    const entry = this.targets.get(placement.target);
    if (entry === undefined) throw new PlacementRefused('unknown_target', tenantId, placement);
    const database = placement.database;
    if (database === null || database === entry.spec.target.database) {
      return { entry, pool: entry.own, database: entry.spec.target.database, tenantDatabase: null, letGo: NOTHING_TO_LET_GO };
    }
    if (this.closed) throw new Error('pools are closing');
    let pool = entry.databases.get(database);
    if (pool === undefined) {
      if (entry.databases.size >= entry.spec.maxDatabases && !this.evictUnused(entry)) {
        throw new PlacementRefused('too_many_databases', tenantId, placement);
      }
      pool = this.open(entry.spec, database, true);
      entry.databases.set(database, pool);
    }
    const held = pool;
    entry.holders.set(held, (entry.holders.get(held) ?? 0) + 1);
    let gone = false;
    return {
      entry,
      pool: held,
      database,
      tenantDatabase: database,
      letGo: () => {
        if (gone) return;
        gone = true;
        const left = (entry.holders.get(held) ?? 1) - 1;
        if (left > 0) entry.holders.set(held, left);
        else entry.holders.delete(held);
      },
    };
  }

  /** Lets a removed or replaced target's pools drain; each is closed once it holds nothing. */
  private retire(entry: TargetPools): void {
    entry.retired = true;
    const placed = placedPools(entry, true);
    this.log.info({ target: entry.spec.name, pools: placed.length }, 'backend target removed or changed by a reload; its pools drain');
    for (const p of placed) {
      this.retiring.push(p);
      void p.pool.retire().then(() => {
        const i = this.retiring.indexOf(p);
        if (i >= 0) this.retiring.splice(i, 1);
        this.log.info({ target: p.target, database: p.database }, 'pool of a retired backend target drained and closed');
      });
    }
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

/** A target's pools as SHOW and the metrics list them: its own first, then its tenant databases'. */
function placedPools(entry: TargetPools, retiring: boolean): PlacedPool[] {
  const { spec } = entry;
  return [
    { target: spec.name, database: spec.target.database, tenantDatabase: false, pool: entry.own, spec, retiring },
    ...[...entry.databases].map(([database, pool]) => ({ target: spec.name, database, tenantDatabase: true, pool, spec, retiring })),
  ];
}
