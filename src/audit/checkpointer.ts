import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { TokenwatchError } from '../errors.js';
import {
  CHECKPOINT_COLUMNS,
  checkpointFromRow,
  checkpointRowValues,
  signCheckpoint,
  type Checkpoint,
  type CheckpointReason,
  type CheckpointRow,
} from './checkpoint.js';
import { CheckpointLogWriter } from './checkpoint-log.js';
import type { Ledger } from './ledger.js';
import type { SigningKey } from './signing-keys.js';

export interface CheckpointerOptions {
  ledger: Ledger;
  key: SigningKey;
  /** External JSON-lines log every checkpoint is appended to (fsync'd). */
  logPath: string;
  /** Seal after this many records since the last checkpoint. */
  everyRecords: number;
  /** Seal new records at least this often (ms); also the tick of the heartbeat. */
  intervalMs: number;
  /** With no new records, still sign the unchanged head this often (ms): provable silence. */
  heartbeatMs: number;
  /**
   * `audit.retentionDays`, stated in every checkpoint's signed body: what a retention purge is
   * checked against (a purge record alone is data the database writer could have appended).
   */
  retentionDays?: number;
  now?: () => number;
  logger?: Logger;
}

export interface CheckpointerState {
  last: { n: number; seq: number; time: number } | undefined;
  /** Checkpoints in the database that the external log does not have yet. */
  unpublished: number;
  /** Why the external log cannot be written, while it cannot. */
  logProblem: string | undefined;
}

/**
 * Signs checkpoints over the ledger head (RFC 6962 signed tree heads / CloudTrail digests):
 * every `everyRecords` records, every `intervalMs` when records arrived, as a heartbeat when none
 * did (CloudTrail delivers digests for empty hours so silence is provable), at start when the
 * previous run left records unsealed (a crash), and at shutdown. Each is committed to the
 * `checkpoints` table first and then appended to the external log, so the log never states a
 * checkpoint the database lacks unless the database went back in time.
 */
const INSERT_SQL = `INSERT INTO checkpoints (${CHECKPOINT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)`;

export class Checkpointer {
  readonly #o: CheckpointerOptions;
  readonly #now: () => number;
  readonly #db: Database.Database;
  readonly #log: CheckpointLogWriter;
  /** The database's newest checkpoint row. */
  readonly #lastRow: Database.Statement;
  readonly #idleTicksPerHeartbeat: number;
  #last: Checkpoint | undefined;
  #unpublished: Checkpoint[] = [];
  #logProblem: string | undefined;
  #dbProblem: string | undefined;
  #idleTicks = 0;
  /** A checkpoint handed to the ledger's writer, not yet committed: the next one chains on it. */
  #pending: Checkpoint | undefined;
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  #closed = false;

  /**
   * Opens the log and reconciles it with the database. Throws ERR_LEDGER_INTEGRITY when the
   * log is ahead of the database or belongs to another ledger: the database was rolled back,
   * truncated or replaced, and appending to it would fork the evidence (fail closed).
   */
  constructor(opts: CheckpointerOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.#db = opts.ledger.db;
    this.#idleTicksPerHeartbeat = Math.max(1, Math.ceil(opts.heartbeatMs / opts.intervalMs));
    this.#lastRow = this.#db.prepare(
      `SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY n DESC LIMIT 1`,
    );
    const row = this.#lastRow.get() as CheckpointRow | undefined;
    this.#last = row ? checkpointFromRow(row, opts.ledger.ledgerId) : undefined;
    if (this.#last && opts.ledger.lastSeq < this.#last.seq) {
      throw this.#integrity(
        `the database ends at seq ${opts.ledger.lastSeq} but its checkpoint #${this.#last.n} covers seq ${this.#last.seq}: records were truncated`,
      );
    }
    this.#log = new CheckpointLogWriter(opts.logPath);
    try {
      this.#reconcile();
    } catch (err) {
      this.#log.close();
      throw err;
    }
  }

  /** Seals what a previous run left unsealed, then starts the interval/heartbeat timer. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#o.ledger.addCommitListener((head) => {
      if (!this.#closed && head.seq - (this.#last?.seq ?? 0) >= this.#o.everyRecords) {
        // On the commit path: hand the row to the writer and go on (no wait on its lock).
        this.checkpoint('records', false);
      }
    });
    // A start checkpoint also when the retention changed: the purge that may follow is checked
    // against the retention of the newest checkpoint signed before it.
    if (
      this.#o.ledger.lastSeq > (this.#last?.seq ?? 0) ||
      (this.#o.retentionDays !== undefined && this.#last?.retentionDays !== this.#o.retentionDays)
    )
      this.checkpoint('start');
    this.#timer = setInterval(() => this.tick(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** One timer tick (public for tests that drive time by hand). */
  tick(): void {
    if (this.#closed) return;
    if (this.#o.ledger.lastSeq > (this.#last?.seq ?? 0)) {
      this.checkpoint('interval');
    } else if (++this.#idleTicks >= this.#idleTicksPerHeartbeat) {
      this.checkpoint('heartbeat');
    } else if (this.#unpublished.length > 0) {
      this.#publish();
    }
  }

  /**
   * Signs the current head now. The row is written by the ledger's writer (execAside), then the
   * checkpoint goes to the external log. With `wait` (the default) this returns once the row
   * committed; returns undefined when the database would not take it (the ledger is then failing
   * too and reports degraded; the next tick tries again) or, without `wait`, while the row is
   * still on its way or the previous one is.
   */
  checkpoint(reason: CheckpointReason, wait = true): Checkpoint | undefined {
    if (this.#closed) return undefined;
    if (this.#pending) {
      if (!wait) return undefined;
      this.#o.ledger.settle();
      if (this.#pending) return undefined;
    }
    const head = this.#o.ledger.head();
    const cp = signCheckpoint(
      {
        ledgerId: this.#o.ledger.ledgerId,
        n: (this.#last?.n ?? 0) + 1,
        seq: head.seq,
        chain: head.chain.toString('hex'),
        time: this.#now(),
        reason,
        prev: this.#last?.sig ?? null,
        ...(this.#o.retentionDays === undefined ? {} : { retentionDays: this.#o.retentionDays }),
      },
      this.#o.key,
    );
    let stored: Checkpoint | undefined;
    this.#pending = cp;
    this.#o.ledger.execAside(INSERT_SQL, checkpointRowValues(cp), (err) => {
      stored = this.#stored(cp, err);
    });
    if (wait && this.#pending === cp) this.#o.ledger.settle();
    return stored;
  }

  /**
   * After an error the row may still have committed (a writer thread lost mid-COMMIT): chain on
   * whatever the database holds, or every later checkpoint would repeat its number.
   */
  #adoptStored(cp: Checkpoint): Checkpoint | undefined {
    let row: CheckpointRow | undefined;
    try {
      row = this.#lastRow.get() as CheckpointRow | undefined;
    } catch {
      return undefined;
    }
    if (!row || row.n <= (this.#last?.n ?? 0)) return undefined;
    const stored = checkpointFromRow(row, this.#o.ledger.ledgerId);
    this.#dbProblem = undefined;
    this.#last = stored;
    this.#unpublished.push(stored);
    if (!this.#closed) this.#publish();
    return stored.sig === cp.sig ? cp : undefined;
  }

  /** The row of `cp` committed (or failed with `err`): publish it, or leave it to a retry. */
  #stored(cp: Checkpoint, err: Error | undefined): Checkpoint | undefined {
    if (this.#pending === cp) this.#pending = undefined;
    if (err) {
      if (this.#dbProblem === undefined) {
        this.#o.logger?.error({ err: err.message }, 'cannot store audit checkpoint');
      }
      this.#dbProblem = err.message;
      return this.#adoptStored(cp);
    }
    this.#dbProblem = undefined;
    this.#last = cp;
    this.#idleTicks = 0;
    this.#unpublished.push(cp);
    if (!this.#closed) this.#publish(); // else the next start's reconciliation publishes it
    return cp;
  }

  /** Flushes the ledger, signs a `shutdown` checkpoint, closes the log. Idempotent. */
  close(): void {
    if (this.#closed) return;
    if (!this.#o.ledger.closed) {
      this.#o.ledger.flush();
      this.checkpoint('shutdown');
    }
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#log.close();
  }

  state(): CheckpointerState {
    const last = this.#last;
    return {
      last: last && { n: last.n, seq: last.seq, time: last.time },
      unpublished: this.#unpublished.length,
      logProblem: this.#logProblem,
    };
  }

  #publish(): void {
    try {
      this.#log.append(this.#unpublished);
      this.#unpublished = [];
      if (this.#logProblem !== undefined) {
        this.#o.logger?.warn({ path: this.#log.path }, 'checkpoint log writable again');
      }
      this.#logProblem = undefined;
    } catch (err) {
      const message = (err as Error).message;
      if (this.#logProblem === undefined) {
        this.#o.logger?.error(
          { err: message, path: this.#log.path },
          'cannot append to the checkpoint log; checkpoints stay in the database and are retried',
        );
      }
      this.#logProblem = message;
    }
  }

  /** Appends the database's checkpoints the log lacks; refuses a log that is ahead or foreign. */
  #reconcile(): void {
    const ledgerId = this.#o.ledger.ledgerId;
    const logged = this.#log.last;
    const dbLast = this.#last;
    if (logged) {
      if (logged.ledgerId !== ledgerId) {
        throw this.#integrity(
          `checkpoint log ${this.#log.path} belongs to ledger ${logged.ledgerId}, the database is ledger ${ledgerId}: the database was replaced, or audit.checkpointLog points at another ledger's log`,
        );
      }
      if (!dbLast || logged.n > dbLast.n) {
        throw this.#integrity(
          `checkpoint log ${this.#log.path} reaches checkpoint #${logged.n} (seq ${logged.seq}) but the database only #${dbLast?.n ?? 0}: the database was rolled back or truncated; run tokenwatch verify`,
        );
      }
    }
    if (!dbLast) return;
    const from = logged?.n ?? 0;
    if (logged) {
      const same = this.#db
        .prepare(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints WHERE n = ?`)
        .get(logged.n) as CheckpointRow | undefined;
      if (!same || checkpointFromRow(same, ledgerId).sig !== logged.sig) {
        throw this.#integrity(
          `checkpoint #${logged.n} in the database differs from the one in ${this.#log.path}: the database was replaced or forked`,
        );
      }
    } else {
      this.#o.logger?.warn(
        { path: this.#log.path, checkpoints: dbLast.n },
        'checkpoint log is empty: publishing every checkpoint of the database to it',
      );
    }
    const rows = this.#db
      .prepare(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoints WHERE n > ? ORDER BY n`)
      .all(from) as CheckpointRow[];
    this.#unpublished = rows.map((r) => checkpointFromRow(r, ledgerId));
    this.#publish();
  }

  #integrity(message: string): TokenwatchError {
    this.#o.logger?.error({ err: message }, 'audit ledger integrity check failed at start');
    return new TokenwatchError('ERR_LEDGER_INTEGRITY', message);
  }
}
