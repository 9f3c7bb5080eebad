import { describe, expect, it } from 'vitest';
import { BoundedMap } from '../../src/correlate/bounded-map.js';
import { EwmaBaseline } from '../../src/correlate/churn-detector.js';

describe('BoundedMap', () => {
  it('evicts the oldest entry beyond capacity and counts it', () => {
    const evicted: string[] = [];
    const m = new BoundedMap<string, number>(2, (k) => evicted.push(k));
    m.set('a', 1).set('b', 2).set('a', 3).set('c', 4);
    expect([...m.keys()]).toEqual(['b', 'c']);
    expect(evicted).toEqual(['a']);
    expect(m.evictions).toBe(1);
  });

  it('touch makes it an LRU', () => {
    const m = new BoundedMap<string, number>(2);
    m.set('a', 1).set('b', 2);
    m.touch('a');
    m.set('c', 3);
    expect([...m.keys()]).toEqual(['a', 'c']);
  });

  it('drops expired entries from the oldest end without counting them as evictions', () => {
    const m = new BoundedMap<string, number>(10);
    for (const [k, v] of [
      ['a', 1],
      ['b', 2],
      ['c', 9],
      ['d', 3],
    ] as const)
      m.set(k, v);
    expect(m.dropOldestWhile((v) => v < 5)).toBe(2);
    expect([...m.keys()]).toEqual(['c', 'd']);
    expect(m.evictions).toBe(0);
  });

  it('rejects a non-positive capacity', () => {
    expect(() => new BoundedMap(0)).toThrow(RangeError);
  });
});

describe('EwmaBaseline', () => {
  it('tracks mean and spread, with the exact running mean during warm-up', () => {
    const b = new EwmaBaseline(0.05);
    b.update(10);
    b.update(20);
    expect(b.mean).toBe(15);
    for (let i = 0; i < 500; i++) b.update(i % 2 === 0 ? 90 : 110);
    expect(b.mean).toBeGreaterThan(95);
    expect(b.mean).toBeLessThan(105);
    expect(b.stdDev).toBeGreaterThan(8);
    expect(b.stdDev).toBeLessThan(12);
  });

  it('never reports a spread below the Poisson floor', () => {
    const b = new EwmaBaseline(0.05);
    for (let i = 0; i < 100; i++) b.update(100);
    expect(b.stdDev).toBe(0);
    expect(b.sigma).toBe(10);
  });

  it('freezes with weight 0', () => {
    const b = new EwmaBaseline(0.5);
    b.update(10);
    b.update(1000, 0);
    expect(b.mean).toBe(10);
    expect(b.samples).toBe(1);
  });
});
