import type { Logger } from 'pino';
import { TokenwatchError } from '../errors.js';
import type { Ledger } from './ledger.js';

export const DAY_MS = 86_400_000;

/**
 * Records one pass prunes at most (unless a single segment is larger): a DELETE runs on the
 * writer's thread, so a year-old backlog is cut in slices of well under a second each, every
 * slice its own transaction with its own purge record, instead of one multi-minute stall.
 */
export const MAX_RECORDS_PER_PASS = 200_000;

/** What one purge removed; also the attributes of its `audit.retention_purge` record. */
export interface PurgeResult {
  /** First and last pruned seq (inclusive). */
  fromSeq: number;
  toSeq: number;
  records: number;
  /** Chain hash of record `toSeq` (hex): verification continues from it. */
  chain: string;
  /** The checkpoint that sealed the pruned segment, and when it was signed. */
  checkpoint: number;
  checkpointTime: number;
  /** Observed times of the first and last pruned records. */
  firstTime: number;
  lastTime: number;
  retentionDays: number;
  /** Segments sealed before this time (unix ms) were eligible. */
  cutoff: number;
  /** Seq of the `audit.retention_purge` record. */
  seq: number;
}

export interface RetentionOptions {
  ledger: Ledger;
  retentionDays: number;
  /** Default MAX_RECORDS_PER_PASS. */
  maxRecordsPerPass?: number;
  now?: () => number;
  logger?: Logger;
}

interface CheckpointPoint {
  n: number;
  seq: number;
  chain: Buffer;
  time: number;
}

/**
 * Prunes whole sealed segments older than retention (PCI DSS 10.5.1 / SOC 2 evidence: 12 months
 * online is the norm, hence the 400-day default). A segment is the records a checkpoint sealed;
 * it is old when its checkpoint was signed before the cutoff. The prefix of checkpoints is cut at
 * the first one still inside retention, so a clock that went backwards can never make a younger
 * segment look old. Removal and the `audit.retention_purge` record that states the pruned range
 * and the chain hash at its end commit in one transaction; verification resumes from that hash.
 *
 * Returns undefined when nothing is old enough. Throws ERR_AUDIT_DEGRADED when the ledger cannot
 * write, ERR_LEDGER_INTEGRITY when the segment's records disagree with its checkpoint.
 */
export function pruneExpired(opts: RetentionOptions): PurgeResult | undefined {
  const { ledger, retentionDays } = opts;
  const now = (opts.now ?? Date.now)();
  const cutoff = now - retentionDays * DAY_MS;
  const db = ledger.db;
  const first = db.prepare('SELECT MIN(seq) AS seq FROM records').get() as { seq: number | null };
  if (first.seq === null) return undefined;
  const fromSeq = first.seq;
  const young = db.prepare('SELECT MIN(n) AS n FROM checkpoints WHERE time >= ?').get(cutoff) as {
    n: number | null;
  };
  const below = young.n ?? Number.MAX_SAFE_INTEGER; // checkpoints before the first young one
  const limit = fromSeq + (opts.maxRecordsPerPass ?? MAX_RECORDS_PER_PASS) - 1;
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
  const at = (seq: number) =>
    db.prepare('SELECT time, chain FROM records WHERE seq = ?').get(seq) as
      { time: number; chain: Buffer } | undefined;
  const firstRow = at(fromSeq);
  const lastRow = at(target.seq);
  if (!firstRow || !lastRow || !lastRow.chain.equals(target.chain)) {
    throw new TokenwatchError(
      'ERR_LEDGER_INTEGRITY',
      `record ${target.seq} does not match checkpoint #${target.n}: not pruning; run tokenwatch verify`,
    );
  }
  const attrs = {
    fromSeq,
    toSeq: target.seq,
    records: target.seq - fromSeq + 1,
    chain: target.chain.toString('hex'),
    checkpoint: target.n,
    checkpointTime: target.time,
    firstTime: firstRow.time,
    lastTime: lastRow.time,
    retentionDays,
    cutoff,
  };
  const [committed] = ledger.commitWith(
    [{ time: now, source: 'system', type: 'audit.retention_purge', attrs }],
    (tx) => {
      // The purge record is inserted first (seq = max+1), so the seq trigger still holds even if
      // the whole rest of the ledger goes; the guard row exists only inside this transaction.
      tx.prepare('INSERT INTO purge_guard (upto) VALUES (?)').run(target.seq);
      const { changes } = tx.prepare('DELETE FROM records WHERE seq <= ?').run(target.seq);
      // Seals of the pruned range go with it (the seals trigger honours the same guard).
      tx.prepare('DELETE FROM seals WHERE seq <= ?').run(target.seq);
      tx.prepare('DELETE FROM purge_guard').run();
      if (changes !== attrs.records) {
        throw new TokenwatchError(
          'ERR_LEDGER_INTEGRITY',
          `seq ${fromSeq}..${target.seq} holds ${changes} records, not ${attrs.records}: not pruning a ledger with gaps; run tokenwatch verify`,
        );
      }
    },
  );
  return { ...attrs, seq: committed?.seq ?? 0 };
}

/** Runs pruneExpired at start and then daily, pass after pass until nothing is old enough. */
export class RetentionJob {
  readonly #o: RetentionOptions;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #next: NodeJS.Immediate | undefined;
  #closed = false;

  constructor(opts: RetentionOptions & { intervalMs?: number }) {
    this.#o = opts;
    this.#intervalMs = opts.intervalMs ?? DAY_MS;
  }

  start(): void {
    if (this.#timer || this.#closed) return;
    this.#drain();
    this.#timer = setInterval(() => this.#drain(), this.#intervalMs);
    this.#timer.unref();
  }

  /** One pass, then the next one on a later turn of the event loop while there is more. */
  #drain(): void {
    if (this.#closed || this.#next) return;
    if (this.runNow() === undefined) return;
    this.#next = setImmediate(() => {
      this.#next = undefined;
      this.#drain();
    });
  }

  /** One pass; errors are logged (the ledger keeps working, the next pass retries). */
  runNow(): PurgeResult | undefined {
    try {
      const r = pruneExpired(this.#o);
      if (r) {
        this.#o.logger?.info(
          { fromSeq: r.fromSeq, toSeq: r.toSeq, records: r.records, purgeSeq: r.seq },
          'audit retention: pruned sealed segments older than retention',
        );
      }
      return r;
    } catch (err) {
      this.#o.logger?.error({ err: (err as Error).message }, 'audit retention pass failed');
      return undefined;
    }
  }

  /** Idempotent. */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#next) clearImmediate(this.#next);
    this.#timer = undefined;
    this.#next = undefined;
  }
}
