import type { Logger } from 'pino';
import { ChannelListener } from '../backend/listener.js';
import type { BackendOptions, BackendTarget } from '../backend/connection.js';
import { placementLabel } from './placement.js';
import type { TargetSpec } from './targets.js';

/** A placement's listener, held by a client that listens there until it lets go. */
export interface HeldListener {
  readonly listener: ChannelListener;
  /** Idempotent. */
  letGo(): void;
}

interface Entry {
  listener: ChannelListener;
  holders: number;
}

/**
 * Transaction pooling's LISTEN over every placement: a tenant's notifications come from where its
 * data lives, so there is one shared listener per backend target and database that some client
 * listens on, opened on the first hold and closed when the last holder lets go.
 */
export class ChannelListeners {
  private readonly entries = new Map<string, Entry>();

  constructor(
    /** The target's settings now (undefined once a reload removed it). */
    private readonly spec: (target: string) => TargetSpec | undefined,
    private readonly options: (spec: TargetSpec) => BackendOptions & { resetTimeoutMs: number },
    private readonly log: Logger,
  ) {}

  /**
   * The listener of target `target`, in the tenant database `database` there or (null) in the
   * target's own database, wherever a reload moves it; held until letGo.
   */
  hold(target: string, database: string | null): HeldListener {
    const key = placementLabel({ target, database });
    let entry = this.entries.get(key);
    if (entry === undefined) {
      const where = (): { spec: TargetSpec; target: BackendTarget } => {
        const spec = this.spec(target);
        if (spec === undefined) throw new Error(`backend target "${target}" is no longer configured`);
        return { spec, target: database === null ? spec.target : { ...spec.target, database } };
      };
      entry = {
        listener: new ChannelListener(() => where().target, () => this.options(where().spec), this.log.child({ target, ...(database === null ? {} : { database }) })),
        holders: 0,
      };
      this.entries.set(key, entry);
    }
    const held = entry;
    held.holders++;
    let gone = false;
    return {
      listener: held.listener,
      letGo: () => {
        if (gone) return;
        gone = true;
        if (--held.holders > 0) return;
        if (this.entries.get(key) === held) this.entries.delete(key);
        void held.listener.closeWhenDone();
      },
    };
  }

  /** Where each listener is open now (`target`, or `target/database` for a tenant database), for tests and the log. */
  get open(): string[] {
    return [...this.entries.keys()];
  }

  /** A reload changed these targets' settings: their listeners reconnect to where they are now. */
  retarget(targets: readonly string[]): void {
    for (const [key, entry] of this.entries) {
      if (targets.some((t) => key === t || key.startsWith(`${t}/`))) entry.listener.reopen();
    }
  }

  async close(): Promise<void> {
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(entries.map((e) => e.listener.close()));
  }
}
