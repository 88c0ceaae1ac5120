import { LRUCache } from 'lru-cache';
import type { Analysis } from './analysis.js';

/** Room for this many characters of SQL text per entry on average. */
const AVERAGE_TEXT_BUDGET = 4096;
/** Texts longer than this are analysed every time: a few huge distinct texts must not evict the hot set. */
const MAX_CACHED_TEXT = 256 * 1024;

/**
 * Analyses by SQL text. Bounded by entries and by the total length of the texts it keeps as
 * keys, so that a client sending large distinct statements cannot grow the proxy's memory.
 */
export class AnalysisCache {
  private readonly lru: LRUCache<string, Analysis> | null;

  constructor(entries: number) {
    this.lru =
      entries > 0
        ? new LRUCache<string, Analysis>({
            max: entries,
            maxSize: entries * AVERAGE_TEXT_BUDGET,
            maxEntrySize: MAX_CACHED_TEXT,
            sizeCalculation: (_analysis, sql) => sql.length + 1,
          })
        : null;
  }

  get(sql: string): Analysis | undefined {
    return this.lru?.get(sql);
  }

  set(sql: string, analysis: Analysis): void {
    if (sql.length < MAX_CACHED_TEXT) this.lru?.set(sql, analysis);
  }

  get size(): number {
    return this.lru?.size ?? 0;
  }
}
