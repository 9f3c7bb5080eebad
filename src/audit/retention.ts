import type { Logger } from 'pino';
import { removeExpiredArchives, type ArchiveExpiryOptions } from './archive-retention.js';
import { DAY_MS } from './day.js';
import type { Ledger } from './ledger.js';
import { deleteSegment, oldestSealedSegment, type WriterKey } from './sealed-segment.js';
import { PassSchedule } from './pass-schedule.js';

export { DAY_MS } from './day.js';

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
  /** The writer's key: the checkpoint that ends a pruned segment must verify under it. */
  key: WriterKey;
  retentionDays: number;
  /**
   * The archive directory and the writer's key, when archiving is on: each pass also removes
   * archive files past retention (archive-retention.ts).
   */
  archive?: Pick<ArchiveExpiryOptions, 'dir'>;
  /** Default MAX_RECORDS_PER_PASS. */
  maxRecordsPerPass?: number;
  now?: () => number;
  logger?: Logger;
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
  const seg = oldestSealedSegment(
    ledger.db,
    cutoff,
    opts.maxRecordsPerPass ?? MAX_RECORDS_PER_PASS,
    { ledgerId: ledger.ledgerId, key: opts.key },
  );
  if (!seg) return undefined;
  const attrs = {
    fromSeq: seg.fromSeq,
    toSeq: seg.toSeq,
    records: seg.records,
    chain: seg.chain.toString('hex'),
    checkpoint: seg.checkpoint,
    checkpointTime: seg.checkpointTime,
    firstTime: seg.firstTime,
    lastTime: seg.lastTime,
    retentionDays,
    cutoff,
  };
  const [committed] = ledger.commitWith(
    [{ time: now, source: 'system', type: 'audit.retention_purge', attrs }],
    (tx) => deleteSegment(tx, seg.fromSeq, seg.toSeq, seg.records),
  );
  return { ...attrs, seq: committed?.seq ?? 0 };
}

/** Runs pruneExpired at start and then daily, pass after pass until nothing is old enough. */
export class RetentionJob {
  readonly #o: RetentionOptions;
  readonly #schedule: PassSchedule;

  constructor(opts: RetentionOptions & { intervalMs?: number }) {
    this.#o = opts;
    this.#schedule = new PassSchedule(() => this.runNow(), opts.intervalMs ?? DAY_MS);
  }

  /** A pass now, then on the interval; while a pass did something, the next at once. */
  start(): void {
    this.#schedule.start();
  }

  /** One pass; errors are logged (the ledger keeps working, the next pass retries). */
  runNow(): PurgeResult | undefined {
    if (this.#o.archive) {
      try {
        removeExpiredArchives({ ...this.#o, ...this.#o.archive });
      } catch (err) {
        this.#o.logger?.error(
          { err: (err as Error).message },
          'audit retention: removing expired archive files failed',
        );
      }
    }
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
    this.#schedule.close();
  }
}
