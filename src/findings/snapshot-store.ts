import type { Ledger } from '../audit/ledger.js';
import type { AuditRecord } from '../audit/record.js';
import { isTokenwatchError } from '../errors.js';
import {
  assembleSnapshot,
  invalid,
  SNAPSHOT_PART_RECORD,
  SNAPSHOT_RECORD,
} from './snapshot-parts.js';

/** Incomplete snapshots passed over, newest first, before restore gives up and starts empty. */
const MAX_INCOMPLETE = 5;
/** More parts than this is not a snapshot this version wrote (20 000 entries per list). */
const MAX_PARTS = 100_000;

export interface FoundSnapshot {
  /** The head record (`correlator.snapshot`): seq, throughSeq. */
  head: AuditRecord;
  /** The state it and its parts stand for, unchecked (Correlator.fromSnapshot checks it). */
  state: unknown;
}

export interface SnapshotSearch {
  found: FoundSnapshot | undefined;
  /** Newer snapshots passed over because a part was missing or did not fit, with why. */
  incomplete: string[];
}

/**
 * The newest complete snapshot in the ledger. A head written as one record (before snapshots
 * were split) is complete by itself; a split one only with every part it counts, all of the
 * same snapshot id and throughSeq. A snapshot lacking a part (the ledger dropped it under
 * back-pressure, or it was tampered with) is passed over for the one before it.
 */
export function findSnapshot(ledger: Pick<Ledger, 'lastOfType' | 'list'>): SnapshotSearch {
  const incomplete: string[] = [];
  for (let before: number | undefined; incomplete.length < MAX_INCOMPLETE;) {
    const head = ledger.lastOfType(SNAPSHOT_RECORD, before);
    if (!head) break;
    if (head.attrs.parts === undefined)
      return { found: { head, state: head.attrs.state }, incomplete };
    try {
      return { found: { head, state: gather(ledger, head) }, incomplete };
    } catch (err) {
      if (!isTokenwatchError(err)) throw err;
      incomplete.push(`seq ${head.seq}: ${err.message}`);
      before = head.seq;
    }
  }
  return { found: undefined, incomplete };
}

/** @throws TokenwatchError ERR_SNAPSHOT_INVALID when a part is missing or does not fit. */
function gather(ledger: Pick<Ledger, 'list'>, head: AuditRecord): unknown {
  const { snapshotId: id, parts: n, throughSeq } = head.attrs;
  if (typeof id !== 'string') invalid('snapshotId', 'must be a string');
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_PARTS)
    invalid('parts', `must be an integer from 0 to ${MAX_PARTS}`);
  const lists = new Map<number, unknown>();
  // Every part carries the head's time (the instant of capture) and precedes the head.
  const records =
    n === 0
      ? []
      : ledger.list({ type: SNAPSHOT_PART_RECORD, since: head.time, until: head.time + 1 });
  for (const r of records) {
    if (r.seq > head.seq || r.attrs.snapshotId !== id) continue;
    const i = r.attrs.part;
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= n || lists.has(i))
      invalid(`part ${String(i)}`, `is not one of the ${n} parts`);
    if (r.attrs.throughSeq !== throughSeq)
      invalid(`part ${i}`, `throughSeq ${String(r.attrs.throughSeq)} is not the head's`);
    lists.set(i, r.attrs.lists);
  }
  const ordered: unknown[] = [];
  for (let i = 0; i < n; i++) {
    if (!lists.has(i)) invalid('parts', `part ${i} of ${n} is missing`);
    ordered.push(lists.get(i));
  }
  return assembleSnapshot(head.attrs.state, head.attrs.sections ?? {}, ordered);
}
