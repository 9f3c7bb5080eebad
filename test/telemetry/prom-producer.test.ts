import {
  DataPointType,
  type HistogramMetricData,
  type SumMetricData,
} from '@opentelemetry/sdk-metrics';
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PromRegistryProducer } from '../../src/telemetry/prom-producer.js';

function registry() {
  const r = new Registry();
  const c = new Counter({
    name: 'x_events_total',
    help: 'events',
    labelNames: ['kind'],
    registers: [r],
  });
  const g = new Gauge({ name: 'x_live', help: 'live', registers: [r] });
  const h = new Histogram({
    name: 'x_ttl_seconds',
    help: 'ttl',
    labelNames: ['kind'],
    buckets: [1, 10, 100],
    registers: [r],
  });
  new Summary({ name: 'x_summary', help: 's', registers: [r] }).observe(1);
  return { r, c, g, h };
}

describe('PromRegistryProducer', () => {
  it('converts counters, gauges and histograms from one prom-client registry', async () => {
    const { r, c, g, h } = registry();
    c.inc({ kind: 'a' }, 3);
    g.set(7);
    for (const v of [0.5, 5, 5, 50, 500]) h.observe({ kind: 'a' }, v);
    let refreshed = 0;
    const p = new PromRegistryProducer(r, {
      scopeName: 'tokenwatch',
      startTimeMs: 1_000_500,
      now: () => 2_000_250,
      beforeCollect: () => (refreshed += 1),
    });
    const { resourceMetrics, errors } = await p.collect();
    expect(errors).toEqual([]);
    expect(refreshed).toBe(1);
    const metrics = resourceMetrics.scopeMetrics[0]?.metrics ?? [];
    expect(metrics.map((m) => m.descriptor.name)).toEqual([
      'x_events_total',
      'x_live',
      'x_ttl_seconds',
    ]);

    const sum = metrics[0] as SumMetricData;
    expect(sum.dataPointType).toBe(DataPointType.SUM);
    expect(sum.isMonotonic).toBe(true);
    expect(sum.dataPoints).toEqual([
      {
        startTime: [1000, 500_000_000],
        endTime: [2000, 250_000_000],
        attributes: { kind: 'a' },
        value: 3,
      },
    ]);
    expect(metrics[1]?.dataPointType).toBe(DataPointType.GAUGE);
    expect(metrics[1]?.dataPoints[0]?.value).toBe(7);

    const hist = metrics[2] as HistogramMetricData;
    expect(hist.dataPointType).toBe(DataPointType.HISTOGRAM);
    expect(hist.descriptor.unit).toBe('s');
    expect(hist.dataPoints[0]?.attributes).toEqual({ kind: 'a' });
    // Prometheus buckets are cumulative (le=1: 1, le=10: 3, le=100: 4, +Inf: 5); OTLP's are not.
    expect(hist.dataPoints[0]?.value).toEqual({
      buckets: { boundaries: [1, 10, 100], counts: [1, 2, 1, 1] },
      sum: 560.5,
      count: 5,
    });
  });

  it('keeps label sets of one histogram apart and reports a failing refresh as an error', async () => {
    const { r, h } = registry();
    h.observe({ kind: 'a' }, 2);
    h.observe({ kind: 'b' }, 20);
    h.observe({ kind: 'b' }, 200);
    const p = new PromRegistryProducer(r, {
      scopeName: 't',
      startTimeMs: 0,
      beforeCollect: () => {
        throw new Error('boom');
      },
    });
    const { resourceMetrics, errors } = await p.collect();
    expect(errors).toHaveLength(1);
    const hist = resourceMetrics.scopeMetrics[0]?.metrics.find(
      (m) => m.descriptor.name === 'x_ttl_seconds',
    ) as HistogramMetricData;
    const byKind = Object.fromEntries(hist.dataPoints.map((d) => [d.attributes.kind, d.value]));
    expect(byKind.a?.buckets.counts).toEqual([0, 1, 0, 0]);
    expect(byKind.b?.buckets.counts).toEqual([0, 0, 1, 1]);
    expect(byKind.b?.count).toBe(2);
  });
});
