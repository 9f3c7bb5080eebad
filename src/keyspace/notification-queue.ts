import type { StreamPosition } from '../domain/position.js';
import {
  changesKey,
  hasKeyBit,
  keyBits,
  type Item,
  type PendingKeys,
} from './notification-batch.js';

/** Slots per segment (a power of two). */
const SEGMENT_BITS = 12;
const SEGMENT = 1 << SEGMENT_BITS;
const MASK = SEGMENT - 1;
/** Emptied segments kept for the next ones needed (beyond them, memory goes back). */
const SPARE_SEGMENTS = 2;

/** What few notifications carry beyond their name, key and time. */
interface Extra {
  pos?: StreamPosition;
  migrated?: boolean;
}

/** SEGMENT slots of the queue's parallel columns (~45 bytes a slot). */
class Segment {
  readonly events = new Array<string | undefined>(SEGMENT).fill(undefined);
  readonly chunks = new Array<Buffer | undefined>(SEGMENT).fill(undefined);
  readonly extras = new Array<Extra | undefined>(SEGMENT).fill(undefined);
  readonly offsets = new Int32Array(SEGMENT);
  readonly lengths = new Int32Array(SEGMENT);
  readonly ats = new Float64Array(SEGMENT);
  /**
   * keyBits() of each key once asked (-1: not yet). Behind a backlog discardSuperseded reads the
   * same pending keys again for every chunk taken (20 000 of them per 5 000 taken): hashed once.
   */
  readonly bits = new Int32Array(SEGMENT);
  /** 1 where the event may change a key's expiry (changesKey), judged once at push. */
  readonly changes = new Uint8Array(SEGMENT);
}

/** keyBits() of the key in slot `i` of `seg`, hashed once (cached in `bits`). */
function bitsAt(seg: Segment, i: number): number {
  const cached = seg.bits[i] as number;
  if (cached >= 0) return cached;
  const start = seg.offsets[i] as number;
  const h = keyBits(seg.chunks[i] as Buffer, start, start + (seg.lengths[i] as number));
  seg.bits[i] = h;
  return h;
}

/**
 * The notifications a node watcher received and has not applied yet, in arrival order (issue
 * #19). Behind a backlog (a drain: Redis delivers faster than the event loop applies) this holds
 * hundreds of thousands of them. An object and a Buffer view per notification made the backlog
 * most of the V8 heap, every one of them copied by two scavenges and promoted before its turn.
 * Here a notification is a few slots of parallel columns instead: its event name (a string
 * EventNames made once), the socket chunk its key is in and where (the chunk is shared by the
 * ~600 notifications it carries), its arrival time. Its Item, the object the rest of the pipeline
 * reads, is made when it is taken, a chunk at a time, and dies young.
 *
 * The columns come in segments of 4 096 slots, added as the queue grows and dropped (a couple
 * kept for reuse) as it drains: nothing is copied or allocated whole to grow or shrink it (a
 * ring of doubling arrays allocated ~250 bytes per notification of a 300 000-write drain).
 */
export class NotificationQueue implements PendingKeys {
  /** In order: the first holds the oldest notification, at #head. */
  #segments: Segment[] = [];
  readonly #spare: Segment[] = [];
  #head = 0;
  #size = 0;
  /** The last event pushed and its changesKey (events come as a few interned names). */
  #lastEvent = '';
  #lastChanges = 0;

  get length(): number {
    return this.#size;
  }

  /** Slots its segments hold now (what it costs in memory, ~45 bytes each; for tests). */
  get slots(): number {
    return this.#segments.length * SEGMENT;
  }

  /**
   * Appends a notification whose key is `chunk[start, end)`; the queue keeps a reference to
   * `chunk` (never a copy), so its bytes must not change until the notification is taken.
   */
  push(
    event: string,
    chunk: Buffer,
    start: number,
    end: number,
    at: number,
    pos?: StreamPosition,
    migrated?: boolean,
  ): void {
    const g = this.#head + this.#size;
    if (g >>> SEGMENT_BITS === this.#segments.length) {
      this.#segments.push(this.#spare.pop() ?? new Segment());
    }
    const seg = this.#segments[g >>> SEGMENT_BITS] as Segment;
    const i = g & MASK;
    seg.events[i] = event;
    seg.chunks[i] = chunk;
    seg.offsets[i] = start;
    seg.lengths[i] = end - start;
    seg.ats[i] = at;
    seg.bits[i] = -1;
    if (event !== this.#lastEvent) {
      this.#lastEvent = event;
      this.#lastChanges = changesKey(event) ? 1 : 0;
    }
    seg.changes[i] = this.#lastChanges;
    if (pos !== undefined || migrated !== undefined) {
      const extra: Extra = {};
      if (pos !== undefined) extra.pos = pos;
      if (migrated !== undefined) extra.migrated = migrated;
      seg.extras[i] = extra;
    }
    this.#size += 1;
  }

  /** The oldest `n` notifications (fewer when it holds fewer) as Items, removed from the queue. */
  take(n: number): Item[] {
    const count = Math.min(n, this.#size);
    const out: Item[] = new Array<Item>(count);
    const segments = this.#segments;
    for (let j = 0; j < count; j++) {
      const g = this.#head + j;
      const seg = segments[g >>> SEGMENT_BITS] as Segment;
      const i = g & MASK;
      const chunk = seg.chunks[i] as Buffer;
      const start = seg.offsets[i] as number;
      const item: Item = {
        event: seg.events[i] as string,
        key: chunk.subarray(start, start + (seg.lengths[i] as number)),
        at: seg.ats[i] as number,
      };
      const extra = seg.extras[i];
      if (extra !== undefined) {
        if (extra.migrated !== undefined) item.migrated = extra.migrated;
        if (extra.pos !== undefined) item.pos = extra.pos;
        seg.extras[i] = undefined;
      }
      // Released here: a chunk must not outlive its last notification.
      seg.events[i] = undefined;
      seg.chunks[i] = undefined;
      out[j] = item;
    }
    this.#head += count;
    this.#size -= count;
    // Segments taken whole leave (a couple kept for the next ones needed).
    while (this.#head >= SEGMENT) {
      this.#release(segments.shift() as Segment);
      this.#head -= SEGMENT;
    }
    // Empty: it starts again at the front of its first segment, the others go.
    if (this.#size === 0) {
      this.#head = 0;
      while (segments.length > 1) this.#release(segments.pop() as Segment);
    }
    return out;
  }

  /**
   * Drops everything queued (a backlog past its bound) and gives its slots back. Returns how
   * many notifications were dropped and when the oldest of them arrived (NaN: none). `each`, when
   * given, is told every dropped notification first, oldest first: its event, its key's chunk and
   * range, and the key's keyBits when already computed (else -1: hashing is the callee's choice).
   */
  clear(each?: (event: string, chunk: Buffer, start: number, end: number, bits: number) => void): {
    dropped: number;
    oldestAt: number;
  } {
    const dropped = this.#size;
    const first = this.#segments[0];
    const oldestAt = dropped > 0 && first ? (first.ats[this.#head] as number) : NaN;
    if (each) {
      for (let j = 0; j < dropped; j++) {
        const g = this.#head + j;
        const seg = this.#segments[g >>> SEGMENT_BITS] as Segment;
        const i = g & MASK;
        const start = seg.offsets[i] as number;
        each(
          seg.events[i] as string,
          seg.chunks[i] as Buffer,
          start,
          start + (seg.lengths[i] as number),
          seg.bits[i] as number,
        );
      }
    }
    this.#size = 0;
    this.#head = 0;
    this.#segments = [];
    this.#spare.length = 0;
    return { dropped, oldestAt };
  }

  /** An emptied segment: kept for reuse while there are few spares, else dropped. */
  #release(seg: Segment): void {
    if (this.#spare.length >= SPARE_SEGMENTS) return;
    seg.events.fill(undefined);
    seg.chunks.fill(undefined);
    seg.extras.fill(undefined);
    this.#spare.push(seg);
  }

  // PendingKeys: what discardSuperseded reads of the notifications still waiting, by index from
  // the oldest, without making their Items.

  event(j: number): string {
    const g = this.#head + j;
    return (this.#segments[g >>> SEGMENT_BITS] as Segment).events[g & MASK] as string;
  }

  keyLength(j: number): number {
    const g = this.#head + j;
    return (this.#segments[g >>> SEGMENT_BITS] as Segment).lengths[g & MASK] as number;
  }

  keyBits(j: number): number {
    const g = this.#head + j;
    return bitsAt(this.#segments[g >>> SEGMENT_BITS] as Segment, g & MASK);
  }

  keyString(j: number): string {
    const g = this.#head + j;
    const seg = this.#segments[g >>> SEGMENT_BITS] as Segment;
    const i = g & MASK;
    const start = seg.offsets[i] as number;
    return (seg.chunks[i] as Buffer).toString('latin1', start, start + (seg.lengths[i] as number));
  }

  candidates(n: number, maxKeyBytes: number, looked: Int32Array): number[] {
    const out: number[] = [];
    const head = this.#head;
    const end = head + Math.min(n, this.#size);
    // Segment by segment: the columns of one are read straight.
    for (let g = head; g < end;) {
      const seg = this.#segments[g >>> SEGMENT_BITS] as Segment;
      const stop = Math.min(end, ((g >>> SEGMENT_BITS) + 1) << SEGMENT_BITS);
      const { changes, lengths } = seg;
      for (; g < stop; g++) {
        const i = g & MASK;
        if (changes[i] === 0 || (lengths[i] as number) > maxKeyBytes) continue;
        if (hasKeyBit(looked, bitsAt(seg, i))) out.push(g - head);
      }
    }
    return out;
  }
}
