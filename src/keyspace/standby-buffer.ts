import { beforeMarker, comparePosition, type StreamPosition } from '../domain/position.js';
import type { TokenEvent } from '../domain/token-event.js';

/**
 * Why a standby buffer cannot replay everything after a position (the takeover then records a
 * `keyspace.gap` and reconciles instead, never silently):
 * - `unknown`: it holds no positioned stretch of the stream at all (no marker seen since it
 *   started or since the subscriber's last disconnect);
 * - `dropped`: events after the position were dropped by its bounds (maxEvents / maxAgeMs);
 * - `not_reached`: what it holds starts after the position (this instance subscribed, or saw its
 *   first marker, or reconnected, after it).
 */
export type NotReachedReason = 'unknown' | 'dropped' | 'not_reached';

export type ReplayResult =
  | { ok: true; events: TokenEvent[] }
  | {
      ok: false;
      reason: NotReachedReason;
      /** Everything after this position is held (undefined when `unknown`). */
      heldAfter: StreamPosition | undefined;
      /** With `heldAfter`: only that notification's events after this index are held. */
      heldAfterIndex?: number;
    };

export interface StandbyBufferOptions {
  /** `coordination.standby.maxEvents`: most events held; the oldest go first. */
  maxEvents: number;
  /** `coordination.standby.maxAgeMs`: events observed longer ago than this are dropped. */
  maxAgeMs: number;
  /** The clock of the events' `observedAt` (ms). */
  now: () => number;
}

/**
 * A hot standby's memory of one node's token events, for a takeover to replay (issue #20): a ring
 * bounded in count and age, holding events in stream order with their positions.
 *
 * It keeps `heldAfter`, the position after which it holds EVERY token event of the stream: just
 * before the first positioned event it was given (the notifications between the base marker and
 * that event may have made events that were not given to it: its caller may have been the owner
 * then), raised to each dropped event as the bounds drop the oldest. A hole in the stream
 * (subscriber disconnect: call discontinuity(); also assumed when an event without a position
 * arrives) empties it: nothing before a hole joins up with what follows it.
 *
 * Its claim to hold everything after `heldAfter` rests on being given every token event of the
 * node in order from its first one on: whoever skips a stretch after that must call
 * discontinuity() before pushing again (e.g. after owning the node and recording instead).
 */
export class StandbyBuffer {
  readonly #o: StandbyBufferOptions;
  #ring: (TokenEvent | undefined)[] = [];
  #head = 0;
  #size = 0;
  #heldAfter: StreamPosition | undefined;
  /** Within the `heldAfter` notification, the events after this index are held (undefined: none). */
  #heldAfterIndex: number | undefined;
  /**
   * `heldAfter` was set by markerSeen(): every event without a position given since then
   * precedes that marker in the stream (positions stay known until a hole, which calls
   * discontinuity()), so it neither breaks nor extends the claim.
   */
  #claimedAtMarker = false;
  /** Whether `heldAfter` was raised by a drop since the last hole (for the `dropped` reason). */
  #droppedSinceHole = false;
  #dropped = 0;

  constructor(options: StandbyBufferOptions) {
    if (!(options.maxEvents >= 1)) throw new RangeError('maxEvents must be at least 1');
    this.#o = options;
  }

  /** Events held now. */
  get depth(): number {
    return this.#size;
  }

  /** Events dropped by the bounds since the start (a counter: never decreases). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Everything after this position is held (undefined: no positioned stretch held). */
  get heldAfter(): StreamPosition | undefined {
    return this.#heldAfter;
  }

  /** The oldest event held, if any. */
  get oldest(): TokenEvent | undefined {
    return this.#size === 0 ? undefined : this.#ring[this.#head];
  }

  /**
   * The node's stream moved its base to marker (epoch, marker) while the caller gives this buffer
   * every token event that follows (a standby). An empty buffer then holds everything after the
   * point just before that marker: a stretch of non-token notifications between the marker and
   * the first buffered event is held too, so a takeover whose `from` is that marker replays
   * exactly (without this, the claim began only at the first event). Called by the position
   * tracker when the marker arrives, before any event after it can be pushed.
   */
  markerSeen(epoch: number, marker: number): void {
    if (this.#heldAfter !== undefined || this.#size > 0) return;
    this.#heldAfter = beforeMarker(epoch, marker);
    this.#heldAfterIndex = undefined;
    this.#claimedAtMarker = true;
  }

  /** Keeps a token event (in stream order), dropping the oldest over the bounds. */
  push(ev: TokenEvent): void {
    const p = ev.position;
    if (p === undefined && this.#claimedAtMarker) return;
    if (p === undefined) {
      // Unknown position: only before a marker was seen, i.e. after a hole nobody reported.
      if (this.#heldAfter !== undefined || this.#size > 0) this.discontinuity();
      return;
    }
    if (this.#heldAfter === undefined) {
      const i = ev.positionIndex ?? 0;
      this.#heldAfter = i === 0 ? { ...p, offset: p.offset - 1 } : p;
      this.#heldAfterIndex = i === 0 ? undefined : i - 1;
    }
    if (this.#size === this.#o.maxEvents) this.#dropOldest();
    const cap = this.#ring.length;
    if (this.#size < cap) {
      this.#ring[(this.#head + this.#size) % cap] = ev;
    } else {
      // Grow (lazily, up to maxEvents): unroll so the ring starts at 0 again.
      const grown = this.#ring.slice(this.#head).concat(this.#ring.slice(0, this.#head));
      grown.length = Math.min(this.#o.maxEvents, Math.max(16, cap * 2));
      this.#ring = grown;
      this.#head = 0;
      this.#ring[this.#size] = ev;
    }
    this.#size += 1;
    this.prune();
  }

  /** Drops the events older than maxAgeMs (push and eventsAfter call it too). */
  prune(): void {
    const limit = this.#o.now() - this.#o.maxAgeMs;
    while (this.#size > 0 && (this.#ring[this.#head] as TokenEvent).observedAt < limit)
      this.#dropOldest();
  }

  /**
   * The stream had a hole (subscriber disconnected): empties the buffer; it holds nothing by
   * position until the next positioned event. Not counted as drops (the hole is the watcher's
   * gap, recorded by whoever owns the node).
   */
  discontinuity(): void {
    this.#ring = [];
    this.#head = 0;
    this.#size = 0;
    this.#heldAfter = undefined;
    this.#heldAfterIndex = undefined;
    this.#droppedSinceHole = false;
    this.#claimedAtMarker = false;
  }

  /**
   * The events after `p`, in stream order, when the buffer reaches back to it: every held event
   * whose position is greater than `p` (with `index`: also those of `p`'s own notification with a
   * greater positionIndex, for a commit that ended inside one notification's events).
   */
  eventsAfter(p: StreamPosition, index?: number): ReplayResult {
    this.prune();
    const held = this.#heldAfter;
    if (held === undefined) return { ok: false, reason: 'unknown', heldAfter: undefined };
    // Ranks within one notification: no index = all of its events.
    const c = comparePosition(p, held);
    if (c < 0 || (c === 0 && (index ?? Infinity) < (this.#heldAfterIndex ?? Infinity))) {
      const reason = this.#droppedSinceHole ? 'dropped' : 'not_reached';
      const r: ReplayResult = { ok: false, reason, heldAfter: held };
      if (this.#heldAfterIndex !== undefined) r.heldAfterIndex = this.#heldAfterIndex;
      return r;
    }
    const events: TokenEvent[] = [];
    const cap = this.#ring.length;
    for (let i = 0; i < this.#size; i++) {
      const ev = this.#ring[(this.#head + i) % cap] as TokenEvent;
      const c = comparePosition(ev.position as StreamPosition, p);
      if (c > 0 || (c === 0 && index !== undefined && (ev.positionIndex ?? 0) > index))
        events.push(ev);
    }
    return { ok: true, events };
  }

  /**
   * Every event held, in stream order: for a takeover that cannot replay exactly (the buffer does
   * not reach back to its position): these events are real and possibly in no ledger, so they
   * are recorded along with the gap (an overlap is deduplicated by position, a loss is not).
   */
  held(): TokenEvent[] {
    this.prune();
    const events: TokenEvent[] = [];
    const cap = this.#ring.length;
    for (let i = 0; i < this.#size; i++)
      events.push(this.#ring[(this.#head + i) % cap] as TokenEvent);
    return events;
  }

  #dropOldest(): void {
    const ev = this.#ring[this.#head] as TokenEvent;
    this.#ring[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#ring.length;
    this.#size -= 1;
    this.#dropped += 1;
    this.#droppedSinceHole = true;
    // Everything up to the dropped event is gone; its later siblings of one notification are not.
    this.#heldAfter = ev.position;
    this.#heldAfterIndex = ev.positionIndex;
  }
}
