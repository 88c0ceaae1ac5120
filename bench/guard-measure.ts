/**
 * Guard throughput: how long Guard.analyze and Guard.inspect take per statement on the legitimate
 * corpus (test/corpus/legit.yaml), on a cache miss and on a cache hit. See bench/README.md.
 */
import { Guard, type TenantFence } from '../src/guard/index.js';
import { numericShape } from '../src/guard/numeric-shape.js';
import { fakeOid, fillPlaceholders, loadLegit } from '../test/corpus/corpus.js';

/** Tenant acme in schema mode, as the legitimate corpus runs. */
export const ACME: TenantFence = { ownSchema: 'tenant_acme', sharedSchemas: ['public'], tenantGuc: 'app.current_tenant_id' };

/** The cache size of the guards that hold the corpus: the configuration's default (guard.cacheSize). */
const CACHE_SIZE = 10_000;
/** A guard made for one miss of Guard.inspect needs two entries at most (the text and its numeric shape). */
const ONE_MISS_CACHE_SIZE = 16;

/**
 * How Guard.inspect answers a text it has not seen: `text` has no number to shape and is parsed
 * once; `shape` is judged by the analysis of its numbers-only variant (one parse, of the variant);
 * `shape+text` parses the variant, finds it refused or with session effects, and parses the text
 * too. On a hit, `shape` texts are the ones whose variant alone was cached.
 */
export type InspectPath = 'text' | 'shape' | 'shape+text';
export const INSPECT_PATHS: readonly InspectPath[] = ['text', 'shape', 'shape+text'];

/** One distinct SQL text of the corpus. */
export interface GuardCase {
  /** The entry's id; `<id> setup N` for its Nth setup statement. */
  id: string;
  sql: string;
  path: InspectPath;
  /** The verdict for acme (the legitimate corpus should be allowed but for its knownBug entries). */
  allowed: boolean;
  /** The entry says pgfence refuses it today (knownBug). */
  knownBug: boolean;
}

export type Measurement = 'miss, inspect' | 'miss, analyze' | 'hit, inspect' | 'hit, analyze';
export const MEASUREMENTS: readonly Measurement[] = ['miss, inspect', 'miss, analyze', 'hit, inspect', 'hit, analyze'];

export interface GuardOptions {
  missRounds: number;
  hitRounds: number;
  warmUpRounds: number;
}

export interface GuardSamples {
  /** Entries of legit.yaml. */
  entries: number;
  cases: GuardCase[];
  /** Per measurement: nanoseconds of each call, round by round (index round × cases + case). */
  ns: Record<Measurement, Float64Array>;
  /** Rounds per measurement. */
  rounds: Record<Measurement, number>;
  /** Median nanoseconds of an empty timed region (two process.hrtime.bigint() calls). */
  timerNs: number;
}

type CorpusText = Omit<GuardCase, 'path' | 'allowed'>;

/** Every distinct text of legit.yaml, statements and setup statements, placeholders filled with a fake OID. */
export function corpusTexts(): { entries: number; texts: CorpusText[] } {
  const { statements } = loadLegit();
  const seen = new Set<string>();
  const texts: CorpusText[] = [];
  const add = (id: string, text: string, knownBug: boolean): void => {
    const sql = fillPlaceholders(text, fakeOid);
    if (seen.has(sql)) return;
    seen.add(sql);
    texts.push({ id, sql, knownBug });
  };
  for (const e of statements) {
    add(e.id, e.sql, e.knownBug !== undefined);
    (e.setup ?? []).forEach((s, i) => add(`${e.id} setup ${i + 1}`, s, false));
  }
  return { entries: statements.length, texts };
}

/**
 * Measures every text `missRounds` times on a miss and `hitRounds` times on a hit, after
 * `warmUpRounds` untimed rounds of all four measurements (the WASM module, the JIT).
 *
 * - miss, analyze: Guard.analyze on a guard that has not seen the text (a fresh guard per round;
 *   the texts are distinct): parse, walk, cache insert.
 * - miss, inspect: Guard.inspect on a fresh guard per call, so that no other text's numeric shape
 *   is cached and every call is a true miss: what the proxy pays for a text it has not seen.
 * - hit, analyze: Guard.analyze of a cached text: the LRU lookup.
 * - hit, inspect: Guard.inspect of a text inspected before: what the proxy pays on a repeat.
 */
export async function measureGuard(opts: GuardOptions): Promise<GuardSamples> {
  const { entries, texts } = corpusTexts();
  const cases = await classify(texts);
  const n = cases.length;
  const rounds: Record<Measurement, number> = { 'miss, inspect': opts.missRounds, 'miss, analyze': opts.missRounds, 'hit, inspect': opts.hitRounds, 'hit, analyze': opts.hitRounds };
  const ns = Object.fromEntries(MEASUREMENTS.map((m) => [m, new Float64Array(rounds[m] * n)])) as Record<Measurement, Float64Array>;
  const scratch = Object.fromEntries(MEASUREMENTS.map((m) => [m, new Float64Array(n)])) as Record<Measurement, Float64Array>;

  for (let r = 0; r < opts.warmUpRounds; r++) {
    await missInspect(cases, scratch['miss, inspect']);
    await missAnalyze(cases, scratch['miss, analyze']);
  }
  // The hit guards are filled once and stay: their texts are what a running proxy has cached.
  const inspected = await Guard.create({ cacheSize: CACHE_SIZE });
  const analyzed = await Guard.create({ cacheSize: CACHE_SIZE });
  for (const c of cases) {
    inspected.inspect(c.sql, ACME);
    analyzed.analyze(c.sql);
  }
  for (let r = 0; r < opts.warmUpRounds; r++) {
    hitInspect(inspected, cases, scratch['hit, inspect']);
    hitAnalyze(analyzed, cases, scratch['hit, analyze']);
  }

  // Miss rounds and hit rounds are interleaved evenly, so that a slow spell of the machine touches both.
  const round = (m: Measurement, r: number): Float64Array => ns[m].subarray(r * n, (r + 1) * n);
  let hits = 0;
  for (let r = 0; r < opts.missRounds; r++) {
    await missInspect(cases, round('miss, inspect', r));
    await missAnalyze(cases, round('miss, analyze', r));
    for (const until = Math.round(((r + 1) * opts.hitRounds) / opts.missRounds); hits < until; hits++) {
      hitInspect(inspected, cases, round('hit, inspect', hits));
      hitAnalyze(analyzed, cases, round('hit, analyze', hits));
    }
  }
  return { entries, cases, ns, rounds, timerNs: timerOverhead() };
}

async function missInspect(cases: readonly GuardCase[], out: Float64Array): Promise<void> {
  for (let i = 0; i < cases.length; i++) {
    const sql = (cases[i] as GuardCase).sql;
    const guard = await Guard.create({ cacheSize: ONE_MISS_CACHE_SIZE });
    const t0 = process.hrtime.bigint();
    guard.inspect(sql, ACME);
    out[i] = Number(process.hrtime.bigint() - t0);
  }
}

async function missAnalyze(cases: readonly GuardCase[], out: Float64Array): Promise<void> {
  const guard = await Guard.create({ cacheSize: CACHE_SIZE });
  for (let i = 0; i < cases.length; i++) {
    const sql = (cases[i] as GuardCase).sql;
    const t0 = process.hrtime.bigint();
    guard.analyze(sql);
    out[i] = Number(process.hrtime.bigint() - t0);
  }
}

function hitInspect(guard: Guard, cases: readonly GuardCase[], out: Float64Array): void {
  for (let i = 0; i < cases.length; i++) {
    const sql = (cases[i] as GuardCase).sql;
    const t0 = process.hrtime.bigint();
    guard.inspect(sql, ACME);
    out[i] = Number(process.hrtime.bigint() - t0);
  }
}

function hitAnalyze(guard: Guard, cases: readonly GuardCase[], out: Float64Array): void {
  for (let i = 0; i < cases.length; i++) {
    const sql = (cases[i] as GuardCase).sql;
    const t0 = process.hrtime.bigint();
    guard.analyze(sql);
    out[i] = Number(process.hrtime.bigint() - t0);
  }
}

/**
 * Which path Guard.inspect takes for each text on a miss, found through the public API: on a
 * fresh guard, the analysis inspect returns is the cached one of the numbers-only variant
 * (`shape`) or of the text itself (`text`, or `shape+text` when the variant differs).
 */
async function classify(texts: readonly CorpusText[]): Promise<GuardCase[]> {
  const cases: GuardCase[] = [];
  for (const { id, sql, knownBug } of texts) {
    const guard = await Guard.create({ cacheSize: ONE_MISS_CACHE_SIZE });
    const { analysis, verdict } = guard.inspect(sql, ACME);
    const shape = numericShape(sql);
    let path: InspectPath;
    if (shape === sql) path = 'text';
    else if (analysis === guard.analyze(shape)) path = 'shape';
    else if (analysis === guard.analyze(sql)) path = 'shape+text';
    else throw new Error(`guard throughput: cannot tell how Guard.inspect answered ${id}`);
    cases.push({ id, sql, path, allowed: verdict.allowed, knownBug });
  }
  return cases;
}

/** The median cost of the timing itself, in nanoseconds. */
function timerOverhead(): number {
  const out = new Float64Array(10_000);
  for (let i = 0; i < out.length; i++) {
    const t0 = process.hrtime.bigint();
    out[i] = Number(process.hrtime.bigint() - t0);
  }
  return out.sort()[out.length >> 1] as number;
}
