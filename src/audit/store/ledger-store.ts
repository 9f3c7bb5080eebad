import type Database from 'better-sqlite3';
import type { Checkpoint, CheckpointRow } from '../checkpoint.js';
import { lastRecordOfType, listRecords, openReadOnly, type RecordFilter } from '../query.js';
import type { AuditRecord } from '../record.js';
import { chainAt, readChainedAfter, type ChainedRecord } from '../record-stream.js';
import type { TrustedKey } from '../signing-keys.js';
import { hasSealsTable } from '../schema.js';
import { newestSeal, type SealCheck } from '../verify-seals.js';
import {
  checkpointsBetween,
  hasAnySeal,
  lastCheckpointSeq,
  ledgerIdOf,
  purgeCheckpointRows,
  sealingCheckpoint,
  sealingCheckpointRow,
} from './checkpoint-reads.js';
import {
  providerEventIdsAfter,
  providerEventIdsSince,
  type ProviderEventId,
} from './provider-dedup.js';
import {
  chainAnchor,
  firstRecord,
  maxSeq,
  minSeq,
  recordPages,
  seqRangeForWindow,
  type ChainAnchor,
  type SeqRange,
  type StoredRecord,
} from './range-reads.js';
import { lastRecordTime, ownershipRows, type OwnershipRow } from './ownership-reads.js';
import type { RecordRow, SeqAttrs } from './record-columns.js';
import {
  blindWindowsSince,
  discontinuities,
  findingPages,
  firstSeqOfTypeAfter,
  lastSeqOfTypeBefore,
  recordsOfTypeBefore,
  replayPages,
  retentionPurges,
  archivedRecords,
  type WindowRow,
} from './typed-reads.js';

/**
 * The one owner of the ledger's rows for everyone outside src/audit/: every typed read other
 * folders need (compliance reports and exports, provider dedup, the OTLP log stream, `audit
 * list`), over one connection. No raw connection leaves src/audit/; other folders hold a
 * LedgerStore (test/architecture/ledger-sql.test.ts keeps SQL on the ledger's tables in here).
 *
 * Reads only: records are written by the Ledger's commit path alone.
 */
export class LedgerStore {
  readonly #db: Database.Database;
  readonly #owned: boolean;

  /** `owned`: close() closes the connection (a store opened by {@link openLedgerStore}). */
  constructor(db: Database.Database, owned = false) {
    this.#db = db;
    this.#owned = owned;
  }

  /** Closes the connection when this store opened it; idempotent. */
  close(): void {
    if (this.#owned && this.#db.open) this.#db.close();
  }

  // --- identity and bounds ---

  /** The ledger id (write-once meta table). */
  ledgerId(): string {
    return ledgerIdOf(this.#db);
  }

  maxSeq(): number | null {
    return maxSeq(this.#db);
  }

  minSeq(): number | null {
    return minSeq(this.#db);
  }

  /** The oldest stored record (the first one kept after a retention purge). */
  firstRecord(): { seq: number; time: number } | undefined {
    return firstRecord(this.#db);
  }

  // --- records by seq and time ---

  /** Records in seq order matching the filter (`audit list`, the admin API). */
  list(filter: RecordFilter = {}): AuditRecord[] {
    return listRecords(this.#db, filter);
  }

  /** The newest record of exactly `type` before `beforeSeq`. */
  lastOfType(type: string, beforeSeq?: number): AuditRecord | undefined {
    return lastRecordOfType(this.#db, type, beforeSeq);
  }

  seqRangeForWindow(from: number, to: number): SeqRange | null {
    return seqRangeForWindow(this.#db, from, to);
  }

  chainAnchor(firstSeq: number): ChainAnchor {
    return chainAnchor(this.#db, firstSeq);
  }

  recordPages(firstSeq: number, lastSeq: number, pageSize?: number): Generator<StoredRecord[]> {
    return recordPages(this.#db, firstSeq, lastSeq, pageSize);
  }

  /** Up to `limit` records after `afterSeq` with their chain hashes (the OTLP log stream). */
  chainedAfter(afterSeq: number, limit: number): ChainedRecord[] {
    return readChainedAfter(this.#db, afterSeq, limit);
  }

  /** The chain hash stored at `seq` (hex), undefined when purged or never written. */
  chainAt(seq: number): string | undefined {
    return chainAt(this.#db, seq);
  }

  // --- records by type ---

  findingPages(lastSeq: number): Generator<RecordRow[]> {
    return findingPages(this.#db, lastSeq);
  }

  replayPages(fromSeq: number, beforeSeq: number): Generator<AuditRecord[]> {
    return replayPages(this.#db, fromSeq, beforeSeq);
  }

  recordsOfTypeBefore(type: string, beforeSeq: number): SeqAttrs[] {
    return recordsOfTypeBefore(this.#db, type, beforeSeq);
  }

  lastSeqOfTypeBefore(type: string, beforeSeq: number): number | null {
    return lastSeqOfTypeBefore(this.#db, type, beforeSeq);
  }

  firstSeqOfTypeAfter(type: string, afterSeq: number): number | null {
    return firstSeqOfTypeAfter(this.#db, type, afterSeq);
  }

  blindWindowsSince(since: number): WindowRow[] {
    return blindWindowsSince(this.#db, since);
  }

  discontinuities(fromSeq: number, toSeq: number, limit: number): SeqAttrs[] {
    return discontinuities(this.#db, fromSeq, toSeq, limit);
  }

  retentionPurges(): (SeqAttrs & { time: number })[] {
    return retentionPurges(this.#db);
  }

  archivedRecords(): (SeqAttrs & { time: number })[] {
    return archivedRecords(this.#db);
  }

  /** Every `ownership.*` and `keyspace.gap` record, seq order (merged evidence, issue #20). */
  ownershipRows(): OwnershipRow[] {
    return ownershipRows(this.#db);
  }

  /** Observed time of the newest record, null when empty. */
  lastRecordTime(): number | null {
    return lastRecordTime(this.#db);
  }

  // --- provider dedup ---

  /** Dedup pairs of the newest `limit` `prefix*` records observed since `since`, newest first. */
  eventIdsSince(prefix: string, since: number, limit: number): ProviderEventId[] {
    return providerEventIdsSince(this.#db, prefix, since, limit);
  }

  /** Dedup pairs of the `prefix*` records committed after `afterSeq`. */
  eventIdsAfter(prefix: string, afterSeq: number): ProviderEventId[] {
    return providerEventIdsAfter(this.#db, prefix, afterSeq);
  }

  // --- checkpoints and seals ---

  sealingCheckpoint(seq: number, ledgerId: string): Checkpoint | undefined {
    return sealingCheckpoint(this.#db, seq, ledgerId);
  }

  sealingCheckpointRow(seq: number): CheckpointRow | undefined {
    return sealingCheckpointRow(this.#db, seq);
  }

  lastCheckpointSeq(): number {
    return lastCheckpointSeq(this.#db);
  }

  checkpointsBetween(afterSeq: number, throughN: number, ledgerId: string): Generator<Checkpoint> {
    return checkpointsBetween(this.#db, afterSeq, throughN, ledgerId);
  }

  purgeCheckpointRows(toSeq: number, purgeSeq: number): CheckpointRow[] {
    return purgeCheckpointRows(this.#db, toSeq, purgeSeq);
  }

  /** Whether the schema has batch seals (v3+): {@link newestSeal} needs the table. */
  hasSealsTable(): boolean {
    return hasSealsTable(this.#db);
  }

  /** Whether at least one batch seal was written. */
  hasAnySeal(): boolean {
    return hasAnySeal(this.#db);
  }

  /** The newest authentic batch seal in (afterSeq, maxSeq] (src/audit/verify-seals.ts). */
  newestSeal(
    ledgerId: string,
    afterSeq: number,
    maxSeq: number,
    trusted: readonly TrustedKey[],
  ): SealCheck {
    return newestSeal(this.#db, ledgerId, afterSeq, maxSeq, trusted);
  }
}

/** Opens a ledger file read-only as a store that owns (and closes) its connection. */
export function openLedgerStore(path: string): LedgerStore {
  return new LedgerStore(openReadOnly(path), true);
}
