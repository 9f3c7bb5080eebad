import type Database from 'better-sqlite3';
import { TokenwatchError } from '../../errors.js';
import {
  checkpointColumns,
  checkpointFromRow,
  type Checkpoint,
  type CheckpointRow,
} from '../checkpoint.js';
import { hasCheckpointsTable, hasSealsTable } from '../schema.js';

/**
 * Reads of the signed side of the ledger: the write-once ledger id, the checkpoints that seal a
 * range, and whether batch seals exist. Reads only.
 */

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
  const row = sealingCheckpointRow(db, seq);
  return row ? checkpointFromRow(row, ledgerId) : undefined;
}

/** The raw row of {@link sealingCheckpoint} (callers that check its signature themselves). */
export function sealingCheckpointRow(
  db: Database.Database,
  seq: number,
): CheckpointRow | undefined {
  if (!hasCheckpointsTable(db)) return undefined;
  return db
    .prepare(`SELECT ${checkpointColumns(db)} FROM checkpoints WHERE seq >= ? ORDER BY n LIMIT 1`)
    .get(seq) as CheckpointRow | undefined;
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

/**
 * The checkpoints that may authorise a retention purge of records up to `toSeq`: those signed
 * at exactly `toSeq`, and the last one before the purge record `purgeSeq` that states a
 * retention period.
 */
export function purgeCheckpointRows(
  db: Database.Database,
  toSeq: number,
  purgeSeq: number,
): CheckpointRow[] {
  const cols = checkpointColumns(db);
  return [
    ...(db.prepare(`SELECT ${cols} FROM checkpoints WHERE seq = ?`).all(toSeq) as CheckpointRow[]),
    ...(db
      .prepare(
        `SELECT ${cols} FROM checkpoints WHERE seq < ? AND retention_days IS NOT NULL ORDER BY n DESC LIMIT 1`,
      )
      .all(purgeSeq) as CheckpointRow[]),
  ];
}

/** Whether the ledger has a seals table holding at least one batch seal (schema v3+). */
export function hasAnySeal(db: Database.Database): boolean {
  return hasSealsTable(db) && db.prepare('SELECT 1 FROM seals LIMIT 1').get() !== undefined;
}
