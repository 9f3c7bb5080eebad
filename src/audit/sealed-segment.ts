import type Database from 'better-sqlite3';
import { TokenwatchError } from '../errors.js';
import {
  checkpointColumns,
  checkpointFromRow,
  checkpointSignatureValid,
  type CheckpointRow,
} from './checkpoint.js';
import type { TrustedKey } from './signing-keys.js';

/** The ledger writer's own key: the only thing a checkpoint row is believed under. */
export type WriterKey = Pick<TrustedKey, 'keyId' | 'publicKey'>;

/** The oldest whole sealed segments of the database: what one retention or archive pass takes. */
export interface SealedSegment {
  /** First and last seq of the range (inclusive). */
  fromSeq: number;
  toSeq: number;
  records: number;
  /** Chain hash of record `toSeq`, which checkpoint `checkpoint` signs. */
  chain: Buffer;
  checkpoint: number;
  /** When that checkpoint was signed (unix ms). */
  checkpointTime: number;
  /** Observed times of the first and last records of the range. */
  firstTime: number;
  lastTime: number;
}

interface CheckpointPoint {
  n: number;
  seq: number;
  chain: Buffer;
  time: number;
}

/**
 * The stored records from the first one through the newest checkpoint signed before `cutoff`
 * that keeps the range within `maxRecords` (or, when even the first such segment is larger, that
 * one segment whole). A segment is the records a checkpoint sealed; it is old when its
 * checkpoint was signed before the cutoff. The prefix of checkpoints is cut at the first one
 * signed at or after the cutoff, so a clock that went backwards can never make a younger
 * segment look old.
 *
 * The chosen checkpoint must verify under the writer's key (`key`, with `ledgerId`): its number,
 * time, seq and chain come from a database row, which whoever writes the file could have
 * inserted or back-dated to get records removed early. Retention and archiving share this
 * selection, so both rest on the signature, as verification does.
 *
 * Undefined when no segment is old enough. Throws ERR_LEDGER_INTEGRITY when the checkpoint does
 * not verify, or the record it signs is missing or has another chain (nothing is removed from a
 * damaged ledger).
 */
export function oldestSealedSegment(
  db: Database.Database,
  cutoff: number,
  maxRecords: number,
  signer: { ledgerId: string; key: WriterKey },
): SealedSegment | undefined {
  const first = db.prepare('SELECT MIN(seq) AS seq FROM records').get() as { seq: number | null };
  if (first.seq === null) return undefined;
  const fromSeq = first.seq;
  const young = db.prepare('SELECT MIN(n) AS n FROM checkpoints WHERE time >= ?').get(cutoff) as {
    n: number | null;
  };
  const below = young.n ?? Number.MAX_SAFE_INTEGER; // checkpoints before the first young one
  const limit = fromSeq + maxRecords - 1;
  const target = (db
    .prepare(
      'SELECT n, seq, chain, time FROM checkpoints WHERE n < ? AND seq >= ? AND seq <= ? ORDER BY n DESC LIMIT 1',
    )
    .get(below, fromSeq, limit) ??
    db
      .prepare(
        'SELECT n, seq, chain, time FROM checkpoints WHERE n < ? AND seq >= ? ORDER BY n LIMIT 1',
      )
      .get(below, fromSeq)) as CheckpointPoint | undefined;
  if (!target) return undefined;
  const row = db
    .prepare(`SELECT ${checkpointColumns(db)} FROM checkpoints WHERE n = ?`)
    .get(target.n) as CheckpointRow;
  const signed = checkpointFromRow(row, signer.ledgerId);
  if (
    signed.keyId !== signer.key.keyId ||
    !checkpointSignatureValid(signed, signer.key.publicKey)
  ) {
    throw new TokenwatchError(
      'ERR_LEDGER_INTEGRITY',
      `checkpoint #${target.n} does not verify under the writer's key ${signer.key.keyId}: not removing; run tokenwatch verify`,
    );
  }
  const at = (seq: number) =>
    db.prepare('SELECT time, chain FROM records WHERE seq = ?').get(seq) as
      { time: number; chain: Buffer } | undefined;
  const firstRow = at(fromSeq);
  const lastRow = at(target.seq);
  if (!firstRow || !lastRow || !lastRow.chain.equals(target.chain)) {
    throw new TokenwatchError(
      'ERR_LEDGER_INTEGRITY',
      `record ${target.seq} does not match checkpoint #${target.n}: not removing; run tokenwatch verify`,
    );
  }
  return {
    fromSeq,
    toSeq: target.seq,
    records: target.seq - fromSeq + 1,
    chain: target.chain,
    checkpoint: target.n,
    checkpointTime: target.time,
    firstTime: firstRow.time,
    lastTime: lastRow.time,
  };
}

/**
 * Deletes records and seals `fromSeq..toSeq` inside a `ledger.commitWith` transaction whose
 * record (purge or archive) was inserted first (seq = max+1), so the seq trigger still holds even
 * if the whole rest of the ledger goes. The purge_guard row exists only inside the transaction.
 * Throws ERR_LEDGER_INTEGRITY (rolling the transaction back) when the range holds another number
 * of records than `records` (a ledger with gaps, or a range another pass already removed).
 */
export function deleteSegment(
  tx: Database.Database,
  fromSeq: number,
  toSeq: number,
  records: number,
): void {
  tx.prepare('INSERT INTO purge_guard (upto) VALUES (?)').run(toSeq);
  const { changes } = tx.prepare('DELETE FROM records WHERE seq <= ?').run(toSeq);
  // Seals of the range go with it (the seals trigger honours the same guard).
  tx.prepare('DELETE FROM seals WHERE seq <= ?').run(toSeq);
  tx.prepare('DELETE FROM purge_guard').run();
  if (changes !== records) {
    throw new TokenwatchError(
      'ERR_LEDGER_INTEGRITY',
      `seq ${fromSeq}..${toSeq} holds ${changes} records, not ${records}: not removing from a ledger with gaps; run tokenwatch verify`,
    );
  }
}
