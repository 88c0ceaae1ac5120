import { Guard, type TenantFence } from '../../src/guard/index.js';
import { type Attack, fakeOid, fillPlaceholders } from './corpus.js';
import { mulberry32, mutate } from './mutate.js';

/** Tenant acme in schema mode, as the proxy fences it. */
export const ACME: TenantFence = { ownSchema: 'tenant_acme', sharedSchemas: ['public'], tenantGuc: 'app.current_tenant_id' };

export interface FuzzFailure {
  attack: string;
  sql: string;
  steps: string[];
}

export interface FuzzStats {
  /** Attacks mutated (refused ones without a known bug). */
  attacks: number;
  mutants: number;
  /** Refused by a rule (the mutant parses). */
  refusedByRule: number;
  /** Refused because the mutant no longer parses (42601). */
  refusedUnparsable: number;
  /** Of those, mutants of attacks that did not parse to begin with. */
  unparsableFromStart: number;
  /** Fewest mutants any one attack got. */
  fewestPerAttack: number;
  /** Mutants that were allowed: each is a guard bug (or a mutation that changed the meaning). */
  failures: FuzzFailure[];
  elapsedMs: number;
}

export interface FuzzOptions {
  seed: number;
  /** Stop after this long (checked between mutants); no time bound when absent. */
  durationMs?: number;
  /** Stop after this many mutants (with durationMs: whichever comes first). */
  maxMutants?: number;
  /** Called every ~second with the stats so far (for the long run's progress line). */
  progress?: (stats: FuzzStats) => void;
}

/** The attacks worth mutating: refused by the guard today, as text (placeholders filled). */
export function mutationSeeds(attacks: readonly Attack[]): Array<{ id: string; sql: string }> {
  return attacks.filter((a) => a.expect === 'refused' && a.knownBug === undefined).map((a) => ({ id: a.id, sql: fillPlaceholders(a.sql, fakeOid) }));
}

/**
 * Mutates every seed in turn (round-robin, so all get about as many mutants) with one seeded
 * generator until the time is up or the count reached, and checks each mutant with the guard.
 * Bounded by count, a seed gives the same mutants on any machine.
 */
export async function fuzzAttacks(attacks: readonly Attack[], opts: FuzzOptions): Promise<FuzzStats> {
  const guard = await Guard.create({ cacheSize: 2000 });
  const seeds = mutationSeeds(attacks);
  const rng = mulberry32(opts.seed);
  const startedUnparsable = new Set(seeds.filter((s) => guard.check(s.sql, ACME).allowed === false && isParseError(guard, s.sql)).map((s) => s.id));
  const perAttack = new Map(seeds.map((s) => [s.id, 0]));
  const stats: FuzzStats = {
    attacks: seeds.length,
    mutants: 0,
    refusedByRule: 0,
    refusedUnparsable: 0,
    unparsableFromStart: 0,
    fewestPerAttack: 0,
    failures: [],
    elapsedMs: 0,
  };
  const started = performance.now();
  let lastProgress = started;
  const max = opts.maxMutants ?? Number.POSITIVE_INFINITY;
  const duration = opts.durationMs ?? Number.POSITIVE_INFINITY;
  if (max === Number.POSITIVE_INFINITY && duration === Number.POSITIVE_INFINITY) throw new Error('fuzzAttacks needs durationMs or maxMutants');
  outer: for (;;) {
    for (const seed of seeds) {
      const now = performance.now();
      if (now - started >= duration || stats.mutants >= max) break outer;
      if (opts.progress !== undefined && now - lastProgress >= 1000) {
        lastProgress = now;
        opts.progress(finish(stats, perAttack, started));
      }
      const mutant = mutate(seed.sql, rng);
      const verdict = guard.check(mutant.sql, ACME);
      stats.mutants++;
      perAttack.set(seed.id, (perAttack.get(seed.id) ?? 0) + 1);
      if (verdict.allowed) stats.failures.push({ attack: seed.id, sql: mutant.sql, steps: mutant.steps });
      else if (verdict.reason !== 'parse_error') stats.refusedByRule++;
      else {
        stats.refusedUnparsable++;
        if (startedUnparsable.has(seed.id)) stats.unparsableFromStart++;
      }
    }
  }
  return finish(stats, perAttack, started);
}

function isParseError(guard: Guard, sql: string): boolean {
  const verdict = guard.check(sql, ACME);
  return !verdict.allowed && verdict.reason === 'parse_error';
}

function finish(stats: FuzzStats, perAttack: Map<string, number>, started: number): FuzzStats {
  return { ...stats, fewestPerAttack: Math.min(...perAttack.values()), elapsedMs: Math.round(performance.now() - started) };
}
