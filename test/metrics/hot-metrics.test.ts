import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HotHistogram } from '../../src/metrics/hot-histogram.js';
import { PendingCounts } from '../../src/metrics/pending-counts.js';

const BUCKETS = [0.001, 0.01, 0.1, 1, 10, 3600];

/** The same histogram both ways, each on its own registry. */
function pair<L extends string>(labelNames: L[]) {
  const theirs = new Registry();
  const ours = new Registry();
  const config = { name: 'tw_h_seconds', help: 'a "help"\nline', buckets: BUCKETS };
  const p = new Histogram({ ...config, labelNames, registers: [theirs] });
  const h = new HotHistogram<L>({ ...config, labelNames, registers: [ours] });
  return { theirs, ours, p, h };
}

/** A value generator that covers the bounds exactly, between them, below and above them. */
function values(n: number): number[] {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed / 0x7fffffff);
  return Array.from({ length: n }, (_, i) =>
    i % 5 === 0 ? (BUCKETS[i % BUCKETS.length] as number) : i % 7 === 0 ? 1e6 : rand() ** 3 * 50,
  );
}

describe('HotHistogram exports what prom-client Histogram exports', () => {
  it('with two labels, series zeroed first and made by observation, in text and JSON', async () => {
    const { theirs, ours, p, h } = pair(['kind', 'end']);
    for (const kind of ['access_token', 'session'])
      for (const end of ['expired', 'deleted']) {
        p.zero({ kind, end });
        h.zero({ kind, end });
      }
    const kinds = ['session', 'access_token', 'refresh_token'];
    const ends = ['deleted', 'expired', 'evicted'];
    values(3000).forEach((v, i) => {
      const labels = { kind: kinds[i % 3] as string, end: ends[(i >> 2) % 3] as string };
      p.observe(labels, v);
      h.observe({ ...labels }, v);
    });
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  });

  it('without labels, and after a reset', async () => {
    const { theirs, ours, p, h } = pair([]);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    for (const v of values(500)) {
      p.observe(v);
      h.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    p.reset();
    h.reset();
    p.observe(0.5);
    h.observe(0.5);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  });

  it('zero() on a series with observations sets it back to zero, in place', async () => {
    const { theirs, ours, p, h } = pair(['kind']);
    for (const kind of ['a', 'b']) {
      p.observe({ kind }, 2);
      h.observe({ kind }, 2);
    }
    p.zero({ kind: 'a' });
    h.zero({ kind: 'a' });
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('throws as prom-client does on a non-finite value and an unknown label, and counts nothing', async () => {
    const { theirs, ours, p, h } = pair(['kind']);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => p.observe({ kind: 'a' }, bad)).toThrow(TypeError);
      expect(() => h.observe({ kind: 'a' }, bad)).toThrow(TypeError);
    }
    const extra = { kind: 'a', other: 'x' } as unknown as { kind: string };
    expect(() => p.observe(extra, 1)).toThrow(/not included/);
    expect(() => h.observe(extra, 1)).toThrow(/not included/);
    expect(() => h.observe(1)).toThrow(/labels are required/);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });
});

describe('PendingCounts', () => {
  it('adds to the counter when it is read: what a scrape reads equals inc() per event', async () => {
    const theirs = new Registry();
    const ours = new Registry();
    const config = { name: 'tw_events_total', help: 'h', labelNames: ['kind', 'event'] as const };
    const direct = new Counter({ ...config, registers: [theirs] });
    const counts = new PendingCounts<'kind' | 'event'>(['kind', 'event']);
    const counter = new Counter({
      ...config,
      registers: [ours],
      collect() {
        counts.flushInto(this);
      },
    });
    for (const kind of ['a', 'b']) {
      direct.inc({ kind, event: 'written' }, 0);
      counter.inc({ kind, event: 'written' }, 0);
    }
    const events = ['written', 'deleted', 'expired'];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 1000 * (round + 1); i++) {
        const labels = { kind: i % 3 ? 'a' : 'c', event: events[i % 3] as string };
        direct.inc(labels);
        counts.add({ ...labels });
      }
      expect(await ours.metrics()).toBe(await theirs.metrics());
      expect(await counter.get()).toEqual(await direct.get());
    }
    // nothing counted twice by a second read
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });
});

describe('HotHistogram buckets', () => {
  it('refuses buckets that are not finite, ascending and distinct (prom-client writes them as given)', () => {
    for (const buckets of [[1, 1], [2, 1], [1, Number.NaN], [Number.POSITIVE_INFINITY]])
      expect(() => new HotHistogram({ name: 'h', help: 'h', buckets })).toThrow(/ascending/);
    expect(() => new HotHistogram({ name: 'h', help: 'h', buckets: [0.5, 1, 2] })).not.toThrow();
  });
});
