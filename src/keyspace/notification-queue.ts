import type { StreamPosition } from '../domain/position.js';
import {
  changesKey,
  hasKeyBit,
  keyBits,
  type Item,
  type PendingKeys,
} from './notification-batch.js';

/** Slots a new (or emptied) queue starts with. */
const INITIAL_CAPACITY = 1024;
/** A queue past this many slots, a quarter full or less, gives slots back (after a burst). */
const SHRINK_ABOVE = 64 * 1024;

/** What few notifications carry beyond their name, key and time. */
interface Extra {
  pos?: StreamPosition;
  migrated?: boolean;
}

/**
 * The notifications a node watcher received and has not applied yet, in arrival order (issue
 * #19). Behind a backlog (a drain: Redis delivers faster than the event loop applies) this holds
 * hundreds of thousands of them. An object and a Buffer view per notification made the backlog
 * most of the V8 heap, every one of them copied by two scavenges and promoted before its turn.
 * Here a notification is a few slots of parallel arrays instead: its event name (a string
 * EventNames made once), the socket chunk its key is in and where (the chunk is shared by the
 * ~600 notifications it carries), its arrival time. Its Item, the object the rest of the pipeline
 * reads, is made when it is taken, a chunk at a time, and dies young.
 */
export class NotificationQueue implements PendingKeys {
  #events: (string | undefined)[] = [];
  #chunks: (Buffer | undefined)[] = [];
  #extras: (Extra | undefined)[] = [];
  #offsets = new Int32Array(0);
  #lengths = new Int32Array(0);
  #ats = new Float64Array(0);
  /**
   * keyBits() of each key once asked (-1: not yet). Behind a backlog discardSuperseded reads the
   * same pending keys again for every chunk taken (20 000 of them per 5 000 taken): hashed once.
   */
  #bits = new Int32Array(0);
  /** 1 where the event may change a key's expiry (changesKey), judged once at push. */
  #changes = new Uint8Array(0);
  /** The last event pushed and its changesKey (events come as a few interned names). */
  #lastEvent = '';
  #lastChanges = 0;
  /** Slots (a power of two); the queue runs around them from #head. */
  #capacity = 0;
  #head = 0;
  #size = 0;

  constructor() {
    this.#allocate(INITIAL_CAPACITY);
  }

  get length(): number {
    return this.#size;
  }

  /** Slots it holds now (what it costs in memory, ~40 bytes each; for tests). */
  get slots(): number {
    return this.#capacity;
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
    if (this.#size === this.#capacity) this.#grow();
    const i = (this.#head + this.#size) & (this.#capacity - 1);
    this.#events[i] = event;
    this.#chunks[i] = chunk;
    this.#offsets[i] = start;
    this.#lengths[i] = end - start;
    this.#ats[i] = at;
    this.#bits[i] = -1;
    if (event !== this.#lastEvent) {
      this.#lastEvent = event;
      this.#lastChanges = changesKey(event) ? 1 : 0;
    }
    this.#changes[i] = this.#lastChanges;
    if (pos !== undefined || migrated !== undefined) {
      const extra: Extra = {};
      if (pos !== undefined) extra.pos = pos;
      if (migrated !== undefined) extra.migrated = migrated;
      this.#extras[i] = extra;
    }
    this.#size += 1;
  }

  /** The oldest `n` notifications (fewer when it holds fewer) as Items, removed from the queue. */
  take(n: number): Item[] {
    const count = Math.min(n, this.#size);
    const out: Item[] = new Array<Item>(count);
    const mask = this.#capacity - 1;
    for (let j = 0; j < count; j++) {
      const i = (this.#head + j) & mask;
      const chunk = this.#chunks[i] as Buffer;
      const start = this.#offsets[i] as number;
      const item: Item = {
        event: this.#events[i] as string,
        key: chunk.subarray(start, start + (this.#lengths[i] as number)),
        at: this.#ats[i] as number,
      };
      const extra = this.#extras[i];
      if (extra !== undefined) {
        if (extra.migrated !== undefined) item.migrated = extra.migrated;
        if (extra.pos !== undefined) item.pos = extra.pos;
        this.#extras[i] = undefined;
      }
      // Released here, not when overwritten: a chunk must not outlive its last notification.
      this.#events[i] = undefined;
      this.#chunks[i] = undefined;
      out[j] = item;
    }
    this.#head = (this.#head + count) & mask;
    this.#size -= count;
    if (this.#size === 0) this.#head = 0;
    // After a burst: down to twice what is left once it is a quarter of the slots or less.
    if (this.#capacity > SHRINK_ABOVE && this.#size <= this.#capacity / 4) {
      let capacity = INITIAL_CAPACITY;
      while (capacity < this.#size * 2) capacity *= 2;
      this.#resize(capacity);
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
    const oldestAt = dropped > 0 ? (this.#ats[this.#head] as number) : NaN;
    if (each) {
      for (let j = 0; j < dropped; j++) {
        const i = this.#slot(j);
        const start = this.#offsets[i] as number;
        each(
          this.#events[i] as string,
          this.#chunks[i] as Buffer,
          start,
          start + (this.#lengths[i] as number),
          this.#bits[i] as number,
        );
      }
    }
    this.#size = 0;
    this.#head = 0;
    this.#allocate(INITIAL_CAPACITY);
    return { dropped, oldestAt };
  }

  // PendingKeys: what discardSuperseded reads of the notifications still waiting, by index from
  // the oldest, without making their Items.

  event(j: number): string {
    return this.#events[this.#slot(j)] as string;
  }

  keyLength(j: number): number {
    return this.#lengths[this.#slot(j)] as number;
  }

  keyBits(j: number): number {
    const i = this.#slot(j);
    const cached = this.#bits[i] as number;
    if (cached >= 0) return cached;
    const start = this.#offsets[i] as number;
    const h = keyBits(this.#chunks[i] as Buffer, start, start + (this.#lengths[i] as number));
    this.#bits[i] = h;
    return h;
  }

  keyString(j: number): string {
    const i = this.#slot(j);
    const start = this.#offsets[i] as number;
    return (this.#chunks[i] as Buffer).toString(
      'latin1',
      start,
      start + (this.#lengths[i] as number),
    );
  }

  candidates(n: number, maxKeyBytes: number, looked: Int32Array): number[] {
    const out: number[] = [];
    const count = Math.min(n, this.#size);
    const mask = this.#capacity - 1;
    const changes = this.#changes;
    const lengths = this.#lengths;
    const bits = this.#bits;
    for (let j = 0; j < count; j++) {
      const i = (this.#head + j) & mask;
      if (changes[i] === 0 || (lengths[i] as number) > maxKeyBytes) continue;
      let h = bits[i] as number;
      if (h < 0) {
        const start = this.#offsets[i] as number;
        h = keyBits(this.#chunks[i] as Buffer, start, start + (lengths[i] as number));
        bits[i] = h;
      }
      if (hasKeyBit(looked, h)) out.push(j);
    }
    return out;
  }

  #slot(j: number): number {
    return (this.#head + j) & (this.#capacity - 1);
  }

  #grow(): void {
    this.#resize(this.#capacity * 2);
  }

  /** Moves what is queued, in order, into `capacity` new slots (at least #size). */
  #resize(capacity: number): void {
    const old = {
      events: this.#events,
      chunks: this.#chunks,
      extras: this.#extras,
      offsets: this.#offsets,
      lengths: this.#lengths,
      ats: this.#ats,
      bits: this.#bits,
      changes: this.#changes,
      head: this.#head,
      mask: this.#capacity - 1,
    };
    const size = this.#size;
    this.#allocate(capacity);
    for (let j = 0; j < size; j++) {
      const i = (old.head + j) & old.mask;
      this.#events[j] = old.events[i];
      this.#chunks[j] = old.chunks[i];
      this.#extras[j] = old.extras[i];
      this.#offsets[j] = old.offsets[i] as number;
      this.#lengths[j] = old.lengths[i] as number;
      this.#ats[j] = old.ats[i] as number;
      this.#bits[j] = old.bits[i] as number;
      this.#changes[j] = old.changes[i] as number;
    }
    this.#head = 0;
  }

  #allocate(capacity: number): void {
    this.#capacity = capacity;
    this.#events = new Array<string | undefined>(capacity).fill(undefined);
    this.#chunks = new Array<Buffer | undefined>(capacity).fill(undefined);
    this.#extras = new Array<Extra | undefined>(capacity).fill(undefined);
    this.#offsets = new Int32Array(capacity);
    this.#lengths = new Int32Array(capacity);
    this.#ats = new Float64Array(capacity);
    this.#bits = new Int32Array(capacity);
    this.#changes = new Uint8Array(capacity);
  }
}
