import type { Logger } from 'pino';
import type { CommittedListener } from './committed-channel.js';
import type { EncodeMismatch } from './row-writer.js';
import type { SigningKey } from './signing-keys.js';

export interface LedgerOptions {
  path: string;
  batchSize: number;
  /** Inline writer: longest a record waits for its batch. The writer thread commits when idle. */
  flushIntervalMs: number;
  maxPending: number;
  /** Ids of the HMAC keys, stated in the genesis record. */
  hmacKeyIds: readonly string[];
  /** Id of the checkpoint signing key, stated in the genesis record when known. */
  signingKeyId?: string;
  /**
   * Signs the head of every committed batch (a `seals` row in the same transaction,
   * docs/ledger-format.md#batch-seals). Without it (tests of older behaviour, benchmarks of the
   * bare INSERT path) no batch is sealed and verify reports the tail as `unsealed`.
   */
  signingKey?: SigningKey;
  /** `audit.retentionDays`, stated in the genesis record (signed data for retention checks). */
  retentionDays?: number;
  /**
   * The ledger reads its clock at every commit; when the reading is earlier than the previous
   * one by more than this (ms), an `audit.clock_skew` record opens the batch. Default 1000.
   */
  clockSkewToleranceMs?: number;
  /**
   * Commit on a writer thread (default true for a file): the event loop encodes and hashes, a
   * worker INSERTs and fsyncs, the two overlapping. False, or an in-memory database, commits on
   * the event loop.
   */
  writerThread?: boolean;
  /** The writer thread's script; default the compiled writer-worker.js (tests inject faults). */
  writerWorker?: URL;
  /**
   * Which thread encodes the records of a batch committed on the writer thread: `auto` (the
   * default) follows which thread binds (threaded-committer.ts); `writer` and `eventLoop` pin
   * it (tests, and benchmarks that compare the two).
   */
  writerEncodes?: 'auto' | 'writer' | 'eventLoop';
  now?: () => number;
  logger?: Logger;
  /**
   * The first subscriber of `Ledger.committed`, subscribed before the genesis record
   * commits.
   */
  onCommit?: CommittedListener;
  /** Called after each committed transaction with its size and wall-clock span (tracing). */
  onCommitTimed?: (records: number, startMs: number, endMs: number) => void;
  /** Called when the ledger enters or leaves the degraded (cannot write) state. */
  onDegradedChange?: (degraded: boolean, reason: string | undefined) => void;
  /** Called when queued records had to be dropped (the caller must cover them with a gap). */
  onDropped?: (count: number) => void;
  /**
   * Called when a sampled decode check of the compact storage encoding failed (a codec bug, never
   * expected): `seq` was stored as text; `suspectFrom`..`seq` - 1 may show as damaged to verify.
   */
  onEncodeMismatch?: (m: EncodeMismatch) => void;
}

/** The last committed record: what a checkpoint signs. */
export interface LedgerHead {
  seq: number;
  chain: Buffer;
}

export interface LedgerState {
  ledgerId: string;
  lastSeq: number;
  pending: number;
  degraded: boolean;
  degradedReason: string | undefined;
  degradedSince: number | undefined;
  droppedTotal: number;
  /** Records whose sampled decode check of the compact encoding failed (0 unless a codec bug). */
  encodeMismatches: number;
}
