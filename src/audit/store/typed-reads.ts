import type Database from 'better-sqlite3';
import { decodeRecord, type StoredColumns } from '../record-codec.js';
import type { AuditRecord } from '../record.js';
import {
  RECORD_COLUMNS,
  RECORD_COLUMNS_NO_SOURCE,
  type RecordRow,
  type SeqAttrs,
} from './record-columns.js';

/**
 * Reads of the records table by record type, for reports: findings, the inventory replay,
 * baselines, blind-spot windows, discontinuities, retention purges and archives. Each one a range scan
 * of the records_type_seq index or of the primary key; attrs stay JSON text for the caller.
 */

/**
 * Rows of the types below are stored as text (record-codec.ts: only `token.*` is compact) and
 * read as JSON text. A compact blob under one of these type columns is a damaged row (verify
 * reports it); skipped here so that the report shows the damage instead of failing on it.
 */
const TEXT_ATTRS = "typeof(attrs) = 'text'";

const FINDINGS_SQL = `SELECT ${RECORD_COLUMNS_NO_SOURCE} FROM records
  WHERE type >= 'finding.' AND type < 'finding.\uffff' AND seq > ? AND seq <= ? AND ${TEXT_ATTRS}
  ORDER BY seq LIMIT 2000`;

/** Every `finding.*` record up to `lastSeq`, in seq-ordered pages. */
export function* findingPages(db: Database.Database, lastSeq: number): Generator<RecordRow[]> {
  const stmt = db.prepare(FINDINGS_SQL);
  let after = 0;
  for (;;) {
    const rows = stmt.all(after, lastSeq) as RecordRow[];
    if (rows.length === 0) return;
    after = rows[rows.length - 1]?.seq ?? lastSeq;
    yield rows;
  }
}

const REPLAY_SQL = `SELECT ${RECORD_COLUMNS} FROM records
  WHERE seq >= ? AND seq < ? AND ((type >= 'token.' AND type < 'token.\uffff') OR type IS NULL
    OR type IN ('keyspace.baseline', 'keyspace.gap', 'system.started'))
  ORDER BY seq LIMIT 5000`;

/**
 * The records an inventory replay reads (`token.*`, `keyspace.baseline`, `keyspace.gap`,
 * `system.started`) with seq in [fromSeq, beforeSeq), in seq-ordered pages.
 */
export function* replayPages(
  db: Database.Database,
  fromSeq: number,
  beforeSeq: number,
): Generator<AuditRecord[]> {
  const stmt = db.prepare(REPLAY_SQL);
  let next = fromSeq;
  while (next < beforeSeq) {
    const rows = stmt.all(next, beforeSeq) as StoredColumns[];
    if (rows.length === 0) return;
    yield rows.map(decodeRecord);
    next = (rows[rows.length - 1]?.seq ?? beforeSeq) + 1;
  }
}

/** Records of exactly `type` with seq below `beforeSeq`, oldest first. */
export function recordsOfTypeBefore(
  db: Database.Database,
  type: string,
  beforeSeq: number,
): SeqAttrs[] {
  return db
    .prepare(
      `SELECT seq, attrs FROM records WHERE type = ? AND seq < ? AND ${TEXT_ATTRS} ORDER BY seq`,
    )
    .all(type, beforeSeq) as SeqAttrs[];
}

/** Seq of the newest record of exactly `type` below `beforeSeq`, or null. */
export function lastSeqOfTypeBefore(
  db: Database.Database,
  type: string,
  beforeSeq: number,
): number | null {
  const row = db
    .prepare(`SELECT MAX(seq) AS seq FROM records WHERE type = ? AND seq < ? AND ${TEXT_ATTRS}`)
    .get(type, beforeSeq) as { seq: number | null };
  return row.seq;
}

/** Seq of the oldest record of exactly `type` above `afterSeq`, or null. */
export function firstSeqOfTypeAfter(
  db: Database.Database,
  type: string,
  afterSeq: number,
): number | null {
  const row = db
    .prepare(
      `SELECT seq FROM records WHERE type = ? AND seq > ? AND ${TEXT_ATTRS} ORDER BY seq LIMIT 1`,
    )
    .get(type, afterSeq) as { seq: number } | undefined;
  return row?.seq ?? null;
}

/** A blind-spot window record: `keyspace.gap` or `audit.degraded`. */
export interface WindowRow extends SeqAttrs {
  type: 'keyspace.gap' | 'audit.degraded';
}

/**
 * Every `keyspace.gap` and `audit.degraded` record observed at or after `since`, seq order (a
 * window still open at the end of a period is recorded after it).
 */
export function blindWindowsSince(db: Database.Database, since: number): WindowRow[] {
  return db
    .prepare(
      `SELECT seq, type, attrs FROM records WHERE type IN ('keyspace.gap', 'audit.degraded') AND time >= ? AND ${TEXT_ATTRS} ORDER BY seq`,
    )
    .all(since) as WindowRow[];
}

/** Up to `limit` `ledger.discontinuity` records with seq in [fromSeq, toSeq], seq order. */
export function discontinuities(
  db: Database.Database,
  fromSeq: number,
  toSeq: number,
  limit: number,
): SeqAttrs[] {
  return db
    .prepare(
      `SELECT seq, attrs FROM records WHERE type = 'ledger.discontinuity' AND seq >= ? AND seq <= ? AND ${TEXT_ATTRS} ORDER BY seq LIMIT ?`,
    )
    .all(fromSeq, toSeq, limit) as SeqAttrs[];
}

/** Every `audit.retention_purge` record, oldest first. */
export function retentionPurges(db: Database.Database): (SeqAttrs & { time: number })[] {
  return db
    .prepare(
      `SELECT seq, time, attrs FROM records WHERE type = 'audit.retention_purge' AND ${TEXT_ATTRS} ORDER BY seq`,
    )
    .all() as (SeqAttrs & { time: number })[];
}

/** Every `audit.archived` record, oldest first. */
export function archivedRecords(db: Database.Database): (SeqAttrs & { time: number })[] {
  return db
    .prepare(
      `SELECT seq, time, attrs FROM records WHERE type = 'audit.archived' AND ${TEXT_ATTRS} ORDER BY seq`,
    )
    .all() as (SeqAttrs & { time: number })[];
}
