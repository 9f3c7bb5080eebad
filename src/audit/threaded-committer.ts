import type Database from 'better-sqlite3';
import { headOf } from './chain-head.js';
import type { Pending } from './commit-queue.js';
import type { CommitHost, Committer, Written } from './committer.js';
import type { LedgerOptions } from './ledger-options.js';
import { RowWriter } from './row-writer.js';
import { compiledWorkerUrl } from './worker-url.js';
import { writeFailure } from './write-failure.js';
import { WriterThread } from './writer-thread.js';
import type { WriterReply } from './writer-worker.js';

/**
 * Batches handed to the writer thread before its first reply: one committing, one waiting, so
 * the worker never idles while the event loop encodes the next (group commit on every reply).
 */
const MAX_IN_FLIGHT = 2;

/** A batch handed to the writer thread, not yet acknowledged. */
interface InFlight {
  id: number;
  items: Pending[];
  written: Written;
  started: number;
}

/**
 * Commits on a writer thread: the event loop encodes and hashes each batch (the tip moves), a
 * worker INSERTs and COMMITs it on its own connection, and the head moves only when the worker
 * acknowledged the COMMIT. When the worker dies, what it held goes back to the queue and the
 * ledger commits inline; batches it may have committed on its way out are adopted from the file.
 */
export class ThreadedCommitter implements Committer {
  readonly kind = 'thread';
  readonly #host: CommitHost;
  readonly #writer: WriterThread;
  /** Reads the file after the worker died (adoption); never writes. */
  readonly #db: Database.Database;
  /** Encoder only (no connection): it hands the rows over. */
  readonly #encoder: RowWriter;
  #inflight: InFlight[] = [];
  /** Statements handed to the writer thread by execAside, by request id. */
  readonly #aside = new Map<number, (err?: Error) => void>();
  /**
   * Batches that were in flight when the worker died: it may have committed them (a COMMIT in
   * progress finishes even when the thread is terminated). Their records are back in the queue;
   * before the next inline commit, the file says which of them are there.
   */
  #doubtful: InFlight[] = [];

  /**
   * The writer thread a file ledger commits on, unless `writerThread: false`, the ledger is in
   * memory, or there is no compiled worker (then it commits inline, and says so).
   */
  static open(
    opts: Pick<LedgerOptions, 'path' | 'writerThread' | 'writerWorker' | 'logger'>,
    db: Database.Database,
    host: CommitHost,
  ): ThreadedCommitter | undefined {
    if (opts.writerThread === false || opts.path === ':memory:') return undefined;
    const url = opts.writerWorker ?? compiledWorkerUrl('writer-worker.js');
    if (url) return new ThreadedCommitter(opts.path, url, db, host);
    opts.logger?.warn('ledger writer thread unavailable (no compiled worker): committing inline');
    return undefined;
  }

  constructor(path: string, url: URL, db: Database.Database, host: CommitHost) {
    this.#host = host;
    this.#db = db;
    this.#encoder = new RowWriter(undefined, (m) => host.encodeMismatch(m));
    this.#writer = new WriterThread(path, url);
    this.#writer.onReply = (r) => this.#onReply(r);
    this.#writer.onDeath = (reason) => this.#onDeath(reason);
  }

  /** The worker is there (else the ledger commits inline). */
  get alive(): boolean {
    return !this.#writer.dead;
  }

  /** The writer thread's heap: see WriterThread. */
  get thread(): Pick<WriterThread, 'releaseMemory' | 'heapStatistics'> {
    return this.#writer;
  }

  get inflight(): number {
    let n = 0;
    for (const f of this.#inflight) n += f.items.length;
    return n;
  }

  nextTurn(): 'now' | 'none' {
    // Group commit: with nothing in flight, what this turn queued goes at its end; while a
    // batch commits, its reply sends what queued meanwhile (a full batch goes beside it).
    const idle = this.#inflight.length === 0;
    const full =
      this.#host.queue.length >= this.#host.batchSize && this.#inflight.length < MAX_IN_FLIGHT;
    return idle || full ? 'now' : 'none';
  }

  /**
   * Encodes and hashes queued batches and hands them to the writer thread, up to MAX_IN_FLIGHT
   * unacknowledged. The tip moves now; the head when the worker acknowledges.
   */
  drain(): void {
    const { queue, position } = this.#host;
    while (this.alive && this.#inflight.length < MAX_IN_FLIGHT && queue.length > 0) {
      const items = queue.take(this.#host.batchSize);
      const started = this.#host.started();
      let written: Written;
      try {
        written = this.#host.encode(items, this.#encoder);
      } catch (err) {
        // Nothing left the event loop: the batch goes back, the ledger fails closed (as inline).
        queue.putBack(items);
        this.#failInflight(err as Error);
        return;
      }
      position.tip = headOf(written);
      const id = this.#writer.write(written.args, written.seal);
      written.args = [];
      this.#inflight.push({ id, items, written, started });
    }
  }

  /**
   * Synchronously hands over and waits for everything queued. `done` when the queue is empty and
   * acknowledged, `degraded` when a batch failed, `gone` when the worker is (commit inline).
   */
  flush(): 'done' | 'degraded' | 'gone' {
    while (this.alive) {
      if (this.#host.queue.length > 0 && this.#inflight.length < MAX_IN_FLIGHT) this.drain();
      else if (this.#writer.outstanding === 0) return 'done';
      else if (!this.#writer.waitReply() && this.#inflight.length > 0) {
        this.#onDeath(this.#writer.dead ?? 'writer thread is gone');
      }
      if (this.#host.degraded) return 'degraded';
    }
    return 'gone';
  }

  execAside(sql: string, params: unknown[], done: (err?: Error) => void): void {
    this.#aside.set(this.#writer.exec(sql, params), done);
  }

  settle(): void {
    if (!this.alive) return;
    const target = this.#writer.lastPosted; // replies may send more batches: not waited for
    while (this.#writer.lastAnswered < target && this.#writer.waitReply());
  }

  /** Runs a PRAGMA on the worker's connection and waits for it. */
  pragma(sql: string): void {
    if (this.alive) this.#writer.pragmaSync(sql);
  }

  /** Closes the worker's connection (after its outstanding writes) and ends the thread. */
  close(): void {
    this.#writer.close();
  }

  /**
   * Adopts doubtful batches the file holds (same last seq and chain): their records leave the
   * queue and count as committed. Returns false when the file disagrees with every explanation
   * (the next retry reads it again).
   */
  adoptLateCommits(): boolean {
    if (this.#doubtful.length === 0) return true;
    const { logger, queue, position } = this.#host;
    const rowAt = this.#db.prepare('SELECT chain FROM records WHERE seq = ?').pluck();
    const top = this.#db.prepare('SELECT MAX(seq) FROM records').pluck().get() as number | null;
    while (this.#doubtful.length > 0) {
      const b = this.#doubtful[0] as InFlight;
      if ((top ?? 0) < b.written.seq) break;
      const chain = rowAt.get(b.written.seq) as Buffer | undefined;
      if (!chain?.equals(b.written.chain)) {
        logger?.error(
          { seq: b.written.seq },
          'audit ledger file holds a different record where a lost batch ended',
        );
        return false;
      }
      this.#doubtful.shift();
      // By identity: durable records were taken out of the queue when their waiters were told.
      queue.forget(new Set(b.items));
      position.tip = headOf(b.written);
      logger?.warn({ seq: b.written.seq }, 'adopting a batch the lost writer committed');
      this.#host.committed(b.items, b.written, b.started);
    }
    this.#doubtful = [];
    return true;
  }

  /** The writer thread's reply to the oldest batch in flight. */
  #onReply(r: WriterReply): void {
    const aside = this.#aside.get(r.id);
    if (aside) {
      this.#aside.delete(r.id);
      aside(r.ok ? undefined : writeFailure(r.message, r.code));
      return;
    }
    const head = this.#inflight[0];
    if (!head || head.id !== r.id) return; // refused behind a failure that was handled already
    if (!r.ok) {
      this.#writer.resume();
      this.#failInflight(writeFailure(r.message, r.code));
      return;
    }
    this.#inflight.shift();
    this.#host.committed(head.items, head.written, head.started);
    // Group commit: whatever queued while the worker was busy goes now, in one batch.
    if (this.#host.queue.length > 0 && !this.#host.closed && !this.#host.degraded) this.drain();
  }

  /**
   * A batch in flight failed (rolled back): it and the batches behind it, which chain from it,
   * return to the front of the queue; the tip falls back to the head; the ledger degrades.
   */
  #failInflight(err: Error): void {
    const failed = this.#inflight;
    this.#inflight = [];
    const items: Pending[] = [];
    for (const f of failed) for (const p of f.items) items.push(p);
    this.#host.queue.putBack(items);
    this.#host.position.tip = this.#host.position.last;
    this.#host.fail(err);
  }

  /** The worker is gone: what it held failed; from now on the ledger commits inline. */
  #onDeath(reason: string): void {
    this.#host.logger?.error({ err: reason }, 'ledger writer thread gone: committing inline');
    const asides = [...this.#aside.values()];
    this.#aside.clear();
    for (const done of asides) done(writeFailure(reason));
    if (this.#inflight.length > 0) {
      this.#doubtful = [...this.#inflight];
      this.#failInflight(writeFailure(reason));
    }
  }
}
