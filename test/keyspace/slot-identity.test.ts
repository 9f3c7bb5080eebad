import { describe, expect, it } from 'vitest';
import { slotIdentity } from '../../src/keyspace/slot-identity.js';

describe('slotIdentity', () => {
  it('names one slot of the ranges, the same for the same slots however the ranges are cut', () => {
    const key = slotIdentity([[5461, 10922]]);
    expect(key).toMatch(/^slot:\d+$/);
    const n = Number(key?.slice(5));
    expect(n).toBeGreaterThanOrEqual(5461);
    expect(n).toBeLessThanOrEqual(10922);
    expect(
      slotIdentity([
        [8000, 10922],
        [5461, 7999],
      ]),
    ).toBe(key);
    expect(slotIdentity([])).toBeUndefined();
  });

  it("changes a resharded master's key only when its named slot moves (not at every slot moved)", () => {
    // A source master giving its lowest slots away one by one (as redis-cli --cluster reshard
    // does), and the target receiving them: each key changes a few times, not a thousand.
    let sourceChanges = 0;
    let targetChanges = 0;
    let source = slotIdentity([[0, 5460]]);
    let target = slotIdentity([]);
    for (let moved = 1; moved <= 1000; moved++) {
      const s = slotIdentity([[moved, 5460]]);
      const t = slotIdentity([[0, moved - 1]]);
      if (s !== source) sourceChanges++;
      if (t !== target) targetChanges++;
      source = s;
      target = t;
    }
    expect(sourceChanges).toBeLessThanOrEqual(1);
    // The target's key is the best of what it holds so far: it changes on new maxima only
    // (about ln(1000) ~ 7 times for a random order).
    expect(targetChanges).toBeLessThan(20);
    // A lowest-slot key would have changed at every one of the 1 000 slots.
  });
});
