import { describe, expect, it } from 'vitest';
import { loadAttacks } from './corpus.js';
import { type FuzzStats, fuzzAttacks } from './fuzz.js';

/**
 * Mutation fuzzing of the attack corpus against the guard itself (no proxy): every refused attack
 * is rewritten in ways that keep its meaning (case, comments and whitespace between tokens,
 * quoted and U& identifiers, other string spellings, the same inside bodies, wrapped in a
 * subquery, CTE, EXPLAIN, PREPARE, DO block or function, packed with a harmless statement; see
 * mutate.ts), and every mutant must still be refused. A mutant that no longer parses is refused
 * as a parse error by design; both kinds are counted. Fixed seed, bounded in time: longer runs
 * with other seeds are `npx tsx test/corpus/fuzz-long.ts --seconds 300`.
 */

const SEED = 20261123;
const DURATION_MS = 10_000;

describe('mutation fuzzing of the refused attacks (guard only, fixed seed, time-bounded)', () => {
  let stats: FuzzStats;

  it(`every mutant is refused (seed ${SEED}, ${DURATION_MS / 1000} s)`, async () => {
    stats = await fuzzAttacks(loadAttacks(), { seed: SEED, durationMs: DURATION_MS });
    console.log(
      `[mutations] ${stats.mutants} mutants of ${stats.attacks} attacks in ${stats.elapsedMs} ms (at least ${stats.fewestPerAttack} each): ` +
        `${stats.refusedByRule} refused by a rule, ${stats.refusedUnparsable} no longer parse ` +
        `(${stats.unparsableFromStart} of them mutants of attacks that never parsed), ${stats.failures.length} allowed`,
    );
    expect(stats.failures.map((f) => `${f.attack} [${f.steps.join(', ')}]: ${f.sql}`)).toEqual([]);
  }, DURATION_MS * 3);

  it('the fuzzer did real work: every attack mutated many times, and most mutants still parse', () => {
    expect(stats.fewestPerAttack).toBeGreaterThanOrEqual(20);
    const fromParsable = stats.refusedUnparsable - stats.unparsableFromStart;
    expect(fromParsable / stats.mutants).toBeLessThan(0.1);
  });
});
