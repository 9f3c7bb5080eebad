import { parsePosition as parseStreamPosition } from '../domain/position.js';
import type { LedgerStore } from './store/ledger-store.js';
import type { OwnershipRow } from './store/ownership-reads.js';

/**
 * The ownership records of a coordinated instance (issue #20, docs/ha-evidence.md), parsed from
 * their attrs: who owned which watched node under which fencing epoch, and the blind windows a
 * `keyspace.gap` states. A record whose attrs do not have the shape is skipped (and counted):
 * it can claim nothing.
 */

/** `ownership.acquired`: `instance` became the owner of `node` under `epoch`. */
export interface Acquired {
  type: 'acquired';
  ledger: string;
  seq: number;
  time: number;
  node: string;
  epoch: number;
  instance: string | null;
  /** The epoch (and instance) this one took over from; null for the first owner ever. */
  previous: { epoch: number; instance: string | null } | null;
  /** The last position the previous owner committed ("e.n.k"); replay started after it. */
  from: string | null;
  replayed: number | null;
}

/** `ownership.released` (graceful) or `ownership.fenced` (lease lost): `epoch` ended. */
export interface Ended {
  type: 'released' | 'fenced';
  ledger: string;
  seq: number;
  time: number;
  node: string;
  epoch: number;
  instance: string | null;
  /** Released only: the last position this owner recorded. */
  through: string | null;
  reason: string | null;
}

/** `keyspace.gap`: `node` was not watched (or not recorded) in [start, end]. */
export interface Gap {
  type: 'gap';
  ledger: string;
  seq: number;
  node: string;
  start: number;
  end: number;
}

export type OwnershipRecord = Acquired | Ended | Gap;

/** One ledger's ownership evidence. */
export interface LedgerOwnership {
  /** The ledger id (meta). */
  ledger: string;
  /** How the user named it (the file path). */
  label: string;
  /** Observed time of the newest record; null when empty. */
  lastTime: number | null;
  records: OwnershipRecord[];
  /** Records of these types whose attrs lack the fields above. */
  malformed: number;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const int = (v: unknown): number | null =>
  typeof v === 'number' && Number.isSafeInteger(v) ? v : null;

/** Parses one row; undefined when its attrs do not have the shape of its type. */
export function parseOwnershipRow(ledger: string, row: OwnershipRow): OwnershipRecord | undefined {
  let a: Record<string, unknown>;
  try {
    const parsed = JSON.parse(row.attrs) as unknown;
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    a = parsed as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const node = str(a.node);
  if (node === null) return undefined;
  if (row.type === 'keyspace.gap') {
    const start = typeof a.start === 'number' ? a.start : NaN;
    const end = typeof a.end === 'number' ? a.end : NaN;
    if (!(start <= end)) return undefined;
    return { type: 'gap', ledger, seq: row.seq, node, start, end };
  }
  const epoch = int(a.epoch);
  if (epoch === null || epoch < 1) return undefined;
  const instance = str(a.instance);
  if (row.type === 'ownership.acquired') {
    let previous: Acquired['previous'] = null;
    if (a.previous !== null && a.previous !== undefined) {
      const p = a.previous as Record<string, unknown>;
      const pe = typeof p === 'object' ? int(p.epoch) : null;
      if (pe === null) return undefined;
      previous = { epoch: pe, instance: str(p.instance) };
    }
    const from = str(a.from);
    if (from !== null && parsePosition(from) === undefined) return undefined;
    return {
      type: 'acquired',
      ledger,
      seq: row.seq,
      time: row.time,
      node,
      epoch,
      instance,
      previous,
      from,
      replayed: int(a.replayed),
    };
  }
  if (row.type === 'ownership.released' || row.type === 'ownership.fenced') {
    return {
      type: row.type === 'ownership.released' ? 'released' : 'fenced',
      ledger,
      seq: row.seq,
      time: row.time,
      node,
      epoch,
      instance,
      through: str(a.through),
      reason: str(a.reason),
    };
  }
  return undefined;
}

/** Reads and parses one ledger's ownership evidence through its store. */
export function readOwnership(store: LedgerStore, label: string): LedgerOwnership {
  const ledger = store.ledgerId();
  const records: OwnershipRecord[] = [];
  let malformed = 0;
  for (const row of store.ownershipRows()) {
    const r = parseOwnershipRow(ledger, row);
    if (r) records.push(r);
    else malformed += 1;
  }
  return { ledger, label, lastTime: store.lastRecordTime(), records, malformed };
}

/**
 * A stream position as the records carry it (`"e.n.k"` or `"e.n.k.i"`, src/domain/position.ts),
 * as [epoch, marker, offset, index?]. Parsed by the one parser the serving side uses, so the
 * evidence accepts exactly the positions instances write (a release's `through` ends at offset -1,
 * just before a marker).
 */
export type Position = readonly number[];

export function parsePosition(s: string): Position | undefined {
  const p = parseStreamPosition(s);
  if (p === undefined) return undefined;
  const out = [p.epoch, p.marker, p.offset];
  if (p.index !== undefined) out.push(p.index);
  return out;
}

/**
 * Order of the notifications two positions name (epoch, marker, offset; the token index is
 * ignored: every event of one notification sits at the same place in the stream).
 */
export function compareStreamPlace(a: Position, b: Position): number {
  for (let i = 0; i < 3; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/**
 * Whether a token record at `pos` lies after a replay point `cut` (an acquisition's `from`): a
 * later notification, or the same one when the cut names an event index (a commit may end inside
 * one notification's events) and `pos` has a greater index. A cut without an index covers its
 * whole notification.
 */
export function afterCut(pos: Position, cut: Position): boolean {
  const c = compareStreamPlace(pos, cut);
  if (c !== 0) return c > 0;
  const ci = cut[3];
  return ci !== undefined && (pos[3] ?? -1) > ci;
}
