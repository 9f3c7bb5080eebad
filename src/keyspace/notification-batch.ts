import type { StreamPosition } from '../domain/position.js';
import type { InventoryEntry } from './inventory.js';
import type { ClassifiedKey } from './token-rules.js';

/** One keyevent notification as received: event name, key bytes, arrival time (our clock). */
export interface Item {
  event: string;
  key: Buffer;
  at: number;
  /** Cluster slot migration: the token only moved between nodes. */
  migrated?: boolean;
  /** The key as a latin1 string, once converted (pendingItems() may convert pending items early). */
  k?: string;
  /** Coordination on: its position in the node's stream (absent: unknown, or coordination off). */
  pos?: StreamPosition;
}

/** A notification of a key that matched a token rule (or the `rename_to` side of any rename). */
export interface Prepared extends Item {
  c: ClassifiedKey;
  /** The key as a latin1 string. */
  k: string;
  /**
   * PEXPIRETIME reply: -2 gone, -1 no TTL, else unix ms (Redis clock). NaN when unknown: not
   * looked up because a later event in the same batch changed the key again, or the look-up
   * failed. The look-up runs after the events, so it only describes the key's LAST state.
   */
  expireAt?: number;
  /** A write immediately followed by an `expire` of the same key (SET EX, HSET+EXPIRE in MULTI). */
  withTtl?: boolean;
  /** That `expire`: already covered by the write record. */
  absorbed?: boolean;
  /** An `expired` delivered as part of a lazy-expiry flush (see markExpiryFlush): backlog. */
  flush?: boolean;
}

/** The inventory as the translation reads it: look-ups only, never a write. */
export interface InventoryView {
  /** `digest`: ClassifiedKey.digest when known (Inventory.get). */
  get(kind: string, fingerprint: string, digest?: string): InventoryEntry | undefined;
}

/** The `rename_to` side of a rename that is not a token: kept so its `rename_from` token ends. */
export const NOT_A_TOKEN: ClassifiedKey = Object.freeze({
  kind: '',
  fingerprint: '',
  keyAttrs: Object.freeze({}) as Record<string, string>,
});

/** Pending notifications discardSuperseded() checks for a later change of a looked-up key. */
export const MAX_PENDING_CHECK = 20_000;

/** Events whose handling needs the key's expiry. */
const NEEDS_EXPIRY = new Set(['set', 'expire', 'hset', 'rename_to', 'restore', 'copy_to']);
/** Events that write a token. */
export const WRITES: ReadonlySet<string> = new Set(['set', 'restore', 'copy_to']);
/** Events after which a key's expiry may differ (so an earlier look-up would be stale). */
const CHANGES_KEY = new Set([
  ...NEEDS_EXPIRY,
  'persist',
  'del',
  'expired',
  'evicted',
  'rename_from',
]);

/** A write whose command may also emit `expire` for the same key right after it. */
function writesWithTtl(event: string): boolean {
  return WRITES.has(event) || event === 'hset';
}

/**
 * Classify a batch against the token rules: keys over `maxKeyBytes` or matching no rule are
 * counted as `unmatched`, not kept, except a `rename_to` (a token renamed to a non-token key
 * ends there). Then pairs writes with their `expire` (see pairWrites). Mutates the items.
 */
export function classifyBatch(
  items: Item[],
  classify: (key: string) => ClassifiedKey | undefined,
  maxKeyBytes: number,
): { prepared: Prepared[]; unmatched: number } {
  const prepared: Prepared[] = [];
  let unmatched = 0;
  for (const it of items) {
    if (it.key.length > maxKeyBytes) {
      unmatched += 1;
      continue;
    }
    const k = it.k ?? it.key.toString('latin1');
    const c = classify(k);
    if (c) prepared.push(Object.assign(it, { c, k }));
    else if (it.event !== 'rename_to') unmatched += 1;
    else prepared.push(Object.assign(it, { c: NOT_A_TOKEN, k }));
  }
  pairWrites(prepared);
  return { prepared, unmatched };
}

/**
 * SET EX emits `set` then `expire` back to back in one command, and Redis runs one command at a
 * time, so the two are adjacent in the notification stream whatever the socket or event loop
 * did to their arrival times (the soak saw 3-8 ms between them under load). An `expire` right
 * after a write of the same key in the batch is folded into the write: its TTL is what the
 * write's PEXPIRETIME look-up says (that look-up runs after the command, so it sees the TTL).
 * A pair split between batches needs no pairing: the write's own look-up saw the TTL, and the
 * `expire` then finds the inventory already holding that exact due (see translate()). A separate
 * EXPIRE folded in this way only makes the write's record carry the TTL the key had a moment
 * later: no finding rests on arrival timing.
 */
export function pairWrites(items: Prepared[]): void {
  let prev: string | undefined;
  for (let i = 0; i < items.length; i++) {
    const p = items[i] as Prepared;
    if (p.event === 'expire' && prev === p.k) {
      p.absorbed = true;
      (items[i - 1] as Prepared).withTtl = true;
      prev = undefined;
      continue;
    }
    prev = writesWithTtl(p.event) ? p.k : undefined;
  }
}

/**
 * Which notifications need a PEXPIRETIME look-up: only the last change of each key in the batch,
 * because the reply describes the key after the whole batch. Earlier ones of the same key get
 * NaN (unknown) at once. Returns the notifications to look up, in batch order.
 */
export function planLookup(prepared: readonly Prepared[]): Prepared[] {
  const last = new Map<string, number>();
  prepared.forEach((p, i) => {
    if (CHANGES_KEY.has(p.event) && !p.absorbed) last.set(p.k, i);
  });
  const need: Prepared[] = [];
  prepared.forEach((p, i) => {
    if (p.c.kind === '' || p.absorbed || !NEEDS_EXPIRY.has(p.event)) return;
    if (last.get(p.k) === i) need.push(p);
    else p.expireAt = Number.NaN;
  });
  return need;
}

/** Store the look-up's replies (undefined: the look-up failed; NaN for a missing reply). */
export function recordExpiries(need: readonly Prepared[], replies: readonly number[] | undefined) {
  need.forEach((p, i) => {
    const r = replies?.[i];
    p.expireAt = typeof r === 'number' ? r : Number.NaN;
  });
}

/**
 * The notifications received after a batch was cut, as discardSuperseded reads them (by index,
 * oldest first): the watcher's NotificationQueue, or pendingItems() of an array.
 */
export interface PendingKeys {
  readonly length: number;
  event(i: number): string;
  keyLength(i: number): number;
  /** keyBits() of the key's bytes. */
  keyBits(i: number): number;
  /** The key as a latin1 string. */
  keyString(i: number): string;
  /**
   * The indices below `n`, ascending, of the notifications that may have changed a looked-up
   * key: an event after which a key's expiry may differ (changesKey), a key of at most
   * `maxKeyBytes` whose keyBits bit is set in `looked` (a bitset of 1 << 18 bits).
   */
  candidates(n: number, maxKeyBytes: number, looked: Int32Array): number[];
}

/** Whether a key's expiry may differ after `event` (so an earlier look-up of it would be stale). */
export function changesKey(event: string): boolean {
  return CHANGES_KEY.has(event);
}

/** Whether bit `h` (a keyBits value) of `set` is set. */
export function hasKeyBit(set: Int32Array, h: number): boolean {
  return ((set[h >>> 5] as number) & (1 << (h & 31))) !== 0;
}

/** Items as PendingKeys (tests, and any caller holding an array); an Item's `k`, when set, is its key as latin1. */
export function pendingItems(items: readonly Item[]): PendingKeys {
  return {
    length: items.length,
    event: (i) => (items[i] as Item).event,
    keyLength: (i) => (items[i] as Item).key.length,
    keyBits: (i) => {
      const key = (items[i] as Item).key;
      return keyBits(key, 0, key.length);
    },
    keyString: (i) => {
      const it = items[i] as Item;
      return (it.k ??= it.key.toString('latin1'));
    },
    candidates: (n, maxKeyBytes, looked) => {
      const out: number[] = [];
      for (let i = 0; i < Math.min(n, items.length); i++) {
        const { event, key } = items[i] as Item;
        if (!changesKey(event) || key.length > maxKeyBytes) continue;
        if (hasKeyBit(looked, keyBits(key, 0, key.length))) out.push(i);
      }
      return out;
    },
  };
}

/**
 * The reply describes the key when the look-up ran, which may be after a later command changed
 * it again. Redis publishes a command's notifications before it answers any later command, so
 * once the reply is in (and the sockets were read once more) such a later change shows as a
 * notification of the same key in `later` (received after this batch was cut). Then the look-up
 * is not this event's: its expiry is unknown (NaN), and the later event records what it did.
 * The one exception is the `expire` a write's own SET EX emits right after it (the pair split
 * between batches, `tail` being the batch's last notification): that TTL is the write's.
 */
export function discardSuperseded(
  need: readonly Prepared[],
  later: PendingKeys,
  tail: Prepared | undefined,
  maxKeyBytes: number,
): void {
  if (need.length === 0) return;
  const looked = new Map<string, Prepared>();
  if (NEED_BITS.length < need.length) NEED_BITS = new Int32Array(need.length * 2);
  const needBits = NEED_BITS;
  try {
    for (let j = 0; j < need.length; j++) {
      const p = need[j] as Prepared;
      looked.set(p.k, p);
      const h = keyBits(p.key, 0, p.key.length);
      needBits[j] = h;
      setKeyBit(LOOKED_BITS, h);
    }
    // Bounded: behind a backlog this runs once per chunk. Past the bound a later change goes
    // unnoticed, and the event records the key's later state: never a TTL Redis did not state.
    // Most pending keys were not looked up: their bytes' bit rules them out without a string.
    const n = Math.min(later.length, MAX_PENDING_CHECK);
    for (const i of later.candidates(n, maxKeyBytes, LOOKED_BITS)) {
      const event = later.event(i);
      const p = looked.get(later.keyString(i));
      if (!p || Number.isNaN(p.expireAt)) continue;
      // SET EX split between batches: its `expire` opens the next batch. Same command, same TTL.
      const ownExpire = i === 0 && event === 'expire' && p === tail && writesWithTtl(p.event);
      if (!ownExpire) p.expireAt = Number.NaN;
    }
  } finally {
    // Every word a looked-up key set (after a throw above, the stale entries past it name words
    // that are 0 already).
    for (let j = 0; j < need.length; j++) LOOKED_BITS[(needBits[j] as number) >>> 5] = 0;
  }
}

/** The looked-up keys' keyBits, for clearing LOOKED_BITS after (grown on demand, reused). */
let NEED_BITS = new Int32Array(8192);

/**
 * The looked-up keys of the batch discardSuperseded checks, as one bit each (a key's FNV-1a
 * hash of its bytes, LOOKED_BITS_LOG2 bits wide): a pending key whose bit is clear was not
 * looked up, and needs no latin1 string nor map look-up. Cleared after each call. 32 KiB, so a
 * chunk of 5 000 look-ups leaves ~2 % of the other keys to check exactly.
 */
const LOOKED_BITS_LOG2 = 18;
const LOOKED_BITS = new Int32Array(1 << (LOOKED_BITS_LOG2 - 5));

/** Sets bit `h` (a keyBits value) of `set`, a bitset of 1 << LOOKED_BITS_LOG2 bits. */
function setKeyBit(set: Int32Array, h: number): void {
  set[h >>> 5] = (set[h >>> 5] as number) | (1 << (h & 31));
}

/** FNV-1a (32 bits) of `buf[start, end)`, folded to LOOKED_BITS_LOG2 bits. */
export function keyBits(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ (buf[i] as number), 0x01000193);
  return (h ^ (h >>> LOOKED_BITS_LOG2)) & ((1 << LOOKED_BITS_LOG2) - 1);
}

/**
 * The look-up replies of the batch that was in flight when notifications after it were dropped
 * (a backlog overflow): Redis ran the look-up after them, so the reply for a key they changed may
 * show that change (a later PEXPIRE), which discardSuperseded can no longer see. Those replies
 * (`hit`: the keys, as latin1, of the batch's tokens that a dropped notification named) become
 * unknown, as for a superseded reply; the reconciliation of the hole records what Redis has.
 */
export function discardDropped(prepared: readonly Prepared[], hit: ReadonlySet<string>): void {
  for (const p of prepared) {
    // Only replies (a number): what was not looked up keeps what it had.
    if (p.expireAt === undefined || Number.isNaN(p.expireAt) || p.c.kind === '') continue;
    if (hit.has(p.k)) p.expireAt = Number.NaN;
  }
}

/**
 * The batch in flight (taken, its look-up not applied yet), for an overflow to find which of its
 * tokens the dropped notifications named: keyBits of its token keys, then the exact keys.
 */
export class InFlightKeys {
  readonly #prepared: readonly Prepared[];
  #bits: Int32Array | undefined;
  #keys: Set<string> | undefined;
  /** Longest token key of the batch: a longer dropped key is none of them (never hashed). */
  #maxLength = 0;
  /** No dropped notification seen yet: the next is the one right after the batch. */
  #first = true;
  /** Keys of the batch's tokens that a dropped notification named. */
  readonly hit = new Set<string>();

  /**
   * `tail`: the batch's last notification when it is a token's (its own `expire` may come right
   * after the batch), else undefined.
   */
  constructor(
    prepared: readonly Prepared[],
    readonly tail: Prepared | undefined,
  ) {
    this.#prepared = prepared;
  }

  /**
   * The write whose own `expire` may head what is still queued: the tail, unless a notification
   * was dropped since the batch was taken (what heads the queue then came after a hole).
   */
  ownExpireOf(): Prepared | undefined {
    return this.#first ? this.tail : undefined;
  }

  /**
   * A dropped `event` of `key[start, end)` (`bits`: its keyBits when known, else negative). As
   * discardSuperseded: only an event that changes the key's expiry counts, and not the `expire`
   * right after the batch of a write at its end (SET EX split by the cut: the write's own TTL).
   */
  dropped(event: string, key: Buffer, start: number, end: number, bits = -1): void {
    const first = this.#first;
    this.#first = false;
    if (!CHANGES_KEY.has(event)) return;
    if (!this.#bits) this.#index();
    if (end - start > this.#maxLength) return;
    const h = bits >= 0 ? bits : keyBits(key, start, end);
    if (!hasKeyBit(this.#bits as Int32Array, h)) return;
    const k = key.toString('latin1', start, end);
    if (!(this.#keys as Set<string>).has(k)) return;
    const tail = this.tail;
    if (first && event === 'expire' && tail?.k === k && writesWithTtl(tail.event)) return;
    this.hit.add(k);
  }

  /** Built at the first overflow only: no cost for a batch nothing is dropped behind. */
  #index(): void {
    this.#bits = new Int32Array(1 << (LOOKED_BITS_LOG2 - 5));
    this.#keys = new Set();
    for (const p of this.#prepared) {
      if (p.c.kind === '') continue;
      this.#keys.add(p.k);
      this.#maxLength = Math.max(this.#maxLength, p.key.length);
      const h = keyBits(p.key, 0, p.key.length);
      setKeyBit(this.#bits, h);
    }
  }
}

/** What markExpiryFlush needs to know of the node and its clock. */
export interface FlushContext {
  nodeIndex: number;
  /** Redis clock minus ours (ms). */
  offsetMs: number;
  /** An `expired` this long after its due time is expiry backlog, not churn (ms). */
  expiryBacklogToleranceMs: number;
}

/**
 * A lazy-expiry flush (anyone's SCAN, KEYS, a burst of reads) makes Redis delete at once every
 * past-due key it touches: those due long ago (backlog by their lag) and, mixed in with them,
 * those due less than the tolerance ago, which their lag alone cannot tell from an expiration
 * on time. They would add expiry rate x tolerance events to one second, which is what opened
 * churn_spike at every outside SCAN (issue #16.3). So an `expired` is judged with its batch:
 * when at least as many of the batch's expirations are backlog as on time, Redis is catching
 * up lazily rather than expiring on time, and all of them are backlog. A Redis that expires on
 * time delivers batches with no backlog, whose expirations stay churn. Reads the inventory as it
 * was before the batch.
 */
export function markExpiryFlush(
  prepared: readonly Prepared[],
  inventory: InventoryView,
  ctx: FlushContext,
): void {
  let late = 0;
  let onTime = 0;
  for (const p of prepared) {
    if (p.event !== 'expired' || p.migrated) continue;
    const e = inventory.get(p.c.kind, p.c.fingerprint, p.c.digest);
    if (!e || e.node !== ctx.nodeIndex || e.due === null || Number.isNaN(e.due)) continue;
    if (p.at - (e.due - ctx.offsetMs) > ctx.expiryBacklogToleranceMs) late += 1;
    else onTime += 1;
  }
  if (late === 0 || late < onTime) return;
  for (const p of prepared) if (p.event === 'expired') p.flush = true;
}
