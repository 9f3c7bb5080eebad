import { describe, expect, it } from 'vitest';
import { formatPosition } from '../../src/domain/position.js';
import { Fingerprinter } from '../../src/audit/fingerprint.js';
import { MARKER_TAG_CHARS, MarkerAuth } from '../../src/keyspace/marker-auth.js';
import { markerKey, StreamPositionTracker } from '../../src/keyspace/stream-position.js';
import { mk, TEST_MARKER_AUTH, tracker } from '../helpers/markers.js';

const TEST_KEY = { id: 't', key: Buffer.from('marker-test-key-0123456789', 'utf8') };

/** Feeds [event, key] notifications and returns each one's formatted position ('-' unknown). */
function feed(t: StreamPositionTracker, notes: readonly (readonly [string, string])[]): string[] {
  return notes.map(([event, key]) => {
    const p = t.observe(event, Buffer.from(key, 'latin1'));
    return p ? formatPosition(p) : '-';
  });
}

describe('StreamPositionTracker', () => {
  it('knows no position before the first marker, then counts every notification after it', () => {
    const t = tracker();
    expect(
      feed(t, [
        ['set', 'at:a'],
        ['set', mk(1, 1)],
        ['expire', mk(1, 1)],
        ['set', 'at:b'],
        ['keymiss', 'whatever'],
        ['expired', mk(1, 1)],
        ['set', mk(1, 2)],
        ['del', 'at:b'],
      ]),
    ).toEqual(['-', '1.1.0', '1.1.1', '1.1.2', '1.1.3', '1.1.4', '1.2.0', '1.2.1']);
    expect(t.base).toEqual({ epoch: 1, marker: 2 });
    expect(t.markersSeen).toBe(2);
  });

  it('lets only a greater marker move the base: stale, repeated and older ones are counted', () => {
    const t = tracker();
    expect(
      feed(t, [
        ['set', mk(2, 5)],
        ['set', mk(1, 9)], // a fenced owner's epoch
        ['set', mk(2, 4)], // a reordered, older one
        ['set', mk(2, 5)], // the same again
        ['set', mk(3, 0)], // a new epoch starts over at n = 0
        ['set', 'at:a'],
      ]),
    ).toEqual(['2.5.0', '2.5.1', '2.5.2', '2.5.3', '3.0.0', '3.0.1']);
    expect(t.markersSeen).toBe(2);
  });

  it('recognises the Cluster form with a hash tag, and a custom prefix', () => {
    const t = tracker({ keyPrefix: 'tw2:' });
    expect(
      feed(t, [
        ['set', mk(1, 1, 'tw7')],
        ['set', mk(1, 2, 'tw7', 'tw2:')],
        ['set', mk(1, 3, undefined, 'tw2:')],
        ['set', mk(1, 4, 'a:b', 'tw2:')],
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
    const t = tracker();
    expect(
      feed(t, [
        [event, key],
        ['set', 'at:a'],
      ]),
    ).toEqual(['-', '-']);
    t.observe('set', Buffer.from(mk(1, 1)));
    expect(feed(t, [[event, key]])).toEqual(['1.1.1']);
  });

  it('accepts marker 0 and the largest epoch it can count', () => {
    const t = tracker();
    expect(feed(t, [['set', mk(0, 0)]])).toEqual(['0.0.0']);
    expect(feed(t, [['set', mk(999_999_999_999_999, 7)]])).toEqual(['999999999999999.7.0']);
  });

  it('forgets its base on reset (a hole in the stream) and tells onReset', () => {
    let resets = 0;
    const t = tracker({ onReset: () => (resets += 1) });
    feed(t, [['set', mk(4, 1)]]);
    t.reset();
    expect(resets).toBe(1);
    expect(t.base).toBeUndefined();
    // After a hole only a marker greater than every one taken before is a base: the owner's
    // markers only rise, so a lower or equal one is a replay (or a fenced owner's), which every
    // instance without the hole ignores too.
    expect(
      feed(t, [
        ['set', 'at:a'],
        ['set', mk(3, 1)],
        ['set', mk(4, 1)],
        ['set', 'at:a'],
        ['set', mk(4, 2)],
        ['set', 'at:a'],
      ]),
    ).toEqual(['-', '-', '-', '-', '4.2.0', '4.2.1']);
  });

  it('does not take a genuine marker replayed into a hole (CLIENT KILL TYPE pubsub) as its base', () => {
    // Two instances count one stream; B's subscriber is killed (reset) and, before the owner's
    // next marker, someone who saw marker (2, 3) earlier SETs that key again.
    const a = tracker();
    const b = tracker();
    const before: [string, string][] = [
      ['set', mk(2, 3)],
      ['set', 'at:x'],
      ['set', mk(2, 4)],
      ['set', 'at:y'],
    ];
    feed(a, before);
    feed(b, before);
    b.reset();
    const after: [string, string][] = [
      ['set', mk(2, 3)], // the replay
      ['set', 'at:z'],
      ['del', 'at:x'],
      ['set', mk(2, 5)],
      ['set', 'at:w'],
    ];
    const pa = feed(a, after);
    const pb = feed(b, after);
    expect(pa).toEqual(['2.4.2', '2.4.3', '2.4.4', '2.5.0', '2.5.1']);
    // B names nothing it cannot name alike (unknown until the next real marker), never 2.3.x.
    expect(pb).toEqual(['-', '-', '-', '2.5.0', '2.5.1']);
  });

  it('never takes a marker below the epoch floor as a base, not even the first', () => {
    const t = tracker();
    t.ignoreEpochsBelow(5);
    t.ignoreEpochsBelow(3); // only rises
    expect(
      feed(t, [
        ['set', mk(4, 100)],
        ['set', 'at:a'],
        ['set', mk(5, 0)],
        ['set', 'at:a'],
      ]),
    ).toEqual(['-', '-', '5.0.0', '5.0.1']);
  });

  it("refuses forged markers: a wrong tag, a missing tag, another node's or another key's tag", () => {
    const rejected: string[] = [];
    const t = tracker({
      onRejected: (reason, key) => rejected.push(`${reason} ${key.toString()}`),
    });
    const other = new MarkerAuth([{ id: 'x', key: Buffer.from('another-key-0123456789') }]);
    const forged = [
      markerKey(1, 1, 'f'.repeat(MARKER_TAG_CHARS)), // a guessed tag
      markerKey(1, 1, TEST_MARKER_AUTH.tag(1, 2)), // the tag of another marker
      markerKey(1, 1, other.forNode('test-node').tag(1, 1)), // under a key not configured
      markerKey(1, 1, new MarkerAuth([TEST_KEY]).forNode('other-node').tag(1, 1)), // other node
      'tokenwatch:marker:1:1', // the old, untagged form
    ];
    expect(
      feed(
        t,
        forged.map((k) => ['set', k] as const),
      ),
    ).toEqual(['-', '-', '-', '-', '-']);
    expect(t.base).toBeUndefined();
    expect(rejected).toEqual([
      `bad_mac ${forged[0]}`,
      `bad_mac ${forged[1]}`,
      `bad_mac ${forged[2]}`,
      `bad_mac ${forged[3]}`,
      `malformed ${forged[4]}`,
    ]);
    // A forged marker with a huge epoch, after a genuine base, moves nothing either.
    expect(
      feed(t, [
        ['set', mk(2, 1)],
        ['set', markerKey(999_999, 1, '0'.repeat(MARKER_TAG_CHARS))],
        ['set', 'at:a'],
        ['set', mk(2, 2)],
      ]),
    ).toEqual(['2.1.0', '2.1.1', '2.1.2', '2.2.0']);
    expect(rejected).toHaveLength(6);
  });

  it('accepts a marker tagged under any configured key (rotation), binding the node', () => {
    const old = { id: 'old', key: Buffer.from('the-old-marker-key-0123') };
    const writer = new MarkerAuth([old]).forNode('n1');
    const reader = new MarkerAuth([
      { id: 'new', key: Buffer.from('the-new-marker-key-0123') },
      old,
    ]);
    const t = new StreamPositionTracker({ auth: reader.forNode('n1') });
    expect(t.observe('set', Buffer.from(markerKey(3, 1, writer.tag(3, 1))))).toEqual({
      epoch: 3,
      marker: 1,
      offset: 0,
    });
    const elsewhere = new StreamPositionTracker({ auth: reader.forNode('n2') });
    expect(
      elsewhere.observe('set', Buffer.from(markerKey(3, 1, writer.tag(3, 1)))),
    ).toBeUndefined();
  });

  it('derives marker tags so that no token fingerprint under the same key equals one', () => {
    const fp = new Fingerprinter([TEST_KEY]);
    const auth = new MarkerAuth([TEST_KEY]).forNode('test-node');
    const tag = auth.tag(1, 1);
    // HMAC(K, the tag's input) is what a token key holding that text would be fingerprinted as.
    for (const input of ['marker\n9:test-node\n1\n1', '1:1', 'test-node:1:1'])
      expect(fp.of(input).slice(-64).slice(0, MARKER_TAG_CHARS)).not.toBe(tag);
    expect(tag).toMatch(/^[0-9a-f]{20}$/);
  });

  it('tags committed positions apart from markers: neither verifies as the other', () => {
    const auth = new MarkerAuth([TEST_KEY]).forNode('test-node');
    const t = auth.committedTag('1.2.-1');
    expect(auth.verifyCommitted('1.2.-1', t)).toBe(true);
    expect(auth.verifyCommitted('1.3.-1', t)).toBe(false);
    expect(new MarkerAuth([TEST_KEY]).forNode('other').verifyCommitted('1.2.-1', t)).toBe(false);
    // A marker's tag never passes as a committed position's, nor the reverse.
    expect(auth.verifyCommitted('1\n2', auth.tag(1, 2))).toBe(false);
    expect(auth.verify(1, 2, auth.committedTag('1\n2'))).toBe(false);
  });
});
