import type { PendingSet } from '../relay/client-to-server.js';
import { settingsKey } from '../frontend/pin.js';

/**
 * A client's session settings: its startup parameters, then every SET it ran. Applied with the
 * pin on each backend it is given, so a backend whose key matches needs no re-pin.
 */
export class ClientSettings {
  /** The startup map itself until the first SET changes something (most clients never do). */
  private current: ReadonlyMap<string, string>;
  private cachedKey: string;

  constructor(readonly startup: ReadonlyMap<string, string>) {
    this.current = startup;
    this.cachedKey = settingsKey(startup);
  }

  get values(): ReadonlyMap<string, string> {
    return this.current;
  }

  get key(): string {
    return this.cachedKey;
  }

  /**
   * SETs that took effect (RESET goes back to the startup value, or to the server default; the
   * name '*', RESET ALL, to the startup values).
   */
  apply(sets: readonly PendingSet[]): void {
    if (sets.length === 0) return;
    let next: Map<string, string> | null = null;
    for (const { name, value } of sets) {
      if (name === '*') {
        next = null;
        this.current = this.startup;
        continue;
      }
      next ??= new Map(this.current);
      const initial = this.startup.get(name);
      if (value !== null) next.set(name, value);
      else if (initial !== undefined) next.set(name, initial);
      else next.delete(name);
    }
    if (next !== null) this.current = next;
    this.cachedKey = settingsKey(this.current);
  }
}
