/**
 * The protocol-level statements pgfence prepared on one server session (transaction pooling),
 * least recently used first. Bounded like PgBouncer's max_prepared_statements: adding past the
 * cap names the statement to close on the server.
 */
export class PreparedStatements {
  /** Insertion order is use order: the first key is the least recently used. */
  private readonly names = new Map<string, true>();
  /** Evicted, but the server skipped the Close (an error earlier in its batch): closed next time. */
  private readonly unclosed = new Set<string>();

  /**
   * An unnamed statement may be on the server: one was parsed since the last simple Query or
   * Close of it (a Query, pgfence's own included, drops the unnamed statement; DISCARD ALL
   * alone would not). The next holder closes it before anything could bind it.
   */
  unnamedLeft = false;

  constructor(private cap: number) {}

  get size(): number {
    return this.names.size;
  }

  /** True when the server holds the statement; counts as a use. */
  use(name: string): boolean {
    if (!this.names.delete(name)) return false;
    this.names.set(name, true);
    return true;
  }

  /** Records a statement the server is being asked to prepare; returns the ones to close to stay within the cap. */
  add(name: string): string[] {
    this.names.delete(name);
    this.unclosed.delete(name);
    this.names.set(name, true);
    const evicted = [...this.unclosed];
    this.unclosed.clear();
    let over = this.names.size - this.cap;
    for (const oldest of this.names.keys()) {
      if (over <= 0) break;
      if (oldest === name) continue;
      evicted.push(oldest);
      over--;
    }
    for (const gone of evicted) this.names.delete(gone);
    return evicted;
  }

  /** An eviction's Close was skipped by the server: the statement is still there, to be closed with the next prepare. */
  evictLater(name: string): void {
    if (!this.names.has(name)) this.unclosed.add(name);
  }

  /** The server does not hold it (its Parse failed or was skipped after an error). */
  forget(name: string): void {
    this.names.delete(name);
  }

  /** DISCARD ALL ran: the server holds none. */
  clear(): void {
    this.names.clear();
    this.unclosed.clear();
  }

  resize(cap: number): void {
    this.cap = cap;
  }
}
