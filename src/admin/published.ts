import { type Aggregator, Counter, Gauge, Histogram, type LabelValues, type Registry } from 'prom-client';

/**
 * prom-client metrics whose values live elsewhere, in plain number fields that the hot path
 * increments, and are copied into prom-client only when scraped (its `collect` callbacks). No
 * label is hashed and no prom-client method runs per message.
 *
 * Every metric here aggregates by plain summing across processes (prom-client's
 * AggregatorRegistry, for a `workers: N` mode), except where an `aggregator` is given (a maximum).
 */

type Labels<L extends string> = LabelValues<L>;
/** One labelled value as a source reports it at scrape time. */
export type Sample<L extends string> = readonly [labels: Labels<L>, value: number];

interface Published<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  registry: Registry;
  aggregator?: Aggregator;
}

/** A counter read from `read()` at scrape time; `read` returns running totals (never smaller than before). */
export function publishedCounter<L extends string>(spec: Published<L> & { read(): Iterable<Sample<L>> }): Counter<L> {
  const counter: Counter<L> = new Counter<L>({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labelNames ?? [],
    registers: [spec.registry],
    aggregator: spec.aggregator ?? 'sum',
    collect() {
      counter.reset();
      for (const [labels, value] of spec.read()) counter.inc(labels, value);
    },
  });
  return counter;
}

/** A gauge read from `read()` at scrape time: only the samples it returns are exported. */
export function publishedGauge<L extends string>(spec: Published<L> & { read(): Iterable<Sample<L>> }): Gauge<L> {
  const gauge: Gauge<L> = new Gauge<L>({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labelNames ?? [],
    registers: [spec.registry],
    aggregator: spec.aggregator ?? 'sum',
    collect() {
      gauge.reset();
      for (const [labels, value] of spec.read()) gauge.set(labels, value);
    },
  });
  return gauge;
}

/**
 * A histogram counted in plain fields: `observe` finds the bucket by a short linear search and
 * adds one; nothing else. Published by `publishedHistogram`.
 */
export class Buckets {
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }

  /** Adds another histogram's counts (same bounds) into this one. */
  add(other: Buckets): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] = (this.counts[i] as number) + (other.counts[i] as number);
    this.sum += other.sum;
    this.count += other.count;
  }
}

interface HistogramValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

/**
 * A prom-client Histogram whose samples come from `Buckets` read at scrape time. Its `get()` gives
 * what prom-client's own histogram gives (`_bucket` with `le`, `_sum`, `_count`), so the registry's
 * text output and `getMetricsAsJSON` (what the cluster aggregator sums) work unchanged.
 */
class PublishedHistogram<L extends string> extends Histogram<L> {
  constructor(
    private readonly spec: Published<L> & { buckets: readonly number[]; read(): Iterable<readonly [Labels<L>, Buckets]> },
  ) {
    super({ name: spec.name, help: spec.help, labelNames: spec.labelNames ?? [], buckets: [...spec.buckets], registers: [] });
  }

  private values(): HistogramValue[] {
    const out: HistogramValue[] = [];
    const name = this.spec.name;
    for (const [labels, buckets] of this.spec.read()) {
      const base = labels as Record<string, string | number>;
      let cumulative = 0;
      buckets.bounds.forEach((le, i) => {
        cumulative += buckets.counts[i] as number;
        out.push({ labels: { ...base, le }, value: cumulative, metricName: `${name}_bucket` });
      });
      out.push({ labels: { ...base, le: '+Inf' }, value: buckets.count, metricName: `${name}_bucket` });
      out.push({ labels: base, value: buckets.sum, metricName: `${name}_sum` });
      out.push({ labels: base, value: buckets.count, metricName: `${name}_count` });
    }
    return out;
  }

  override get(): ReturnType<Histogram<L>['get']> {
    return Promise.resolve({
      name: this.spec.name,
      help: this.spec.help,
      type: 'histogram',
      values: this.values(),
      aggregator: this.spec.aggregator ?? 'sum',
    } as unknown as Awaited<ReturnType<Histogram<L>['get']>>);
  }

  /** What Registry.metrics() reads when a metric has it (prom-client's histogram defines it too). */
  getForPromString(): ReturnType<Histogram<L>['get']> {
    return this.get();
  }
}

/** A histogram read from `Buckets` at scrape time. */
export function publishedHistogram<L extends string>(
  spec: Published<L> & { buckets: readonly number[]; read(): Iterable<readonly [Labels<L>, Buckets]> },
): Histogram<L> {
  const histogram = new PublishedHistogram(spec);
  spec.registry.registerMetric(histogram);
  return histogram;
}

/** Adds `by` to the count under `key`. */
export function bump(map: Map<string, number>, key: string, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}
