import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  DataPointType,
  type CollectionResult,
  type DataPoint,
  type Histogram,
  type MetricData,
  type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import type { Registry } from 'prom-client';

/** One sample of prom-client's JSON view (`registry.getMetricsAsJSON()`). */
interface PromSample {
  value: number;
  labels: Partial<Record<string, string | number>>;
  metricName?: string;
}

interface PromFamily {
  name: string;
  help: string;
  /** prom-client's d.ts says an enum; at runtime it is the Prometheus type name. */
  type: unknown;
  values: PromSample[];
}

/** Options of {@link PromRegistryProducer}. */
export interface PromRegistryProducerOptions {
  /** Instrumentation scope name of the exported metrics. */
  scopeName: string;
  scopeVersion?: string;
  /** Start of the cumulative series (unix ms): when the counters started counting. */
  startTimeMs: number;
  /** Called before each collection (refresh gauges that are otherwise set at scrape time). */
  beforeCollect?: () => void;
  now?: () => number;
}

const PROM_TYPES = ['counter', 'gauge', 'histogram', 'summary'] as const;

/**
 * An OpenTelemetry `MetricProducer` over a prom-client Registry: one instrumentation, two
 * exports. `/metrics` serves the registry as Prometheus text; an OTLP metric reader built with
 * `metricProducers: [producer]` pushes the same numbers, converted on every collection:
 *
 * - counter -> cumulative monotonic Sum
 * - gauge -> Gauge
 * - histogram -> cumulative Histogram with explicit bounds; prom-client's cumulative `le`
 *   bucket counts become per-bucket counts (OTLP `bucket_counts[i]` counts
 *   `(bounds[i-1], bounds[i]]`, the last one `(bounds[n-1], +Inf)`: opentelemetry-proto
 *   metrics.proto, HistogramDataPoint)
 * - summary -> skipped (tokenwatch has none; OTLP summaries are legacy)
 *
 * Names stay the Prometheus names, so a dashboard query works on either path.
 */
export class PromRegistryProducer implements MetricProducer {
  readonly #registry: Registry;
  readonly #o: PromRegistryProducerOptions;
  readonly #now: () => number;

  constructor(registry: Registry, options: PromRegistryProducerOptions) {
    this.#registry = registry;
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  async collect(): Promise<CollectionResult> {
    const errors: unknown[] = [];
    try {
      this.#o.beforeCollect?.();
    } catch (err) {
      errors.push(err);
    }
    const families = (await this.#registry.getMetricsAsJSON()) as unknown as PromFamily[];
    const start = hrTime(this.#o.startTimeMs);
    const end = hrTime(this.#now());
    const metrics: MetricData[] = [];
    for (const f of families) {
      try {
        const m = convertFamily(f, start, end);
        if (m) metrics.push(m);
      } catch (err) {
        errors.push(err);
      }
    }
    return {
      resourceMetrics: {
        // The reader keeps the SDK's resource (service.name, ...) and drops this one.
        resource: emptyResource(),
        scopeMetrics: [
          {
            scope: { name: this.#o.scopeName, version: this.#o.scopeVersion },
            metrics,
          },
        ],
      },
      errors,
    };
  }
}

/** Converts one prom-client family; `undefined` for types OTLP gets no data for (summary). */
function convertFamily(f: PromFamily, start: HrTime, end: HrTime): MetricData | undefined {
  const type = typeof f.type === 'number' ? PROM_TYPES[f.type] : String(f.type);
  const descriptor = {
    name: f.name,
    description: f.help,
    unit: unitOf(f.name),
    valueType: ValueType.DOUBLE,
  };
  const point = <T>(labels: PromSample['labels'], value: T): DataPoint<T> => ({
    startTime: start,
    endTime: end,
    attributes: attributesOf(labels),
    value,
  });
  switch (type) {
    case 'counter':
      return {
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.SUM,
        isMonotonic: true,
        dataPoints: f.values.map((s) => point(s.labels, s.value)),
      };
    case 'gauge':
      return {
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.GAUGE,
        dataPoints: f.values.map((s) => point(s.labels, s.value)),
      };
    case 'histogram':
      return {
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: histogramPoints(f).map((h) => point(h.labels, h.value)),
      };
    default:
      return undefined;
  }
}

interface HistogramSeries {
  labels: PromSample['labels'];
  buckets: { le: number; cumulative: number }[];
  sum: number;
  count: number;
}

function histogramPoints(f: PromFamily): { labels: PromSample['labels']; value: Histogram }[] {
  const series = new Map<string, HistogramSeries>();
  const get = (labels: PromSample['labels']): HistogramSeries => {
    const rest = Object.fromEntries(Object.entries(labels).filter(([k]) => k !== 'le'));
    const key = JSON.stringify(Object.entries(rest).sort(([a], [b]) => (a < b ? -1 : 1)));
    let s = series.get(key);
    if (!s) {
      s = { labels: rest, buckets: [], sum: 0, count: 0 };
      series.set(key, s);
    }
    return s;
  };
  for (const v of f.values) {
    const s = get(v.labels);
    if (v.metricName === `${f.name}_bucket`) {
      const le = v.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels.le);
      s.buckets.push({ le, cumulative: v.value });
    } else if (v.metricName === `${f.name}_sum`) {
      s.sum = v.value;
    } else if (v.metricName === `${f.name}_count`) {
      s.count = v.value;
    }
  }
  return [...series.values()].map((s) => {
    const finite = s.buckets.filter((b) => Number.isFinite(b.le)).sort((a, b) => a.le - b.le);
    const counts: number[] = [];
    let below = 0;
    for (const b of finite) {
      counts.push(Math.max(0, b.cumulative - below));
      below = b.cumulative;
    }
    counts.push(Math.max(0, s.count - below)); // (last bound, +Inf)
    return {
      labels: s.labels,
      value: {
        buckets: { boundaries: finite.map((b) => b.le), counts },
        sum: s.sum,
        count: s.count,
      },
    };
  });
}

function attributesOf(labels: PromSample['labels']): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(labels)) if (v !== undefined) out[k] = String(v);
  return out;
}

/** UCUM unit from the Prometheus base-unit suffix convention. */
function unitOf(name: string): string {
  const base = name.replace(/_total$/, '');
  if (base.endsWith('_seconds')) return 's';
  if (base.endsWith('_bytes')) return 'By';
  return '';
}

function hrTime(ms: number): HrTime {
  const seconds = Math.floor(ms / 1000);
  return [seconds, Math.round((ms - seconds * 1000) * 1e6)];
}
