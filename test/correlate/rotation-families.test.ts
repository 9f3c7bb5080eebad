import { describe, expect, it } from 'vitest';
import { RotationFamilies } from '../../src/correlate/rotation-families.js';

describe('RotationFamilies', () => {
  it('chains rotations into one family, found from any member or the family id', () => {
    const f = new RotationFamilies(10);
    f.link({ previous: ['a'], next: ['b'] });
    f.link({ previous: ['b'], next: ['c'] });
    f.link({ previous: ['x'], next: ['y'], familyId: 'fam' });
    expect(f.expand(['c'], undefined).sort()).toEqual(['a', 'b', 'c']);
    expect(f.expand(['zz'], 'fam').sort()).toEqual(['x', 'y', 'zz']);
    expect(f.expand(['q'], undefined)).toEqual(['q']);
    expect(f.sizes).toEqual({ families: 2, tokenIds: 5 });
    expect(f.snapshot(10, {})).toEqual([
      ['chain:a', ['a', 'b', 'c']],
      ['fam', ['x', 'y']],
    ]);
  });

  it('ignores an empty rotation and keeps the newest 64 ids of a family', () => {
    const f = new RotationFamilies(10);
    f.link({ previous: [], next: [] });
    expect(f.sizes.families).toBe(0);
    for (let i = 0; i < 70; i++) f.link({ previous: [`t${i}`], next: [`t${i + 1}`] });
    const [[, ids] = ['', []]] = f.snapshot(10, {});
    expect(ids).toHaveLength(64);
    expect(ids[0]).toBe('t7');
    expect(ids[63]).toBe('t70');
  });

  it('keeps the newest families, the most recently linked last, and counts evictions', () => {
    const f = new RotationFamilies(2);
    f.link({ previous: ['a'], next: ['b'], familyId: 'A' });
    f.link({ previous: ['c'], next: ['d'], familyId: 'B' });
    f.link({ previous: ['b'], next: ['e'] }); // A again: now the newest
    f.link({ previous: ['g'], next: ['h'], familyId: 'C' });
    expect(f.snapshot(10, {}).map(([id]) => id)).toEqual(['A', 'C']);
    expect(f.evictions).toBeGreaterThan(0);
    const truncated: Record<string, number> = {};
    expect(f.snapshot(1, truncated).map(([id]) => id)).toEqual(['C']);
    expect(truncated).toEqual({ families: 1 });
    const none: Record<string, number> = {};
    f.snapshot(2, none);
    expect(none).toEqual({});
  });

  it('restores families and their members', () => {
    const f = new RotationFamilies(10);
    f.restore([['F', ['a', 'b']]], 'families');
    expect(f.expand(['b'], undefined).sort()).toEqual(['a', 'b']);
  });
});
