import { describe, expect, it } from 'vitest';
import { beforeMarker, formatPosition, type StreamPosition } from '../../src/domain/position.js';
import type { TokenEvent } from '../../src/domain/token-event.js';
import { StandbyBuffer } from '../../src/keyspace/standby-buffer.js';

const T0 = 1_800_000_000_000;

function ev(pos: StreamPosition | undefined, at = T0, index = 0): TokenEvent {
  const e: TokenEvent = {
    type: 'written',
    kind: 'access_token',
    fingerprint: `fp-${pos ? formatPosition(pos, index) : 'none'}`,
    keyAttrs: {},
    node: 'redis:6379',
    db: 0,
    observedAt: at,
    redisEvent: 'set',
  };
  if (pos) {
    e.position = pos;
    e.positionIndex = index;
  }
  return e;
}

const p = (epoch: number, marker: number, offset: number): StreamPosition => ({
  epoch,
  marker,
  offset,
});

/** The formatted positions (with index) of a replay, or its failure reason. */
function replay(b: StandbyBuffer, after: StreamPosition, index?: number): string[] | string {
  const r = b.eventsAfter(after, index);
  if (!r.ok) return r.reason;
  return r.events.map((e) => formatPosition(e.position!, e.positionIndex));
}

describe('StandbyBuffer', () => {
  const clock = { t: T0 };
  const make = (maxEvents = 100, maxAgeMs = 60_000) =>
    new StandbyBuffer({ maxEvents, maxAgeMs, now: () => clock.t });

  it('replays the events after a position, in order', () => {
    clock.t = T0;
    const b = make();
    for (const k of [2, 4, 9]) b.push(ev(p(1, 3, k)));
    b.push(ev(p(1, 4, 2)));
    expect(b.depth).toBe(4);
    expect(replay(b, p(1, 3, 4))).toEqual(['1.3.9.0', '1.4.2.0']);
    expect(replay(b, p(1, 3, 5))).toEqual(['1.3.9.0', '1.4.2.0']);
    expect(replay(b, p(1, 4, 2))).toEqual([]);
    expect(replay(b, p(2, 0, 0))).toEqual([]); // ahead of what it received: nothing yet
  });

  it('holds the stream from a marker a standby saw on, not only from its first event', () => {
    clock.t = T0;
    const b = make();
    // The marker (1, 2) arrives while the buffer is empty; events before it, still being
    // translated, come without a position (this instance knew no base before) and are ignored.
    b.markerSeen(1, 2);
    b.push(ev(undefined));
    b.push(ev(p(1, 2, 5)));
    b.push(ev(p(1, 3, 1)));
    // A handover through the final marker 2 (from = just before it): everything after is held.
    expect(replay(b, beforeMarker(1, 2))).toEqual(['1.2.5.0', '1.3.1.0']);
    // Before that marker: not held.
    expect(replay(b, p(1, 1, 9))).toBe('not_reached');
  });

  it('takes a marker as its start only while empty, and forgets it at a hole', () => {
    clock.t = T0;
    const b = make();
    b.push(ev(p(1, 2, 5)));
    b.markerSeen(1, 3); // already holding from (1, 2, 4): the marker changes nothing
    expect(replay(b, p(1, 2, 4))).toEqual(['1.2.5.0']);
    expect(replay(b, p(1, 2, 3))).toBe('not_reached');
    b.discontinuity();
    b.markerSeen(1, 4);
    b.discontinuity(); // a hole after the marker: the claim is gone
    b.push(ev(p(1, 5, 3)));
    expect(replay(b, beforeMarker(1, 4))).toBe('not_reached');
    expect(replay(b, p(1, 5, 2))).toEqual(['1.5.3.0']);
    // Without a marker claim an event without a position still means a hole.
    b.push(ev(undefined));
    expect(replay(b, p(1, 5, 2))).toBe('unknown');
  });

  it('reaches back to just before the first event it was given, and no further', () => {
    clock.t = T0;
    const b = make();
    b.push(ev(p(1, 3, 7)));
    // Notifications 1.3.0 to 1.3.6 may have made events it was not given (its caller owned the
    // node then and recorded them itself): it does not claim them.
    expect(b.heldAfter).toEqual(p(1, 3, 6));
    expect(replay(b, p(1, 3, 6))).toEqual(['1.3.7.0']);
    expect(replay(b, p(1, 3, 5))).toBe('not_reached');
    expect(replay(b, beforeMarker(1, 3))).toBe('not_reached');
    expect(replay(b, p(0, 9, 9))).toBe('not_reached');
  });

  it('starting inside one notification, holds only its later events', () => {
    clock.t = T0;
    const b = make();
    b.push(ev(p(1, 3, 7), T0, 1)); // index 0 went elsewhere
    b.push(ev(p(1, 3, 8)));
    expect(b.heldAfter).toEqual(p(1, 3, 7));
    expect(replay(b, p(1, 3, 7), 0)).toEqual(['1.3.7.1', '1.3.8.0']);
    expect(replay(b, p(1, 3, 7))).toEqual(['1.3.8.0']);
    expect(b.eventsAfter(p(1, 3, 6))).toEqual({
      ok: false,
      reason: 'not_reached',
      heldAfter: p(1, 3, 7),
      heldAfterIndex: 0,
    });
  });

  it('says unknown while it holds no positioned stretch', () => {
    clock.t = T0;
    const b = make();
    expect(replay(b, p(1, 1, 1))).toBe('unknown');
    b.push(ev(undefined));
    expect(b.depth).toBe(0);
    expect(replay(b, p(1, 1, 1))).toBe('unknown');
  });

  it('tells the events of one notification apart by index', () => {
    clock.t = T0;
    const b = make();
    b.push(ev(p(1, 1, 5), T0, 0));
    b.push(ev(p(1, 1, 5), T0, 1));
    b.push(ev(p(1, 1, 6), T0, 0));
    expect(replay(b, p(1, 1, 5))).toEqual(['1.1.6.0']);
    expect(replay(b, p(1, 1, 5), 0)).toEqual(['1.1.5.1', '1.1.6.0']);
    expect(replay(b, p(1, 1, 4))).toEqual(['1.1.5.0', '1.1.5.1', '1.1.6.0']);
  });

  it('drops the oldest over maxEvents, counts them, and no longer reaches back past them', () => {
    clock.t = T0;
    const b = make(3);
    for (let k = 1; k <= 5; k++) b.push(ev(p(1, 1, k)));
    expect(b.depth).toBe(3);
    expect(b.dropped).toBe(2);
    expect(b.heldAfter).toEqual(p(1, 1, 2));
    expect(formatPosition(b.oldest!.position!)).toBe('1.1.3');
    expect(replay(b, p(1, 1, 1))).toBe('dropped');
    expect(replay(b, p(1, 1, 2))).toEqual(['1.1.3.0', '1.1.4.0', '1.1.5.0']);
    expect(replay(b, p(1, 1, 2), 0)).toEqual(['1.1.3.0', '1.1.4.0', '1.1.5.0']);
    expect(replay(b, p(1, 1, 4))).toEqual(['1.1.5.0']);
  });

  it('keeps working as a ring across many wraps and growths', () => {
    clock.t = T0;
    const b = make(37);
    for (let k = 1; k <= 1000; k++) b.push(ev(p(2, 1, k)));
    expect(b.depth).toBe(37);
    expect(b.dropped).toBe(963);
    const r = b.eventsAfter(p(2, 1, 963));
    expect(r.ok && r.events.map((e) => e.position!.offset)).toEqual(
      Array.from({ length: 37 }, (_, i) => 964 + i),
    );
  });

  it('drops events older than maxAgeMs, on push and before a replay', () => {
    clock.t = T0;
    const b = make(100, 1000);
    b.push(ev(p(1, 1, 1), T0));
    b.push(ev(p(1, 1, 2), T0 + 500));
    clock.t = T0 + 1200;
    b.push(ev(p(1, 1, 3), T0 + 1200));
    expect(b.depth).toBe(2);
    expect(b.dropped).toBe(1);
    clock.t = T0 + 1600; // 1.1.2 is now too old, with no push to notice
    expect(replay(b, p(1, 1, 1))).toBe('dropped');
    expect(b.depth).toBe(1);
    expect(replay(b, p(1, 1, 2))).toEqual(['1.1.3.0']);
  });

  it('empties at a hole in the stream and starts over at the next positioned event', () => {
    clock.t = T0;
    const b = make(2);
    for (let k = 1; k <= 3; k++) b.push(ev(p(1, 1, k)));
    b.discontinuity();
    expect(b.depth).toBe(0);
    expect(b.heldAfter).toBeUndefined();
    expect(replay(b, p(1, 1, 3))).toBe('unknown');
    b.push(ev(p(1, 4, 2)));
    // Events between 1.1.3 and 1.4.2 were not seen: not_reached (no drop since the hole).
    expect(replay(b, p(1, 1, 3))).toBe('not_reached');
    expect(replay(b, beforeMarker(1, 4))).toBe('not_reached');
    expect(replay(b, p(1, 4, 1))).toEqual(['1.4.2.0']);
    expect(b.dropped).toBe(1);
  });

  it('treats an event without position after positioned ones as an unreported hole', () => {
    clock.t = T0;
    const b = make();
    b.push(ev(p(1, 1, 1)));
    b.push(ev(undefined));
    expect(replay(b, p(1, 1, 0))).toBe('unknown');
  });

  it('refuses a bound below one event', () => {
    expect(() => make(0)).toThrow(RangeError);
  });
});

describe('StandbyBuffer drops inside one notification', () => {
  it('keeps the later events of a notification whose first event was dropped', () => {
    const b = new StandbyBuffer({ maxEvents: 2, maxAgeMs: 60_000, now: () => T0 });
    b.push(ev(p(1, 1, 1)));
    b.push(ev(p(1, 1, 2), T0, 0));
    b.push(ev(p(1, 1, 2), T0, 1)); // drops 1.1.1.0
    b.push(ev(p(1, 1, 3))); // drops 1.1.2.0
    expect(replay(b, p(1, 1, 2), 0)).toEqual(['1.1.2.1', '1.1.3.0']);
    expect(replay(b, p(1, 1, 2))).toEqual(['1.1.3.0']);
    expect(replay(b, p(1, 1, 1))).toBe('dropped');
  });
});
