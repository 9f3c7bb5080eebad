import { describe, expect, it } from 'vitest';
import { nearestRank, summarize } from '../../src/compliance/percentiles.js';

describe('nearest-rank percentiles', () => {
  it('takes the value at rank ceil(p/100 * n)', () => {
    const v = [15, 20, 35, 40, 50];
    expect(nearestRank(v, 5)).toBe(15);
    expect(nearestRank(v, 30)).toBe(20);
    expect(nearestRank(v, 40)).toBe(20);
    expect(nearestRank(v, 50)).toBe(35);
    expect(nearestRank(v, 100)).toBe(50);
  });

  it('summarises any order, ignores non-finite values, and is null when empty', () => {
    const v = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(summarize([...v, Number.NaN])).toEqual({
      count: 100,
      p50: 50,
      p95: 95,
      p99: 99,
      max: 100,
    });
    expect(summarize([])).toEqual({ count: 0, p50: null, p95: null, p99: null, max: null });
    expect(summarize([7])).toEqual({ count: 1, p50: 7, p95: 7, p99: 7, max: 7 });
    expect(() => nearestRank([1], 0)).toThrow(RangeError);
  });
});
