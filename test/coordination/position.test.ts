import { describe, expect, it } from 'vitest';
import {
  beforeMarker,
  comparePosition,
  formatPosition,
  parsePosition,
  type StreamPosition,
} from '../../src/domain/position.js';

const p = (epoch: number, marker: number, offset: number): StreamPosition => ({
  epoch,
  marker,
  offset,
});

describe('stream positions', () => {
  it('formats e.n.k and e.n.k.i and parses them back', () => {
    expect(formatPosition(p(3, 17, 42))).toBe('3.17.42');
    expect(formatPosition(p(3, 17, 42), 1)).toBe('3.17.42.1');
    expect(parsePosition('3.17.42')).toEqual(p(3, 17, 42));
    expect(parsePosition('3.17.42.1')).toEqual({ ...p(3, 17, 42), index: 1 });
    expect(parsePosition('0.0.0.0')).toEqual({ ...p(0, 0, 0), index: 0 });
    const big = p(999_999_999_999_999, 1, 2);
    expect(parsePosition(formatPosition(big))).toEqual(big);
  });

  it('round-trips the position just before a marker', () => {
    const b = beforeMarker(4, 9);
    expect(formatPosition(b)).toBe('4.9.-1');
    expect(parsePosition('4.9.-1')).toEqual(b);
  });

  it.each([
    '',
    '1',
    '1.2',
    '1.2.3.4.5',
    '1.2.x',
    '01.2.3',
    '1.02.3',
    '1.2.03',
    '-1.2.3',
    '1.-1.3',
    '1.2.-2',
    '1.2.3.-1',
    '1.2.3.01',
    '1.2.3.',
    '1..3',
    '1.2.3e1',
    ' 1.2.3',
    '1.5.1234567890123456',
  ])('refuses %j', (s) => {
    expect(parsePosition(s)).toBeUndefined();
  });

  it('orders by epoch, then marker, then offset', () => {
    const sorted = [
      p(1, 9, 1000),
      p(2, 0, 0),
      p(2, 0, 5),
      beforeMarker(2, 1),
      p(2, 1, 0),
      p(2, 1, 1),
      p(2, 10, 0),
      p(10, 0, 0),
    ];
    const shuffled = [...sorted].reverse();
    shuffled.sort(comparePosition);
    expect(shuffled).toEqual(sorted);
    expect(comparePosition(p(2, 1, 1), p(2, 1, 1))).toBe(0);
    expect(Math.sign(comparePosition(p(1, 99, 99), p(2, 0, 0)))).toBe(-1);
  });

  it('puts beforeMarker after everything of an earlier base and before the marker itself', () => {
    const b = beforeMarker(5, 3);
    expect(comparePosition(b, p(5, 2, 1_000_000))).toBeGreaterThan(0);
    expect(comparePosition(b, p(4, 1_000, 0))).toBeGreaterThan(0);
    expect(comparePosition(b, p(5, 3, 0))).toBeLessThan(0);
    expect(comparePosition(b, p(6, 0, 0))).toBeLessThan(0);
  });
});
