import type { Logger } from 'pino';
import type { ChainHead } from './chain-head.js';
import type { CommitQueue, Pending } from './commit-queue.js';
import type { Committed } from './record.js';
import type { EncodeMismatch, RowWriter } from './row-writer.js';
import type { BatchPlan } from './batch-encoder.js';

/**
 * Where the ledger's chain stands, shared by both committers: `last` is the head of what
 * committed (what `head()` and checkpoints see); `tip` the head after every batch handed to the
 * writer thread, where the next batch chains on. Inline they are equal after each commit. Each is
 * one {@link ChainHead} value, replaced whole.
 */
export interface ChainPosition {
  last: ChainHead;
  tip: ChainHead;
}

/** A batch encoded and hashed after the tip: the head it leaves, and what goes to the worker. */
export interface Written extends ChainHead {
  readonly clock: number;
  /** Records the ledger added in front of the batch (an `audit.clock_skew` record). */
  readonly extra: Committed[];
  /** The `seals` row of the batch head (SEAL_COLUMNS order), when the ledger signs. */
  readonly seal: unknown[] | undefined;
}

/** What a committer needs from the ledger's commit queue. */
export interface CommitHost {
  readonly queue: CommitQueue;
  readonly position: ChainPosition;
  readonly batchSize: number;
  readonly degraded: boolean;
  readonly closed: boolean;
  readonly logger: Logger | undefined;
  /** Wall-clock start of a commit, when someone times commits (else 0). */
  started(): number;
  /** Encodes and hashes `items` after the tip (`rows` inserts them when it has a connection). */
  encode(items: Pending[], rows: RowWriter): Written;
  /** Plans `items` after `tip` for the writer thread (sets their seqs; see BatchEncoder.plan). */
  plan(tip: Pick<ChainHead, 'seq' | 'clock'>, items: readonly Pending[]): BatchPlan;
  /** A planned batch the writer thread committed (and sealed) with head chain hash `chain`. */
  written(plan: BatchPlan, chain: Buffer): Written;
  /** Bookkeeping once `items` committed as `written`: head, waiters, listeners. */
  committed(items: Pending[], written: Written, started: number): Committed[];
  /** A batch did not commit (rolled back): the ledger fails closed. */
  fail(err: unknown): void;
  /** Asks for another turn of the committer (more is queued). */
  schedule(): void;
  /** A sampled decode check of the compact encoding failed (a codec bug): count it, say so. */
  encodeMismatch(m: EncodeMismatch): void;
}

/**
 * How the ledger's batches reach the file: inline (a transaction on the event loop's connection)
 * or threaded (chained and committed by a worker on its own connection).
 */
export interface Committer {
  readonly kind: 'inline' | 'thread';
  /** Records handed over and not yet acknowledged. */
  readonly inflight: number;
  /**
   * When the queue should get a turn after a record was queued: `now` (next event-loop turn),
   * `later` (the flush interval) or `none` (a reply of the writer thread will send it).
   */
  nextTurn(urgent: boolean): 'now' | 'later' | 'none';
  /** One turn: commits, or hands over, what the queue holds. */
  drain(): void;
  /** Runs one statement outside the chain on the connection that writes (see Ledger.execAside). */
  execAside(sql: string, params: unknown[], done: (err?: Error) => void): void;
  /** Waits until what was handed over has been answered (queued records stay). */
  settle(): void;
}
