/**
 * The mutation fuzzer of mutations.test.ts, for as long as you like (not part of the suite):
 *
 *   npx tsx test/corpus/fuzz-long.ts --seconds 300 [--seed 12345]
 *
 * Prints progress every few seconds and every allowed mutant; exits 1 if there was one. Without
 * --seed a random seed is chosen and printed, so that a failing run can be repeated.
 */
import { parseArgs } from 'node:util';
import { loadAttacks } from './corpus.js';
import { type FuzzStats, fuzzAttacks } from './fuzz.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '60' }, seed: { type: 'string' } } });
const seconds = Number(values.seconds);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : Number(values.seed);
if (!Number.isFinite(seconds) || seconds <= 0 || !Number.isInteger(seed)) {
  console.error('usage: npx tsx test/corpus/fuzz-long.ts --seconds N [--seed INTEGER]');
  process.exit(2);
}

const line = (s: FuzzStats): string =>
  `${(s.elapsedMs / 1000).toFixed(0)} s: ${s.mutants} mutants of ${s.attacks} attacks (at least ${s.fewestPerAttack} each): ` +
  `${s.refusedByRule} refused by a rule, ${s.refusedUnparsable} no longer parse (${s.unparsableFromStart} of attacks that never did), ${s.failures.length} ALLOWED`;

console.log(`seed ${seed}, ${seconds} s`);
let reported = 0;
let lastLine = 0;
const stats = await fuzzAttacks(loadAttacks(), {
  seed,
  durationMs: seconds * 1000,
  progress: (s) => {
    for (const f of s.failures.slice(reported)) console.log(`ALLOWED mutant of ${f.attack} (${f.steps.join(', ')}):\n  ${JSON.stringify(f.sql)}`);
    reported = s.failures.length;
    if (s.elapsedMs - lastLine >= 10_000) {
      lastLine = s.elapsedMs;
      console.log(line(s));
    }
  },
});
for (const f of stats.failures.slice(reported)) console.log(`ALLOWED mutant of ${f.attack} (${f.steps.join(', ')}):\n  ${JSON.stringify(f.sql)}`);
console.log(line(stats));
process.exit(stats.failures.length === 0 ? 0 : 1);
