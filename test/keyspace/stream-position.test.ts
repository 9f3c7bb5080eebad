import { describe, expect, it } from 'vitest';
import { formatPosition } from '../../src/domain/position.js';
import { markerKey, StreamPositionTracker } from '../../src/keyspace/stream-position.js';

/** Feeds [event, key] notifications and returns each one's formatted position ('-' unknown). */
function feed(t: StreamPositionTracker, notes: readonly (readonly [string, string])[]): string[] {
  return notes.map(([event, key]) => {
    const p = t.observe(event, Buffer.from(key, 'latin1'));
    return p ? formatPosition(p) : '-';
  });
}

describe('StreamPositionTracker', () => {
  it('knows no position before the first marker, then counts every notification after it', () => {
    const t = new StreamPositionTracker();
    expect(
      feed(t, [
        ['set', 'at:a'],
        ['set', markerKey(1, 1)],
        ['expire', markerKey(1, 1)],
        ['set', 'at:b'],
        ['keymiss', 'whatever'],
        ['expired', markerKey(1, 1)],
        ['set', markerKey(1, 2)],
        ['del', 'at:b'],
      ]),
    ).toEqual(['-', '1.1.0', '1.1.1', '1.1.2', '1.1.3', '1.1.4', '1.2.0', '1.2.1']);
    expect(t.base).toEqual({ epoch: 1, marker: 2 });
    expect(t.markersSeen).toBe(2);
  });

  it('lets only a greater marker move the base: stale, repeated and older ones are counted', () => {
    const t = new StreamPositionTracker();
    expect(
      feed(t, [
        ['set', markerKey(2, 5)],
        ['set', markerKey(1, 9)], // a fenced owner's epoch
        ['set', markerKey(2, 4)], // a reordered, older one
        ['set', markerKey(2, 5)], // the same again
        ['set', markerKey(3, 0)], // a new epoch starts over at n = 0
        ['set', 'at:a'],
      ]),
    ).toEqual(['2.5.0', '2.5.1', '2.5.2', '2.5.3', '3.0.0', '3.0.1']);
    expect(t.markersSeen).toBe(2);
  });

  it('recognises the Cluster form with a hash tag, and a custom prefix', () => {
    const t = new StreamPositionTracker({ keyPrefix: 'tw2:' });
    expect(
      feed(t, [
        ['set', markerKey(1, 1, 'tw7')],
        ['set', markerKey(1, 2, 'tw7', 'tw2:')],
        ['set', markerKey(1, 3, undefined, 'tw2:')],
        ['set', 'tw2:marker:{}:1:4'.replace('{}', '{a:b}')],
      ]),
    ).toEqual(['-', '1.2.0', '1.3.0', '1.4.0']);
  });

  it.each([
    ['expire', 'tokenwatch:marker:1:1'],
    ['set', 'tokenwatch:marker:'],
    ['set', 'tokenwatch:marker:1'],
    ['set', 'tokenwatch:marker:1:'],
    ['set', 'tokenwatch:marker::1'],
    ['set', 'tokenwatch:marker:01:1'],
    ['set', 'tokenwatch:marker:1:01'],
    ['set', 'tokenwatch:marker:1:1:1'],
    ['set', 'tokenwatch:marker:1:1x'],
    ['set', 'tokenwatch:marker:-1:1'],
    ['set', 'tokenwatch:marker:1234567890123456:1'],
    ['set', 'tokenwatch:marker:{tag:1:1'],
    ['set', 'tokenwatch:marker:{tag}1:1'],
    ['set', 'tokenwatch:markers:1:1'],
    ['set', 'Tokenwatch:marker:1:1'],
    ['set', 'xtokenwatch:marker:1:1'],
  ])('takes %s %s for an ordinary notification', (event, key) => {
    const t = new StreamPositionTracker();
    expect(
      feed(t, [
        [event, key],
        ['set', 'at:a'],
      ]),
    ).toEqual(['-', '-']);
    t.observe('set', Buffer.from(markerKey(1, 1)));
    expect(feed(t, [[event, key]])).toEqual(['1.1.1']);
  });

  it('accepts marker 0 and the largest epoch it can count', () => {
    const t = new StreamPositionTracker();
    expect(feed(t, [['set', markerKey(0, 0)]])).toEqual(['0.0.0']);
    expect(feed(t, [['set', markerKey(999_999_999_999_999, 7)]])).toEqual(['999999999999999.7.0']);
  });

  it('forgets its base on reset (a hole in the stream) and tells onReset', () => {
    let resets = 0;
    const t = new StreamPositionTracker({ onReset: () => (resets += 1) });
    feed(t, [['set', markerKey(4, 1)]]);
    t.reset();
    expect(resets).toBe(1);
    expect(t.base).toBeUndefined();
    // After a hole any marker is a base again, even a lower one: the stream starts anew.
    expect(
      feed(t, [
        ['set', 'at:a'],
        ['set', markerKey(3, 1)],
        ['set', 'at:a'],
      ]),
    ).toEqual(['-', '3.1.0', '3.1.1']);
  });

  it('never takes a marker below the epoch floor as a base, not even the first', () => {
    const t = new StreamPositionTracker();
    t.ignoreEpochsBelow(5);
    t.ignoreEpochsBelow(3); // only rises
    expect(
      feed(t, [
        ['set', markerKey(4, 100)],
        ['set', 'at:a'],
        ['set', markerKey(5, 0)],
        ['set', 'at:a'],
      ]),
    ).toEqual(['-', '-', '5.0.0', '5.0.1']);
  });
});
