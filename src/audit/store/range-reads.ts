import type Database from 'better-sqlite3';
import { ZERO_HASH, type CanonicalFields } from '../canonical.js';
import { TokenwatchError } from '../../errors.js';
import { decodeColumnsOrDamaged, type StoredColumns } from '../record-codec.js';
import { STORED_RECORD_COLUMNS } from './record-columns.js';

/**
 * Seq-ordered reads of the records table for exports and reports: the seq range a time window
 * maps to, the chain hash a range extends, and pages of stored records.
 */

interface StoredHashes {
  /**
   * Stored leaf (32 bytes, or its 4-byte hint from schema v5: compare with leafMatches) and
   * chain hashes, lowercase hex.
   */
  leaf: string;
  chain: string;
}

/** A record's canonical fields (decoded from either storage form) with its stored hashes. */
export interface StoredRecord extends CanonicalFields, StoredHashes {}

/** A time window's records as a contiguous seq range. */
export interface SeqRange {
  firstSeq: number;
  lastSeq: number;
}

/** Where the chain of a range starts: the hash the record at `firstSeq` extends. */
export interface ChainAnchor {
  /** firstSeq - 1 */
  seq: number;
  /** chain(seq), lowercase hex. */
  chain: string;
  /**
   * `genesis`: seq 0 (32 zero bytes); `record`: the stored row; `retention_purge`: pruned;
   * `archived`: moved to an archive file (its `audit.archived` record states the chain).
   */
  source: 'genesis' | 'record' | 'retention_purge' | 'archived';
}

/**
 * The seq range [first, last] spanned by the records observed in [from, to). Seq, not time,
 * orders the ledger: records between the two whose time falls outside the window (a clock that
 * went backwards) belong to the range too, so the range can be hash-linked without holes.
 * Null when no record was observed in the window.
 */
export function seqRangeForWindow(
  db: Database.Database,
  from: number,
  to: number,
): SeqRange | null {
  const row = db
    .prepare('SELECT MIN(seq) AS first, MAX(seq) AS last FROM records WHERE time >= ? AND time < ?')
    .get(from, to) as { first: number | null; last: number | null };
  return row.first === null || row.last === null
    ? null
    : { firstSeq: row.first, lastSeq: row.last };
}

/**
 * The chain hash at `firstSeq - 1`, from the record itself or the purge or archive record that
 * removed it (the newest one that ends there). What that record states is believed only once a
 * signature covers it: callers check it (verify-purge.ts).
 */
export function chainAnchor(db: Database.Database, firstSeq: number): ChainAnchor {
  const seq = firstSeq - 1;
  if (seq === 0) return { seq, chain: ZERO_HASH.toString('hex'), source: 'genesis' };
  const row = db.prepare('SELECT chain FROM records WHERE seq = ?').get(seq) as
    { chain: Buffer } | undefined;
  if (row) return { seq, chain: Buffer.from(row.chain).toString('hex'), source: 'record' };
  const removals = db
    .prepare(
      `SELECT type, attrs FROM records WHERE type IN ('audit.retention_purge', 'audit.archived') AND typeof(attrs) = 'text' ORDER BY seq DESC`,
    )
    .all() as { type: string; attrs: string }[];
  for (const p of removals) {
    const a = JSON.parse(p.attrs) as { toSeq?: unknown; chain?: unknown };
    if (a.toSeq === seq && typeof a.chain === 'string') {
      return {
        seq,
        chain: a.chain,
        source: p.type === 'audit.archived' ? 'archived' : 'retention_purge',
      };
    }
  }
  throw new TokenwatchError(
    'ERR_LEDGER_INTEGRITY',
    `record ${seq} is missing and no audit.retention_purge or audit.archived record covers it: the range starting at seq ${firstSeq} cannot be linked; run tokenwatch verify`,
  );
}

const PAGE_SQL = `SELECT ${STORED_RECORD_COLUMNS}
  FROM records WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?`;

/**
 * Records `firstSeq..lastSeq` in pages of `pageSize`, seq order. Pages, not one cursor: the
 * caller may await between pages (an HTTP export must not hold the event loop), and a page
 * query leaves no statement busy on the connection in between.
 */
export function* recordPages(
  db: Database.Database,
  firstSeq: number,
  lastSeq: number,
  pageSize = 2000,
): Generator<StoredRecord[]> {
  const stmt = db.prepare(PAGE_SQL);
  let next = firstSeq;
  while (next <= lastSeq) {
    const rows = stmt.all(next, lastSeq, pageSize) as (StoredColumns & StoredHashes)[];
    if (rows.length === 0) return;
    yield rows.map((r) => ({ ...decodeColumnsOrDamaged(r), leaf: r.leaf, chain: r.chain }));
    next = (rows[rows.length - 1]?.seq ?? lastSeq) + 1;
  }
}

/**
 * Highest stored seq (null when empty). One aggregate per query: SQLite answers a lone MIN or
 * MAX from the primary key in one seek, but scans the table for both in one SELECT.
 */
export function maxSeq(db: Database.Database): number | null {
  return (db.prepare('SELECT MAX(seq) AS s FROM records').get() as { s: number | null }).s;
}

/** Lowest stored seq (null when empty). */
export function minSeq(db: Database.Database): number | null {
  return (db.prepare('SELECT MIN(seq) AS s FROM records').get() as { s: number | null }).s;
}

/** The oldest stored record's seq and time (after a retention purge: the first one kept). */
export function firstRecord(db: Database.Database): { seq: number; time: number } | undefined {
  return db.prepare('SELECT seq, time FROM records ORDER BY seq LIMIT 1').get() as
    { seq: number; time: number } | undefined;
}
