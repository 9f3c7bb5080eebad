import type Database from 'better-sqlite3';
import { ZERO_HASH, type CanonicalFields } from '../audit/canonical.js';
import {
  checkpointColumns,
  checkpointFromRow,
  type Checkpoint,
  type CheckpointRow,
} from '../audit/checkpoint.js';
import { decodeColumnsOrDamaged, type StoredColumns } from '../audit/record-codec.js';
import { hasCheckpointsTable } from '../audit/schema.js';
import { TokenwatchError } from '../errors.js';

/**
 * Read side of the ledger for exports and reports: the seq range a time window maps to, the
 * chain hash a range extends, and the signed checkpoint that seals it. Reads only; every query
 * runs on the caller's (read-only) connection.
 */

interface StoredHashes {
  /**
   * Stored leaf (32 bytes, or its 4-byte hint from schema v5: compare with leafMatches) and
   * chain hashes, lowercase hex (read as text: a Buffer per blob costs more).
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

/** Where the chain of a range starts: the hash the record at `firstSeq` extends. */
export interface ChainAnchor {
  /** firstSeq - 1 */
  seq: number;
  /** chain(seq), lowercase hex. */
  chain: string;
  /** `genesis`: seq 0 (32 zero bytes); `record`: the stored row; `retention_purge`: pruned. */
  source: 'genesis' | 'record' | 'retention_purge';
}

/** The chain hash at `firstSeq - 1`, from the record itself or the purge record that removed it. */
export function chainAnchor(db: Database.Database, firstSeq: number): ChainAnchor {
  const seq = firstSeq - 1;
  if (seq === 0) return { seq, chain: ZERO_HASH.toString('hex'), source: 'genesis' };
  const row = db.prepare('SELECT chain FROM records WHERE seq = ?').get(seq) as
    { chain: Buffer } | undefined;
  if (row) return { seq, chain: Buffer.from(row.chain).toString('hex'), source: 'record' };
  const purges = db
    .prepare("SELECT attrs FROM records WHERE type = 'audit.retention_purge' ORDER BY seq DESC")
    .all() as { attrs: string }[];
  for (const p of purges) {
    const a = JSON.parse(p.attrs) as { toSeq?: unknown; chain?: unknown };
    if (a.toSeq === seq && typeof a.chain === 'string') {
      return { seq, chain: a.chain, source: 'retention_purge' };
    }
  }
  throw new TokenwatchError(
    'ERR_LEDGER_INTEGRITY',
    `record ${seq} is missing and no audit.retention_purge record covers it: the range starting at seq ${firstSeq} cannot be linked; run tokenwatch verify`,
  );
}

/** The ledger id from the write-once meta table. */
export function ledgerIdOf(db: Database.Database): string {
  const row = db.prepare("SELECT v FROM meta WHERE k = 'ledger_id'").get() as
    { v: string } | undefined;
  if (!row) throw new TokenwatchError('ERR_LEDGER_INTEGRITY', 'the ledger has no ledger id');
  return row.v;
}

/** The first checkpoint that covers `seq` (lowest n with checkpoint seq >= seq), if any yet. */
export function sealingCheckpoint(
  db: Database.Database,
  seq: number,
  ledgerId: string,
): Checkpoint | undefined {
  if (!hasCheckpointsTable(db)) return undefined;
  const row = db
    .prepare(`SELECT ${checkpointColumns(db)} FROM checkpoints WHERE seq >= ? ORDER BY n LIMIT 1`)
    .get(seq) as CheckpointRow | undefined;
  return row ? checkpointFromRow(row, ledgerId) : undefined;
}

/** Seq of the newest checkpoint (0 when there is none). */
export function lastCheckpointSeq(db: Database.Database): number {
  if (!hasCheckpointsTable(db)) return 0;
  const row = db.prepare('SELECT MAX(seq) AS seq FROM checkpoints').get() as { seq: number | null };
  return row.seq ?? 0;
}

/**
 * Checkpoints from the last one at or before `afterSeq` (context: its signature is what the
 * next one's `prev` names) through checkpoint `throughN`, in order. Streams: an idle year holds
 * ~100 000 heartbeat checkpoints.
 */
export function* checkpointsBetween(
  db: Database.Database,
  afterSeq: number,
  throughN: number,
  ledgerId: string,
): Generator<Checkpoint> {
  const start = db
    .prepare('SELECT MAX(n) AS n FROM checkpoints WHERE seq <= ? AND n <= ?')
    .get(afterSeq, throughN) as { n: number | null };
  const stmt = db.prepare(
    `SELECT ${checkpointColumns(db)} FROM checkpoints WHERE n >= ? AND n <= ? ORDER BY n LIMIT 1000`,
  );
  let next = start.n ?? 1;
  while (next <= throughN) {
    const rows = stmt.all(next, throughN) as CheckpointRow[];
    if (rows.length === 0) return;
    for (const r of rows) yield checkpointFromRow(r, ledgerId);
    next = (rows[rows.length - 1]?.n ?? throughN) + 1;
  }
}

const PAGE_SQL = `SELECT seq, time, source, type, kind, fingerprint, attrs,
  lower(hex(leaf)) AS leaf, lower(hex(chain)) AS chain
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

/** Lets other work run between pages (HTTP requests, the ledger's own commits). */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
