import type Database from 'better-sqlite3';
import { headOf } from './chain-head.js';
import type { Pending } from './commit-queue.js';
import type { CommitHost, Committer, Written } from './committer.js';
import type { Committed } from './record.js';
import { RowWriter } from './row-writer.js';
import { INSERT_SEAL_SQL } from './seal.js';

/**
 * Commits on the event loop: one transaction per batch on the ledger's own connection (in-memory
 * ledgers, `writerThread: false`, and after the writer thread is gone). Also the path of the
 * writes that must share a transaction with other work (genesis, `commitWith`, recovery).
 */
export class InlineCommitter implements Committer {
  readonly kind = 'inline';
  readonly inflight = 0;
  readonly #db: Database.Database;
  readonly #host: CommitHost;
  readonly #transact: (items: Pending[], work?: (db: Database.Database) => void) => Written;

  constructor(db: Database.Database, host: CommitHost) {
    this.#db = db;
    this.#host = host;
    const rows = new RowWriter(db, (m) => host.encodeMismatch(m));
    const insertSeal = db.prepare(INSERT_SEAL_SQL);
    this.#transact = db.transaction((items: Pending[], work?: (db: Database.Database) => void) => {
      const written = host.encode(items, rows);
      if (written.seal) insertSeal.run(...written.seal);
      work?.(db);
      return written;
    });
  }

  nextTurn(urgent: boolean): 'now' | 'later' {
    return urgent || this.#host.queue.length >= this.#host.batchSize ? 'now' : 'later';
  }

  drain(): void {
    const queue = this.#host.queue;
    const batch = queue.peek(this.#host.batchSize);
    if (batch.length === 0) return;
    if (!this.tryCommit(batch)) return;
    queue.remove(batch.length);
    if (queue.length > 0) this.#host.schedule();
  }

  /** Commits `batch`; on failure the ledger fails closed and this returns false. */
  tryCommit(batch: Pending[]): boolean {
    try {
      this.commit(batch);
      return true;
    } catch (err) {
      this.#host.fail(err);
      return false;
    }
  }

  /**
   * Writes `items` (and `work`) in one transaction; throws only when the transaction failed and
   * rolled back. Listener errors are logged, never thrown: a batch that committed must not be
   * retried (it would be written twice).
   */
  commit(items: Pending[], work?: (db: Database.Database) => void): Committed[] {
    const started = this.#host.started();
    const written = this.#transact(items, work);
    this.#host.position.tip = headOf(written);
    return this.#host.committed(items, written, started);
  }

  execAside(sql: string, params: unknown[], done: (err?: Error) => void): void {
    let error: Error | undefined;
    try {
      this.#db.prepare(sql).run(...params);
    } catch (err) {
      error = err as Error;
    }
    done(error);
  }

  settle(): void {
    // Nothing is handed over: every inline commit is synchronous.
  }
}
