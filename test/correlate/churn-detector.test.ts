import { describe, expect, it } from 'vitest';
import { RobustBaseline } from '../../src/correlate/churn-detector.js';

describe('RobustBaseline', () => {
  it('takes the middle value of an odd window and the mean of the two middle ones of an even one', () => {
    const b = new RobustBaseline(10, [7, 1, 4]);
    expect(b.median).toBe(4);
    expect(b.mad).toBeCloseTo(3 * 1.4826, 9); // deviations 3, 3, 0
    b.push(10);
    expect(b.median).toBe(5.5); // 1 4 7 10
    expect(b.mad).toBeCloseTo(3 * 1.4826, 9); // deviations 4.5 1.5 1.5 4.5
    expect(new RobustBaseline(3).median).toBe(0);
    expect(new RobustBaseline(3).mad).toBe(0);
  });

  it('sorts numerically, not as text', () => {
    const b = new RobustBaseline(10, [100, 9, 20, 3, 1000]);
    expect(b.median).toBe(20);
  });

  it('recomputes after every push (no stale cached median)', () => {
    const b = new RobustBaseline(5, [1, 1, 1]);
    expect(b.median).toBe(1);
    b.push(50);
    b.push(50);
    b.push(50);
    expect(b.median).toBe(50);
    expect(b.spread).toBeCloseTo(Math.sqrt(50), 9);
  });

  it('spreads by the largest of the robust σ, √median and 1', () => {
    const wide = new RobustBaseline(10, [0, 0, 0, 100, 100]);
    expect(wide.median).toBe(0);
    expect(wide.spread).toBe(1); // MAD 0, √0: the floor of 1
    const poisson = new RobustBaseline(10, [16, 16, 16]);
    expect(poisson.spread).toBe(4);
    const robust = new RobustBaseline(10, [0, 10, 20]);
    expect(robust.spread).toBeCloseTo(10 * 1.4826, 9);
    expect(robust.threshold(2)).toBeCloseTo(10 + 2 * 10 * 1.4826, 9);
    expect(robust.threshold(0)).toBe(10);
  });

  it('wraps its ring more than once and keeps the newest values, oldest first', () => {
    const b = new RobustBaseline(3);
    for (let i = 1; i <= 8; i++) b.push(i);
    expect(b.values()).toEqual([6, 7, 8]);
    expect(b.samples).toBe(3);
    expect(b.median).toBe(7);
    expect(new RobustBaseline(3, [1, 2]).values()).toEqual([1, 2]);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new RobustBaseline(0)).toThrow(RangeError);
    expect(() => new RobustBaseline(2.5)).toThrow('capacity must be a positive integer, got 2.5');
    expect(new RobustBaseline(1, [3, 4]).values()).toEqual([4]);
  });
});
