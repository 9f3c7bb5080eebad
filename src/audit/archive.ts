import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { writeSegmentArchive } from './archive-segment.js';
import type { Ledger } from './ledger.js';
import { DAY_MS } from './retention.js';
import { deleteSegment, oldestSealedSegment, type WriterKey } from './sealed-segment.js';
import { chainAnchor } from './store/range-reads.js';
import { PassSchedule } from './pass-schedule.js';
import type { Archived } from './verify-meta.js';

/**
 * Records one pass archives at most (unless a single segment is larger): the pass reads,
 * re-hashes, compresses and deletes on the event loop's thread at ~30 000-42 000 records/s
 * (src/bench/ledger-disk.ts), so a backlog is cut in slices of about half a second.
 */
export const MAX_ARCHIVE_RECORDS_PER_PASS = 20_000;

/** Digits of the seqs in an archive file's name, so that names sort in seq order. */
const SEQ_DIGITS = 12;

/**
 * What one archive pass moved: the attributes of its `audit.archived` record, and `seq`, the
 * record's own seq.
 */
export type ArchiveResult = Omit<Archived, 'time'>;

/** Counts of archive passes (src/metrics/archive-metrics.ts). */
export interface ArchiveObserver {
  archived(records: number, bytes: number): void;
  failed(): void;
}

export interface ArchiveOptions {
  ledger: Ledger;
  /** The writer's key: the checkpoint that ends an archived segment must verify under it. */
  key: WriterKey;
  /** Segments whose checkpoint was signed more than this many days ago are archived. */
  afterDays: number;
  /** Directory of the archive files (a sub-directory per ledger id). */
  dir: string;
  /** Default MAX_ARCHIVE_RECORDS_PER_PASS. */
  maxRecordsPerPass?: number;
  now?: () => number;
  logger?: Logger;
  observer?: ArchiveObserver;
}

/** `archive/` beside the database: the default of config `audit.archive.dir`. */
export function defaultArchiveDir(dbPath: string): string {
  return join(dirname(dbPath), 'archive');
}

/** Name of the archive file of seqs from..to, relative to the archive directory. */
export function archiveFileName(ledgerId: string, fromSeq: number, toSeq: number): string {
  const pad = (n: number) => String(n).padStart(SEQ_DIGITS, '0');
  return `${ledgerId}/${pad(fromSeq)}-${pad(toSeq)}.twa.gz`;
}

/**
 * Moves the oldest whole sealed segments older than `afterDays` (the same selection as a
 * retention purge) to a compressed file, then removes them from the database. Order matters for
 * crash safety: the file is written and fsync'd first; only then do the DELETE and the
 * `audit.archived` record that names the file's SHA-256 commit in one transaction. A failure
 * before that commit leaves the database untouched (a stray file is replaced by the next pass).
 * Each row is re-hashed while it is written and the result must reach the checkpoint's chain:
 * a damaged segment is never archived (ERR_LEDGER_INTEGRITY).
 *
 * Returns undefined when nothing is old enough.
 */
export function archiveExpired(opts: ArchiveOptions): ArchiveResult | undefined {
  const { ledger } = opts;
  const now = (opts.now ?? Date.now)();
  const db = ledger.db;
  const seg = oldestSealedSegment(
    db,
    now - opts.afterDays * DAY_MS,
    opts.maxRecordsPerPass ?? MAX_ARCHIVE_RECORDS_PER_PASS,
    { ledgerId: ledger.ledgerId, key: opts.key },
  );
  if (!seg) return undefined;
  const prevChain = chainAnchor(db, seg.fromSeq).chain;
  const chain = seg.chain.toString('hex');
  const file = archiveFileName(ledger.ledgerId, seg.fromSeq, seg.toSeq);
  const written = writeSegmentArchive(db, ledger.ledgerId, seg, prevChain, join(opts.dir, file));
  const attrs = {
    fromSeq: seg.fromSeq,
    toSeq: seg.toSeq,
    records: seg.records,
    chain,
    prevChain,
    checkpoint: seg.checkpoint,
    checkpointTime: seg.checkpointTime,
    firstTime: seg.firstTime,
    lastTime: seg.lastTime,
    file,
    sha256: written.sha256,
    bytes: written.bytes,
  };
  const [committed] = ledger.commitWith(
    [{ time: now, source: 'system', type: 'audit.archived', attrs }],
    (tx) => deleteSegment(tx, seg.fromSeq, seg.toSeq, seg.records),
  );
  return { ...attrs, seq: committed?.seq ?? 0 };
}

/**
 * How often the archive job drains: hourly, not daily like retention. Each drain archives what
 * aged since the last one in ~0.5 s passes on the event loop; at 400 events/s an hour's worth is
 * ~70 passes, a day's would be ~1 700 back to back.
 */
export const ARCHIVE_INTERVAL_MS = 3_600_000;

/** Runs archiveExpired at start and then hourly, pass after pass until nothing is old enough. */
export class ArchiveJob {
  readonly #o: ArchiveOptions;
  readonly #schedule: PassSchedule;

  constructor(opts: ArchiveOptions & { intervalMs?: number }) {
    this.#o = opts;
    this.#schedule = new PassSchedule(() => this.runNow(), opts.intervalMs ?? ARCHIVE_INTERVAL_MS);
  }

  /** A pass now, then on the interval; while a pass did something, the next at once. */
  start(): void {
    this.#schedule.start();
  }

  /** One pass; errors are counted and logged (the ledger keeps working, the next pass retries). */
  runNow(): ArchiveResult | undefined {
    try {
      const r = archiveExpired(this.#o);
      if (r) {
        this.#o.observer?.archived(r.records, r.bytes);
        this.#o.logger?.info(
          {
            fromSeq: r.fromSeq,
            toSeq: r.toSeq,
            records: r.records,
            file: r.file,
            bytes: r.bytes,
            archivedSeq: r.seq,
          },
          'audit archive: moved sealed segments to an archive file',
        );
      }
      return r;
    } catch (err) {
      this.#o.observer?.failed();
      this.#o.logger?.error({ err: (err as Error).message }, 'audit archive pass failed');
      return undefined;
    }
  }

  /** Idempotent. */
  close(): void {
    this.#schedule.close();
  }
}
