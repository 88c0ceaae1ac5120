import { describe, expect, it } from 'vitest';
import { loadAttacks } from './corpus.js';
import { type FuzzStats, fuzzAttacks, mutationSeeds } from './fuzz.js';

/**
 * Mutation fuzzing of the attack corpus against the guard itself (no proxy): every refused attack
 * is rewritten in ways that keep its meaning (case, comments and whitespace between tokens,
 * quoted and U& identifiers, other string spellings, the same inside bodies, wrapped in a
 * subquery, CTE, EXPLAIN, PREPARE, DO block or function, packed with a harmless statement; see
 * mutate.ts), and every mutant must still be refused. A mutant that no longer parses is refused
 * as a parse error by design; both kinds are counted. Fixed seed, bounded by count (the same
 * mutants on any machine, however loaded): longer runs with other seeds are
 * `npx tsx test/corpus/fuzz-long.ts --seconds 300`.
 */

const SEED = 20261123;
const PER_ATTACK = 50;

describe('mutation fuzzing of the refused attacks (guard only, fixed seed, count-bounded)', () => {
  let stats: FuzzStats;

  it(`every mutant is refused (seed ${SEED}, ${PER_ATTACK} mutants per attack)`, async () => {
    const attacks = loadAttacks();
    // Round-robin over the attacks: PER_ATTACK full rounds.
    stats = await fuzzAttacks(attacks, { seed: SEED, maxMutants: PER_ATTACK * mutationSeeds(attacks).length });
    console.log(
      `[mutations] ${stats.mutants} mutants of ${stats.attacks} attacks in ${stats.elapsedMs} ms (at least ${stats.fewestPerAttack} each): ` +
        `${stats.refusedByRule} refused by a rule, ${stats.refusedUnparsable} no longer parse ` +
        `(${stats.unparsableFromStart} of them mutants of attacks that never parsed), ${stats.failures.length} allowed`,
    );
    expect(stats.failures.map((f) => `${f.attack} [${f.steps.join(', ')}]: ${f.sql}`)).toEqual([]);
    // A hang guard only: the outcome does not depend on how fast the mutants are checked.
  }, 120_000);

  it('the fuzzer did real work: every attack mutated many times, and most mutants still parse', () => {
    expect(stats.fewestPerAttack).toBeGreaterThanOrEqual(20);
    const fromParsable = stats.refusedUnparsable - stats.unparsableFromStart;
    expect(fromParsable / stats.mutants).toBeLessThan(0.1);
  });
});
