import type { Redis } from 'ioredis';
import type { StreamPosition } from '../domain/position.js';
import { MARKER_TAG_CHARS, type NodeMarkerAuth } from './marker-auth.js';

/**
 * Stream positions on the keyspace side (issue #20, docs/ha.md): recognising the owner's marker
 * keys in a node's notification stream, and writing them.
 *
 * A marker is `SET <prefix>marker:<epoch>:<n>:<mac> 1 PX <ttl>` (Cluster:
 * `<prefix>marker:{slot-tag}:<epoch>:<n>:<mac>`, the slot tag naming a slot the node serves; `mac`:
 * src/keyspace/marker-auth.ts). Its `set` notification reaches every subscriber of the node at the
 * same place in the stream (Redis publishes one node's notifications in one order to all of
 * them), so every instance counting from it names each later notification alike.
 */

/** Default `coordination.keyPrefix`. */
export const DEFAULT_KEY_PREFIX = 'tokenwatch:';
/** How long a marker key lives: long enough to be seen, short enough to leave no litter. */
export const MARKER_TTL_MS = 10_000;

/** The marker key for `(epoch, n)` with its `mac`, and the Cluster hash tag when given. */
export function markerKey(
  epoch: number,
  n: number,
  mac: string,
  tag?: string,
  keyPrefix = DEFAULT_KEY_PREFIX,
): string {
  return tag === undefined
    ? `${keyPrefix}marker:${epoch}:${n}:${mac}`
    : `${keyPrefix}marker:{${tag}}:${epoch}:${n}:${mac}`;
}

/**
 * Writes marker `(epoch, n)` on the node behind `commands` (that node's own connection: on a
 * Cluster, `tag` must name a slot it serves, else it answers MOVED and this rejects).
 * The caller (the node's owner) checks its lease deadline before calling.
 */
export async function writeMarker(
  commands: Redis,
  auth: NodeMarkerAuth,
  epoch: number,
  n: number,
  tag?: string,
  keyPrefix = DEFAULT_KEY_PREFIX,
  ttlMs = MARKER_TTL_MS,
): Promise<void> {
  await commands.set(markerKey(epoch, n, auth.tag(epoch, n), tag, keyPrefix), '1', 'PX', ttlMs);
}

/**
 * Why a `set` of a key under the marker prefix moved nothing: `malformed` (not
 * `<epoch>:<n>:<mac>`), `bad_mac` (a marker that would have moved the base, whose mac no
 * configured key made: forged, or written under a key this instance does not have); or why a
 * takeover did not believe the committed position it read: `committed_bad_mac`.
 */
export type MarkerRejection = 'malformed' | 'bad_mac' | 'committed_bad_mac';

export interface StreamPositionTrackerOptions {
  /** Checks a marker's mac (the node's markers: src/keyspace/marker-auth.ts). */
  auth: NodeMarkerAuth;
  /** `coordination.keyPrefix`; latin1 / ASCII. */
  keyPrefix?: string;
  /** A marker was refused (moved nothing); `key` is the notification's key (the marker name). */
  onRejected?: (reason: MarkerRejection, key: Buffer) => void;
  /**
   * Called by reset(): the stream had a hole (the subscriber disconnected), so whatever was kept
   * by position before it (the standby buffer) no longer joins up with what follows.
   */
  onReset?: () => void;
  /** Called when a marker moves the base (at the marker's arrival, before what follows it). */
  onBase?: (epoch: number, marker: number) => void;
}

const COLON = 0x3a;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const ZERO = 0x30;
/** Longest epoch / marker number accepted (digits): stays a safe integer. */
const MAX_DIGITS = 15;

/**
 * One node's position counter. Fed every notification of the node's keyevent subscription in
 * arrival order (token or not, markers' own `expire` / `expired` included), it returns each one's
 * position, or undefined until it has seen a marker since it started or was last reset.
 *
 * Only an authentic marker (its mac verifies, checked only for a marker that would move the base:
 * a createHmac per marker, never on other notifications) moves the base; a forged one is an
 * ordinary notification, reported to `onRejected`. Only a marker GREATER than the current base
 * (epoch, then n) moves the base: a marker from an
 * owner that was fenced (lower epoch) or a late, reordered write (lower n) is an ordinary
 * notification, and every instance decides that the same way. Not even the first marker seen is
 * taken when its epoch is below `ignoreEpochsBelow()`: an instance that joins between a stale
 * marker and the current owner's next one would otherwise count from the stale one while the
 * others count from the current base (a floor only ever turns positions unknown, never wrong).
 *
 * Hot path: a non-marker notification costs a string comparison of the event name (and, for a
 * `set`, a byte comparison of the key's prefix) and one small object; no string is made of its key.
 */
export class StreamPositionTracker {
  readonly #prefix: Buffer;
  readonly #onReset: (() => void) | undefined;
  readonly #onBase: ((epoch: number, marker: number) => void) | undefined;
  readonly #auth: NodeMarkerAuth;
  readonly #onRejected: ((reason: MarkerRejection, key: Buffer) => void) | undefined;
  #epoch = -1;
  #marker = -1;
  #offset = 0;
  #known = false;
  #floor = 0;
  #markers = 0;
  /** The greatest marker ever taken as a base (kept across reset()); -1: none. */
  #seenEpoch = -1;
  #seenMarker = -1;

  constructor(options: StreamPositionTrackerOptions) {
    this.#prefix = Buffer.from(`${options.keyPrefix ?? DEFAULT_KEY_PREFIX}marker:`, 'latin1');
    this.#auth = options.auth;
    this.#onRejected = options.onRejected;
    this.#onReset = options.onReset;
    this.#onBase = options.onBase;
  }

  /** The position of this notification (and the counter moves past it). */
  observe(event: string, key: Buffer): StreamPosition | undefined {
    if (event === 'set' && this.#markerSet(key)) {
      return { epoch: this.#epoch, marker: this.#marker, offset: 0 };
    }
    if (!this.#known) return undefined;
    this.#offset += 1;
    return { epoch: this.#epoch, marker: this.#marker, offset: this.#offset };
  }

  /** The base marker now (undefined: none seen since the start or the last reset). */
  get base(): { epoch: number; marker: number } | undefined {
    return this.#known ? { epoch: this.#epoch, marker: this.#marker } : undefined;
  }

  /** Markers that moved the base, since the start. */
  get markersSeen(): number {
    return this.#markers;
  }

  /**
   * The stream had a hole (subscriber disconnected: pub/sub keeps nothing for an absent client):
   * positions are unknown until the next marker greater than every one taken before (a marker
   * replayed into the hole is not taken). Calls `onReset`.
   */
  reset(): void {
    this.#known = false;
    this.#epoch = -1;
    this.#marker = -1;
    this.#offset = 0;
    this.#onReset?.();
  }

  /**
   * Markers of an epoch below this one are never taken as a base, not even as the first one
   * (see the class comment). Set it from the lease epochs the coordinator reads; it only rises.
   */
  ignoreEpochsBelow(epoch: number): void {
    if (epoch > this.#floor) this.#floor = epoch;
  }

  /** Whether `key` is a marker that moves the base (and then moves it). */
  #markerSet(key: Buffer): boolean {
    const pre = this.#prefix;
    const len = key.length;
    if (len <= pre.length) return false;
    for (let i = pre.length - 1; i >= 0; i--) if (key[i] !== pre[i]) return false;
    let i = pre.length;
    if (key[i] === OPEN) {
      // Cluster hash tag: `{tag}:` (the tag itself holds no `}`: keySlot() hashes up to the first).
      i += 1;
      while (i < len && key[i] !== CLOSE) i += 1;
      if (i + 1 >= len || key[i + 1] !== COLON) {
        this.#onRejected?.('malformed', key);
        return false;
      }
      i += 2;
    }
    let colon = i;
    while (colon < len && key[colon] !== COLON) colon += 1;
    let colon2 = colon + 1;
    while (colon2 < len && key[colon2] !== COLON) colon2 += 1;
    const epoch = decimal(key, i, colon);
    const n = decimal(key, colon + 1, colon2);
    if (epoch < 0 || n < 0 || len - colon2 - 1 !== MARKER_TAG_CHARS) {
      this.#onRejected?.('malformed', key);
      return false;
    }
    if (epoch < this.#floor) return false;
    // Not below or at the greatest marker ever taken, even after a reset: the owner's markers
    // only rise, so after a hole such a marker is a genuine one written again (replayed by
    // whoever can write the watched Redis, timed into the hole), which would make this instance
    // name the events until the next marker after an older segment than every other instance.
    if (epoch < this.#seenEpoch || (epoch === this.#seenEpoch && n <= this.#seenMarker))
      return false;
    // Only now (it would move the base): one HMAC per marker, never on the hot path.
    if (!this.#auth.verify(epoch, n, key.toString('latin1', colon2 + 1, len))) {
      this.#onRejected?.('bad_mac', key);
      return false;
    }
    this.#epoch = epoch;
    this.#marker = n;
    this.#offset = 0;
    this.#known = true;
    this.#seenEpoch = epoch;
    this.#seenMarker = n;
    this.#markers += 1;
    this.#onBase?.(epoch, n);
    return true;
  }
}

/**
 * The decimal number in `key[from, to)`; -1 when malformed (empty, a non-digit, a leading zero,
 * more than MAX_DIGITS digits).
 */
function decimal(key: Buffer, from: number, to: number): number {
  const n = to - from;
  if (n <= 0 || n > MAX_DIGITS || (n > 1 && key[from] === ZERO)) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const d = (key[i] as number) - ZERO;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}
