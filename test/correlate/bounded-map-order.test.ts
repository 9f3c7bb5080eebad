import { describe, expect, it } from 'vitest';
import { BoundedMap } from '../../src/correlate/bounded-map.js';

/** The linked order behind BoundedMap: every edge (oldest, newest, middle) of touch and delete. */
const order = <V>(m: BoundedMap<string, V>) => ({
  keys: [...m.keys()],
  values: [...m.values()],
  entries: [...m.entries()],
});

const abcd = () => {
  const m = new BoundedMap<string, number>(10);
  for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) m.set(k, i);
  return m;
};

describe('BoundedMap order', () => {
  it('lists keys, values and entries oldest first, and replaces a value in place', () => {
    const m = abcd();
    m.set('b', 9);
    expect(order(m)).toEqual({
      keys: ['a', 'b', 'c', 'd'],
      values: [0, 9, 2, 3],
      entries: [
        ['a', 0],
        ['b', 9],
        ['c', 2],
        ['d', 3],
      ],
    });
    expect(m.size).toBe(4);
    expect(m.get('b')).toBe(9);
    expect(m.has('z')).toBe(false);
    expect(m.get('z')).toBeUndefined();
  });

  it('touches the oldest, a middle and the newest entry', () => {
    const m = abcd();
    expect(m.touch('a')).toBe(true);
    expect(order(m).keys).toEqual(['b', 'c', 'd', 'a']);
    expect(m.touch('c')).toBe(true);
    expect(order(m).keys).toEqual(['b', 'd', 'a', 'c']);
    expect(m.touch('c')).toBe(true);
    expect(order(m).keys).toEqual(['b', 'd', 'a', 'c']);
    expect(m.touch('z')).toBe(false);
    m.set('e', 4);
    expect(order(m).keys).toEqual(['b', 'd', 'a', 'c', 'e']);
    expect(order(m).values).toEqual([1, 3, 0, 2, 4]);
  });

  it('deletes the oldest, a middle and the newest entry, and appends after', () => {
    const m = abcd();
    expect(m.delete('a')).toBe(true);
    expect(m.delete('c')).toBe(true);
    expect(m.delete('d')).toBe(true);
    expect(m.delete('d')).toBe(false);
    expect(order(m).keys).toEqual(['b']);
    m.set('d', 5).set('a', 6);
    expect(order(m).keys).toEqual(['b', 'd', 'a']);
    expect(m.delete('b')).toBe(true);
    expect(m.delete('a')).toBe(true);
    expect(m.delete('d')).toBe(true);
    expect(order(m)).toEqual({ keys: [], values: [], entries: [] });
    expect(m.size).toBe(0);
    m.set('x', 1);
    expect(order(m).keys).toEqual(['x']);
  });

  it('evicts the oldest (by touch too) with its key and value, one per insertion beyond capacity', () => {
    const evicted: [string, number][] = [];
    const m = new BoundedMap<string, number>(2, (k, v) => evicted.push([k, v]));
    m.set('a', 1).set('b', 2);
    m.touch('a');
    m.set('c', 3);
    m.set('d', 4);
    expect(evicted).toEqual([
      ['b', 2],
      ['a', 1],
    ]);
    expect(order(m).keys).toEqual(['c', 'd']);
    expect(m.evictions).toBe(2);
    expect(m.size).toBe(2);
    // Replacing an existing key evicts nothing.
    m.set('c', 5);
    expect(m.evictions).toBe(2);
  });

  it('drops from the oldest end while stale, reporting each dropped entry', () => {
    const m = abcd();
    const dropped: [number, string][] = [];
    expect(
      m.dropOldestWhile(
        (v) => v !== 2,
        (v, k) => dropped.push([v, k]),
      ),
    ).toBe(2);
    expect(dropped).toEqual([
      [0, 'a'],
      [1, 'b'],
    ]);
    expect(order(m).keys).toEqual(['c', 'd']);
    expect(m.dropOldestWhile((_v, k) => k !== 'zz')).toBe(2);
    expect(m.size).toBe(0);
    expect(m.evictions).toBe(0);
    m.set('n', 1);
    expect(order(m).keys).toEqual(['n']);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new BoundedMap(0)).toThrow(RangeError);
    expect(() => new BoundedMap(1.5)).toThrow(RangeError);
    expect(() => new BoundedMap(-1)).toThrow('capacity must be a positive integer, got -1');
    expect(new BoundedMap(1).capacity).toBe(1);
  });
});
