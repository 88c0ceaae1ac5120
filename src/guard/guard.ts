import { loadModule } from 'libpg-query';
import type { Analysis } from './analysis.js';
import { analyzeSql } from './analyze.js';
import { AnalysisCache } from './cache.js';
import { numericShape } from './numeric-shape.js';
import { judge, type TenantFence, type Verdict } from './verdict.js';

/**
 * The SQL guard: parses with the real Postgres parser (libpg-query), caches the tenant-independent
 * analysis per SQL text, and judges it against a tenant's fence.
 */
export class Guard {
  private readonly cache: AnalysisCache;

  private constructor(cacheSize: number) {
    this.cache = new AnalysisCache(cacheSize);
  }

  /** Loads the parser's WebAssembly module (once per process; later calls reuse it). */
  static async create(opts: { cacheSize: number }): Promise<Guard> {
    await loadModule();
    return new Guard(opts.cacheSize);
  }

  /** What a text does, tenant-independent; cached by text. */
  analyze(sql: string): Analysis {
    const cached = this.cache.get(sql);
    if (cached !== undefined) return cached;
    const analysis = analyzeSql(sql);
    this.cache.set(sql, analysis);
    return analysis;
  }

  /** The verdict on one Query or Parse text for one tenant. Synchronous; never throws. */
  check(sql: string, fence: TenantFence): Verdict {
    return this.inspect(sql, fence).verdict;
  }

  /**
   * The verdict and the analysis it rests on. A text whose numbers-only variant was analysed
   * before is judged by that shared analysis when it is allowed outright, leaves nothing in the
   * session but 'hidden' effects and holds nothing the relay acts on by value or byte offset
   * (channels, search paths, DEALLOCATE, pg_notify, a session reset; see numeric-shape.ts), whose
   * offsets or values the shaped text would not give right; anything else is judged on the text
   * itself, so refusals name what the client wrote and settings keep their real values. Whether a
   * text has a hidden effect does not depend on its numbers: pg_catalog's names, nextval and
   * setval have no digit that could be shaped (one after a letter, digit or `_` stays). Its `what`
   * may show the shaped spelling of a quoted name with such a digit ("1f"() as "0f"()).
   */
  inspect(sql: string, fence: TenantFence): { analysis: Analysis; verdict: Verdict } {
    const exact = this.cache.get(sql);
    if (exact === undefined) {
      const shape = numericShape(sql);
      if (shape !== sql) {
        const shaped = this.analyze(shape);
        if (isInert(shaped)) {
          const verdict = judge(shaped, fence);
          if (verdict.allowed) return { analysis: shaped, verdict };
        }
      }
    }
    const analysis = exact ?? this.analyze(sql);
    return { analysis, verdict: judge(analysis, fence) };
  }
}

/** Nothing in it for the relay but 'hidden' effects: the same for every text of its numeric shape. */
function isInert(a: Analysis): boolean {
  return (
    a.settings.size === 0 &&
    a.channels.length === 0 &&
    a.searchPaths.length === 0 &&
    a.deallocations.length === 0 &&
    a.notifyCalls.length === 0 &&
    a.sessionReset === null &&
    a.sessionEffects.every((effect) => effect.kind === 'hidden')
  );
}
