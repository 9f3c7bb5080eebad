import type Database from 'better-sqlite3';
import type { SeqAttrs } from './record-columns.js';

/**
 * Reads of the records that state who owned a watched Redis node when (issue #20): the
 * `ownership.*` records a coordinated instance writes and the `keyspace.gap` records that state
 * a blind window. Text rows only (only `token.*` records are stored compact; a compact blob
 * under one of these types is damage that verify reports).
 */

/** A record of one of the types below: seq, observed time, type and attrs JSON text. */
export interface OwnershipRow extends SeqAttrs {
  time: number;
  type: string;
}

const OWNERSHIP_SQL = `SELECT seq, time, type, attrs FROM records
  WHERE type IN ('ownership.acquired', 'ownership.released', 'ownership.fenced', 'keyspace.gap')
    AND typeof(attrs) = 'text'
  ORDER BY seq`;

/** Every `ownership.*` and `keyspace.gap` record of the ledger, in seq order. */
export function ownershipRows(db: Database.Database): OwnershipRow[] {
  return db.prepare(OWNERSHIP_SQL).all() as OwnershipRow[];
}

/** The observed time of the newest record (highest seq), or null when the ledger is empty. */
export function lastRecordTime(db: Database.Database): number | null {
  const row = db.prepare('SELECT time FROM records ORDER BY seq DESC LIMIT 1').get() as
    { time: number } | undefined;
  return row?.time ?? null;
}
