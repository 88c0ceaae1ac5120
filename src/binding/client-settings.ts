import type { PendingSet } from '../relay/client-to-server.js';
import { settingsKey } from '../frontend/pin.js';

/**
 * A client's session settings: its startup parameters, then every SET it ran. Applied with the
 * pin on each backend it is given, so a backend whose key matches needs no re-pin.
 */
export class ClientSettings {
  private current: Map<string, string>;
  private cachedKey: string;

  constructor(private readonly startup: ReadonlyMap<string, string>) {
    this.current = new Map(startup);
    this.cachedKey = settingsKey(this.current);
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
    for (const { name, value } of sets) {
      if (name === '*') {
        this.current = new Map(this.startup);
        continue;
      }
      const initial = this.startup.get(name);
      if (value !== null) this.current.set(name, value);
      else if (initial !== undefined) this.current.set(name, initial);
      else this.current.delete(name);
    }
    this.cachedKey = settingsKey(this.current);
  }
}
