import { readFile } from 'node:fs/promises';
import { machine, pgfenceRevision, positiveInt } from './environment.js';
import { type GuardCase, type GuardOptions, type GuardSamples, INSPECT_PATHS, type InspectPath, type Measurement, MEASUREMENTS, measureGuard } from './guard-measure.js';
import { resultStamp, writeResults } from './result-files.js';

/** The targets, at the median: a cache hit under 5 µs, a miss under 150 µs. */
export const HIT_TARGET_US = 5;
export const MISS_TARGET_US = 150;

export interface LatencyStats {
  calls: number;
  medianUs: number;
  /** Nearest-rank 99th percentile. */
  p99Us: number;
  maxUs: number;
  /** Calls over the sum of their times: one core doing nothing else. */
  perSecond: number;
}

export interface GuardRow {
  measurement: Measurement;
  /** null for all texts; else the Guard.inspect path the row is limited to. */
  path: InspectPath | null;
  texts: number;
  stats: LatencyStats;
  /** The target this row is held to (its median), or null for the per-path rows. */
  target: { limitUs: number; pass: boolean } | null;
}

export interface SlowStatement {
  id: string;
  chars: number;
  path: InspectPath;
  /** Medians over the rounds of this one text. */
  missInspectUs: number;
  missAnalyzeUs: number;
  hitInspectUs: number;
}

export interface GuardReport {
  startedAt: string;
  rounds: Record<Measurement, number>;
  warmUpRounds: number;
  environment: Record<string, string>;
  corpus: {
    entries: number;
    texts: number;
    paths: Record<InspectPath, number>;
    /** Refused for acme, as their knownBug says. */
    refusedKnownBugs: string[];
    /** Refused for acme without a knownBug: the guard has changed (legit.test.ts fails on these too). */
    refusedOthers: string[];
  };
  /** Median nanoseconds of an empty timed region, included in every sample. */
  timerNs: number;
  rows: GuardRow[];
  /** The five texts with the slowest median miss through Guard.inspect. */
  slowest: SlowStatement[];
  notes: string[];
  durationSeconds: number;
}

/** BENCH_GUARD_ROUNDS (default 20) rounds of each miss, ten times as many of each hit, 3 warm-up rounds. */
export function guardOptions(): GuardOptions {
  const missRounds = positiveInt('BENCH_GUARD_ROUNDS', 20);
  return { missRounds, hitRounds: missRounds * 10, warmUpRounds: 3 };
}

/** Measures and summarises: the whole guard benchmark, a few seconds. */
export async function benchmarkGuard(opts: GuardOptions): Promise<GuardReport> {
  const started = Date.now();
  const samples = await measureGuard(opts);
  const { cases } = samples;
  const paths = Object.fromEntries(INSPECT_PATHS.map((p) => [p, cases.filter((c) => c.path === p).length])) as Record<InspectPath, number>;
  const rows: GuardRow[] = [];
  for (const m of MEASUREMENTS) {
    const hit = m.startsWith('hit');
    const limitUs = hit ? HIT_TARGET_US : MISS_TARGET_US;
    const all = stats(samples.ns[m]);
    rows.push({ measurement: m, path: null, texts: cases.length, stats: all, target: { limitUs, pass: all.medianUs < limitUs } });
    if (m === 'miss, inspect') {
      for (const p of INSPECT_PATHS) rows.push(pathRow(samples, m, p, (c) => c.path === p));
    } else if (m === 'hit, inspect') {
      // On a repeat, a shape+text text is found by its own text, like a text one.
      rows.push(pathRow(samples, m, 'text', (c) => c.path !== 'shape'));
      rows.push(pathRow(samples, m, 'shape', (c) => c.path === 'shape'));
    }
  }
  const median = (m: Measurement, i: number): number => perText(samples, m, i);
  const slowest = cases
    .map((c, i) => ({ id: c.id, chars: c.sql.length, path: c.path, missInspectUs: median('miss, inspect', i), missAnalyzeUs: median('miss, analyze', i), hitInspectUs: median('hit, inspect', i) }))
    .sort((a, b) => b.missInspectUs - a.missInspectUs)
    .slice(0, 5);
  return {
    startedAt: new Date(started).toISOString(),
    rounds: samples.rounds,
    warmUpRounds: opts.warmUpRounds,
    environment: await environment(),
    corpus: {
      entries: samples.entries,
      texts: cases.length,
      paths,
      refusedKnownBugs: cases.filter((c) => !c.allowed && c.knownBug).map((c) => c.id),
      refusedOthers: cases.filter((c) => !c.allowed && !c.knownBug).map((c) => c.id),
    },
    timerNs: samples.timerNs,
    rows,
    slowest,
    notes: notes(samples),
    durationSeconds: (Date.now() - started) / 1000,
  };
}

function pathRow(samples: GuardSamples, m: Measurement, path: InspectPath, keep: (c: GuardCase) => boolean): GuardRow {
  const n = samples.cases.length;
  const picked: number[] = [];
  samples.cases.forEach((c, i) => {
    if (!keep(c)) return;
    for (let r = 0; r < samples.rounds[m]; r++) picked.push(samples.ns[m][r * n + i] as number);
  });
  const texts = samples.cases.filter(keep).length;
  return { measurement: m, path, texts, stats: stats(Float64Array.from(picked)), target: null };
}

/** The median over the rounds of text i, in µs. */
function perText(samples: GuardSamples, m: Measurement, i: number): number {
  const n = samples.cases.length;
  const own = Float64Array.from({ length: samples.rounds[m] }, (_v, r) => samples.ns[m][r * n + i] as number);
  return stats(own).medianUs;
}

function stats(ns: Float64Array): LatencyStats {
  if (ns.length === 0) return { calls: 0, medianUs: NaN, p99Us: NaN, maxUs: NaN, perSecond: NaN };
  const sorted = Float64Array.from(ns).sort();
  const rank = (q: number): number => (sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number) / 1000;
  const total = sorted.reduce((a, b) => a + b, 0);
  return { calls: sorted.length, medianUs: rank(0.5), p99Us: rank(0.99), maxUs: (sorted[sorted.length - 1] as number) / 1000, perSecond: total > 0 ? sorted.length / (total / 1e9) : NaN };
}

function notes(samples: GuardSamples): string[] {
  return [
    'miss, inspect: Guard.inspect(text, acme) on a guard made for that one call, so neither the text nor its numbers-only variant (numeric shape) is cached, not even by another corpus text with the same shape: the cost of a text the proxy has not seen. Its rows by path: text (no number to shape, one parse), shape (the numbers-only variant is parsed and its analysis used: one parse), shape+text (the variant is refused or has session effects, so the text is parsed too: two parses).',
    'miss, analyze: Guard.analyze(text) on a fresh guard each round (the texts are distinct): parse, walk and cache insert, no numeric shape and no verdict.',
    'hit, inspect: Guard.inspect(text, acme) on a guard that has inspected every text before: an LRU lookup and the verdict (path text), or, for texts whose shaped variant alone was cached, the shaping scan, a failed and a found lookup and the verdict (path shape).',
    'hit, analyze: Guard.analyze(text) of a cached text: the LRU lookup.',
    `Each call is timed on its own with process.hrtime.bigint(); an empty timed region takes ${fixed(samples.timerNs, 0)} ns here and is included in every number. statements/s is calls over the sum of their times (one core, guard time only); max includes garbage-collection pauses.`,
    'The texts are every statement and setup statement of test/corpus/legit.yaml, distinct, with {{regclass:…}} and {{regprocedure:…}} placeholders replaced by a fake OID; fence: ownSchema tenant_acme, sharedSchemas [public], tenantGuc app.current_tenant_id. The targets (issue: a hit under 5 µs, a miss under 150 µs) are checked against the median.',
  ];
}

async function environment(): Promise<Record<string, string>> {
  const pkg = await readFile(new URL('../node_modules/libpg-query/package.json', import.meta.url), 'utf8').catch(() => '{}');
  return {
    machine: machine(),
    node: process.version,
    'libpg-query': (JSON.parse(pkg) as { version?: string }).version ?? '?',
    pgfence: await pgfenceRevision(),
  };
}

const fixed = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');
const us = (n: number): string => fixed(n, n < 10 ? 2 : n < 100 ? 1 : 0);

function rowName(row: GuardRow): string {
  if (row.path === null) return `**${row.measurement}**`;
  const hit = row.measurement.startsWith('hit');
  switch (row.path) {
    case 'text':
      return hit ? '  ↳ text cached' : '  ↳ no number to shape (1 parse)';
    case 'shape':
      return hit ? '  ↳ only its numbers-only variant cached' : '  ↳ numbers-only variant used (1 parse)';
    case 'shape+text':
      return '  ↳ variant, then text (2 parses)';
  }
}

export function guardTable(rows: readonly GuardRow[]): string {
  const lines = ['| measurement | texts | calls | median µs | p99 µs | max µs | statements/s | target (median) |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |'];
  for (const row of rows) {
    const s = row.stats;
    const target = row.target === null ? '' : `< ${row.target.limitUs} µs: ${row.target.pass ? 'pass' : '**FAIL**'}`;
    lines.push(`| ${rowName(row)} | ${row.texts} | ${s.calls} | ${us(s.medianUs)} | ${us(s.p99Us)} | ${us(s.maxUs)} | ${fixed(s.perSecond, 0)} | ${target} |`);
  }
  return lines.join('\n');
}

export function slowestTable(slowest: readonly SlowStatement[]): string {
  return [
    '| id | chars | path | miss, inspect µs | miss, analyze µs | hit, inspect µs |',
    '| --- | ---: | --- | ---: | ---: | ---: |',
    ...slowest.map((s) => `| ${s.id} | ${s.chars} | ${s.path} | ${us(s.missInspectUs)} | ${us(s.missAnalyzeUs)} | ${us(s.hitInspectUs)} |`),
  ].join('\n');
}

/** The targets in one line each, for the console. */
export function targetLines(report: GuardReport): string[] {
  return report.rows
    .filter((r) => r.target !== null)
    .map((r) => `${r.measurement}: median ${us(r.stats.medianUs)} µs, target < ${r.target?.limitUs} µs: ${r.target?.pass === true ? 'pass' : 'FAIL'}`);
}

/** The sections of the guard report, without a title: also a section of the full benchmark's report. */
export function guardSections(report: GuardReport, level: '##' | '###'): string[] {
  const r = report.rounds;
  const c = report.corpus;
  return [
    `${c.texts} distinct texts from ${c.entries} entries of test/corpus/legit.yaml (on a miss, Guard.inspect takes path text for ${c.paths.text}, shape for ${c.paths.shape}, shape+text for ${c.paths['shape+text']});`,
    `${r['miss, inspect']} rounds of each miss, ${r['hit, inspect']} of each hit, after ${report.warmUpRounds} warm-up rounds of each; per-call latency. The whole run took ${fixed(report.durationSeconds, 1)} s.`,
    c.refusedKnownBugs.length === 0 ? 'No knownBug entry is refused.' : `Refused for acme as their knownBug says (timed like the rest): ${c.refusedKnownBugs.join(', ')}.`,
    ...(c.refusedOthers.length === 0 ? [] : [`**Refused for acme without a knownBug** (timed like the rest): ${c.refusedOthers.join(', ')}.`]),
    '',
    guardTable(report.rows),
    '',
    `${level} Slowest five texts on a miss (median of each text's rounds through Guard.inspect)`,
    '',
    slowestTable(report.slowest),
    '',
    `${level} What each row times`,
    '',
    ...report.notes.map((n) => `- ${n}`),
    '',
  ];
}

export function renderGuardMarkdown(report: GuardReport): string {
  return [
    `# pgfence guard throughput, ${report.startedAt}`,
    '',
    ...Object.entries(report.environment).map(([k, v]) => `- ${k}: ${v}`),
    '',
    ...guardSections(report, '##'),
  ].join('\n');
}

/** Writes bench/results/<stamp>-guard.md and .json and bench/results/latest-guard.md; returns the .md path. */
export function writeGuardReport(report: GuardReport): Promise<string> {
  return writeResults(`${resultStamp(report.startedAt)}-guard`, renderGuardMarkdown(report), report, 'latest-guard.md');
}
