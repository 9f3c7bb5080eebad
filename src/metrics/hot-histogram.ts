import type { Registry } from 'prom-client';
import { LabelIndex } from './label-index.js';

/** One exported sample, as prom-client's registry reads it from a metric's get(). */
export interface HistogramSample {
  value: number;
  labels: Record<string, string | number>;
  /** Text view only: the series' labels, written after `labels`. */
  sharedLabels?: Record<string, string>;
  metricName: string;
  exemplar: null | undefined;
}

/** What the registry reads of a metric (prom-client's MetricObjectWithValues, as it is at run time). */
export interface ExportedHistogram {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: HistogramSample[];
}

/** One label set's observations. */
interface Series {
  labels: Record<string, string>;
  /** Per bucket, not cumulative (the last slot: above the largest bound). */
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A histogram observed once or more per keyspace event (issue #19): the token TTL at write and
 * the notification-to-commit time. prom-client's Histogram hashes the label object into a string
 * and allocates a closure and two objects per observation (~0.5 us and ~0.9 KB per token event
 * for the two, a tenth of the event loop's garbage in scenario 1's drain). This one finds a
 * series through a map per label (no string made) and adds to a Float64Array.
 *
 * It is registered in the prom-client Registry as a metric of its own and exports exactly what
 * prom-client's Histogram exports for the same observations (`get()`: buckets cumulative with
 * `le`, `+Inf`, `_sum`, `_count`, series in the order they were first observed or zeroed;
 * test/metrics/hot-histogram.test.ts compares both). Like prom-client it throws on a non-finite
 * value and on a label it was not given, the latter checked when a series is made.
 */
export class HotHistogram<L extends string = never> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly #labelNames: readonly L[];
  readonly #bounds: readonly number[];
  /** Series by label set, in the order they were first observed or zeroed (prom-client's). */
  #series: LabelIndex<L, Series>;

  constructor(o: {
    name: string;
    help: string;
    labelNames?: readonly L[];
    buckets: readonly number[];
    registers?: Registry[];
  }) {
    this.name = o.name;
    this.help = o.help;
    this.#labelNames = o.labelNames ?? [];
    // prom-client writes buckets in the order given: ascending and distinct, or refused.
    o.buckets.forEach((b, i) => {
      if (!Number.isFinite(b) || (i > 0 && b <= (o.buckets[i - 1] as number)))
        throw new Error(`${o.name}: buckets must be finite, ascending and distinct`);
    });
    this.#bounds = [...o.buckets];
    this.#series = this.#newIndex();
    // Without labels its one series exists from the start (prom-client's too).
    if (this.#labelNames.length === 0) this.#series.get({} as Record<L, string>);
    for (const r of o.registers ?? [])
      r.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** observe(labels, value), or observe(value) without labels. */
  observe(labels: Record<L, string> | number, value?: number): void {
    const bare = typeof labels === 'number';
    const v = bare ? labels : (value as number);
    if (!Number.isFinite(v)) throw new TypeError(`Value is not a valid number: ${String(v)}`);
    if (bare && this.#labelNames.length > 0) throw new Error(`${this.name}: labels are required`);
    const s = this.#series.get(bare ? ({} as Record<L, string>) : labels);
    const b = this.#bounds;
    let i = 0;
    while (i < b.length && v > (b[i] as number)) i++;
    s.counts[i] = (s.counts[i] as number) + 1;
    s.sum += v;
    s.count += 1;
  }

  /** The series of `labels` exists from now on, at zero (as prom-client's zero()). */
  zero(labels: Record<L, string>): void {
    const s = this.#series.get(labels);
    s.counts.fill(0);
    s.sum = 0;
    s.count = 0;
  }

  reset(): void {
    this.#series = this.#newIndex();
  }

  /**
   * What the registry writes as text: like prom-client, each value's own labels (`le`) apart
   * from its series' (`sharedLabels`), so that `le` comes first.
   */
  getForPromString(): Promise<ExportedHistogram> {
    return Promise.resolve(this.#export(false));
  }

  /** The JSON view (`getMetricsAsJSON()`, the OpenTelemetry bridge): the labels merged. */
  get(): Promise<ExportedHistogram> {
    return Promise.resolve(this.#export(true));
  }

  #export(merged: boolean): ExportedHistogram {
    const values: HistogramSample[] = [];
    const bucket = `${this.name}_bucket`;
    const value = (
      own: Record<string, string | number>,
      shared: Record<string, string>,
      v: number,
      metricName: string,
      exemplar: null | undefined,
    ): HistogramSample =>
      merged
        ? { value: v, metricName, exemplar, labels: { ...own, ...shared } }
        : { labels: own, sharedLabels: shared, value: v, metricName, exemplar };
    for (const s of this.#series.values) {
      let acc = 0;
      this.#bounds.forEach((le, i) => {
        acc += s.counts[i] as number;
        values.push(value({ le }, s.labels, acc, bucket, null));
      });
      values.push(value({ le: '+Inf' }, s.labels, s.count, bucket, null));
      values.push(value({}, s.labels, s.sum, `${this.name}_sum`, undefined));
      values.push(value({}, s.labels, s.count, `${this.name}_count`, undefined));
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: this.aggregator,
    };
  }

  /** A new series is checked for labels it was not given (as prom-client does), and copied. */
  #newIndex(): LabelIndex<L, Series> {
    return new LabelIndex(this.#labelNames, (labels) => {
      const own: Record<string, string> = {};
      for (const k of Object.keys(labels)) {
        if (!this.#labelNames.includes(k as L))
          throw new Error(`Added label "${k}" is not included in initial labelset`);
        own[k] = labels[k as L];
      }
      return { labels: own, counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 };
    });
  }
}
