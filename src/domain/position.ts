/**
 * Stream positions (issue #20): where a notification sits in one Redis node's pub/sub stream,
 * named the same way by every instance subscribed to that node, with no clock.
 *
 * Redis publishes one node's notifications to every subscriber in the same order. The owner of a
 * node writes marker keys now and then (`<prefix>marker:<epoch>:<n>`, see
 * src/keyspace/stream-position.ts); each instance names a notification by the last marker it saw
 * (the "base") and the number of notifications since it (the offset; the marker's own `set` is
 * offset 0). Positions compare lexicographically on (epoch, marker, offset).
 *
 * Pure: no Redis, no clock.
 */

/** Where a notification sits in a node's stream: the base marker (epoch, n) and the offset after it. */
export interface StreamPosition {
  readonly epoch: number;
  readonly marker: number;
  /** Notifications since the marker's own `set` (offset 0); -1 only in {@link beforeMarker}. */
  readonly offset: number;
}

/** A parsed `"e.n.k"` or `"e.n.k.i"`. */
export interface ParsedPosition extends StreamPosition {
  /** The token event's index among those its notification produced (0-based), when given. */
  readonly index?: number;
}

/**
 * `"e.n.k"`, or `"e.n.k.i"` with the index of a token event among those one notification produced
 * (the `pos` attribute of a token record; `node + "/" + pos` is its dedup key across ledgers).
 */
export function formatPosition(p: StreamPosition, index?: number): string {
  const base = `${p.epoch}.${p.marker}.${p.offset}`;
  return index === undefined ? base : `${base}.${index}`;
}

const INT = /^(?:0|[1-9]\d{0,14})$/;

/**
 * Parses what formatPosition wrote. Undefined for anything else (wrong number of parts, signs,
 * leading zeros, non-integers, integers past 15 digits), never a guess. The offset may be `-1`
 * (a {@link beforeMarker} position); epoch, marker and index are non-negative.
 */
export function parsePosition(s: string): ParsedPosition | undefined {
  const parts = s.split('.');
  if (parts.length !== 3 && parts.length !== 4) return undefined;
  const [e, n, k, i] = parts as [string, string, string, string | undefined];
  if (!INT.test(e) || !INT.test(n) || (k !== '-1' && !INT.test(k))) return undefined;
  const p = { epoch: Number(e), marker: Number(n), offset: Number(k) };
  if (i === undefined) return p;
  if (!INT.test(i)) return undefined;
  return { ...p, index: Number(i) };
}

/** Negative, zero or positive as `a` is before, at or after `b` (epoch, then marker, then offset). */
export function comparePosition(a: StreamPosition, b: StreamPosition): number {
  return a.epoch - b.epoch || a.marker - b.marker || a.offset - b.offset;
}

/**
 * The position just before marker `(epoch, marker)`: greater than every position of an earlier
 * base, smaller than every position at or after the marker (offset -1; the marker itself is 0).
 * A graceful handover commits through here: the next owner replays from the marker on.
 */
export function beforeMarker(epoch: number, marker: number): StreamPosition {
  return { epoch, marker, offset: -1 };
}
