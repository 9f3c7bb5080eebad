import { describe, expect, it } from 'vitest';
import type { ProviderEvent } from '../../src/domain/provider-event.js';
import { GraceWindows } from '../../src/correlate/late-tokens.js';
import type { GraceWindow } from '../../src/correlate/late-tokens.js';

describe('GraceWindows', () => {
  const win = (cutoff: number): GraceWindow => ({
    ev: { id: `e${cutoff}` } as ProviderEvent,
    seq: undefined,
    revokedAt: cutoff - 2000,
    cutoff,
    query: {},
    tracked: false,
  });

  it('covers a token first seen up to each cutoff, inclusive', () => {
    const g = new GraceWindows(10);
    g.add(win(1000));
    g.add(win(2000));
    expect(g.covering(1000).map((w) => w.cutoff)).toEqual([1000, 2000]);
    expect(g.covering(1001).map((w) => w.cutoff)).toEqual([2000]);
    expect(g.covering(2001)).toEqual([]);
  });

  it('drops windows once their cutoff is more than the slack behind', () => {
    const g = new GraceWindows(10);
    g.add(win(1000));
    g.add(win(2000));
    g.expire(1500, 500);
    expect(g.size).toBe(2);
    // With an older window to drop, one exactly at its slack stays.
    g.add(win(0));
    g.expire(1500, 500);
    expect(g.covering(0).map((w) => w.cutoff)).toEqual([1000, 2000]);
    g.expire(1501, 500);
    expect(g.covering(0).map((w) => w.cutoff)).toEqual([2000]);
  });

  it('keeps at most max windows, dropping the oldest and counting it', () => {
    const g = new GraceWindows(2);
    for (const c of [1, 2, 3]) g.add(win(c));
    expect(g.covering(0).map((w) => w.cutoff)).toEqual([2, 3]);
    expect(g.dropped).toBe(1);
    g.add(win(4));
    expect(g.dropped).toBe(2);
    expect(new GraceWindows(1).dropped).toBe(0);
  });
});
