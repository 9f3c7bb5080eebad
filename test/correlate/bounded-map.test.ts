import { describe, expect, it } from 'vitest';
import { BoundedMap } from '../../src/correlate/bounded-map.js';
import { RobustBaseline } from '../../src/correlate/churn-detector.js';

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

describe('RobustBaseline', () => {
  it('reports the median and the MAD-based spread of its window', () => {
    const b = new RobustBaseline(100);
    for (let i = 0; i < 100; i++) b.push(i % 2 === 0 ? 90 : 110);
    expect(b.median).toBe(100);
    expect(b.mad).toBeCloseTo(10 * 1.4826, 6);
    expect(b.spread).toBeCloseTo(14.826, 3);
  });

  it('is not moved by a minority of outliers, unlike a mean', () => {
    const b = new RobustBaseline(60);
    for (let i = 0; i < 55; i++) b.push(100 + (i % 5) - 2);
    for (let i = 0; i < 5; i++) b.push(5000);
    expect(b.median).toBe(100);
    expect(b.threshold(6)).toBeLessThan(200);
  });

  it('never reports a spread below the Poisson floor', () => {
    const b = new RobustBaseline(10);
    for (let i = 0; i < 10; i++) b.push(100);
    expect(b.mad).toBe(0);
    expect(b.spread).toBe(10);
    const empty = new RobustBaseline(10);
    expect(empty.spread).toBe(1);
  });

  it('keeps only the newest `capacity` buckets, oldest first', () => {
    const b = new RobustBaseline(3, [1, 2, 3, 4]);
    expect(b.values()).toEqual([2, 3, 4]);
    b.push(5);
    expect(b.values()).toEqual([3, 4, 5]);
    expect(b.median).toBe(4);
    expect(b.samples).toBe(3);
  });
});
