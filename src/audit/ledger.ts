import type Database from 'better-sqlite3';
import { TokenwatchError } from '../errors.js';
import type { AuditInput, AuditRecord, Committed } from './record.js';
import type { TokenInput } from './token-record.js';
import { lastRecordOfType, listRecords, type RecordFilter } from './query.js';
import { LedgerStore } from './store/ledger-store.js';
import { headOf } from './chain-head.js';
import { CommittedChannel } from './committed-channel.js';
import type { DomainEvent } from '../domain/domain-event.js';
import { DegradedWindow } from './degraded-window.js';
import { ledgerIdentity, openLedgerFile, storedHead } from './ledger-file.js';
import { BatchEncoder } from './batch-encoder.js';
import { CommitNotifier } from './commit-notifier.js';
import { CommitQueue, type Pending, type Waiter } from './commit-queue.js';
import type { ChainPosition, CommitHost, Committer, Written } from './committer.js';
import { genesisInput } from './genesis.js';
import { InlineCommitter } from './inline-committer.js';
import type { LedgerHead, LedgerOptions, LedgerState } from './ledger-options.js';
import { ThreadedCommitter } from './threaded-committer.js';
import type { EncodeMismatch } from './row-writer.js';

export type { LedgerHead, LedgerOptions, LedgerState } from './ledger-options.js';

const RETRY_MS = 1000;

/**
 * The append-only audit ledger in one SQLite file: one writer, batched transactions bounded by
 * size (and, inline, by time), WAL with synchronous=FULL (NORMAL can lose the last commits on power loss),
 * every record hash-chained to the previous one.
 *
 * The ledger is a commit queue; a {@link Committer} takes its batches to the file. With a writer
 * thread (the default for a file, threaded-committer.ts), the event loop plans each batch (seqs,
 * clock) and a worker chains, seals and commits it on its own connection, encoding the records
 * too while the event loop is saturated and it has room; the head (`lastSeq`, `head()`) and every
 * listener move only when the worker acknowledged the COMMIT. The rare writes that must share a
 * transaction with other work (genesis, `commitWith`, recovery from degraded) wait for the worker
 * to go idle and commit on the event loop's connection (inline-committer.ts).
 *
 * Fails closed: when a batch cannot commit (SQLITE_FULL, I/O error, locked) the batch rolls
 * back, durable waiters are rejected (webhooks then answer 503 so providers retry), other
 * records stay queued up to `maxPending`, beyond which they are dropped and reported through
 * `onDropped` (a metric). Recovery writes an `audit.degraded` record stating the window and the
 * records dropped in it. A drop while the ledger can write (a queue filled faster than the writer
 * commits: the keyspace watchers wait for room to prevent it, see WatcherSink.room) writes no
 * record of its own: it is counted, and the next window's record includes it.
 */
export class Ledger {
  readonly path: string;
  readonly ledgerId: string;
  readonly #db: Database.Database;
  readonly #opts: LedgerOptions;
  readonly #now: () => number;
  readonly #queue = new CommitQueue();
  /** The chain's head and tip, one value each, shared by both committers. */
  readonly #position: ChainPosition;
  readonly #encoder: BatchEncoder;
  readonly #inline: InlineCommitter;
  readonly #thread: ThreadedCommitter | undefined;
  readonly #notifier: CommitNotifier;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  readonly #window = new DegradedWindow();
  #closed = false;
  #store: LedgerStore | undefined;
  #encodeMismatches = 0;
  /** Every committed batch with the domain events of its records, in commit order. */
  readonly committed: CommittedChannel;

  constructor(opts: LedgerOptions) {
    this.#opts = opts;
    this.committed = new CommittedChannel(opts.logger);
    if (opts.onCommit) this.committed.subscribe(opts.onCommit);
    this.#notifier = new CommitNotifier({ ...opts, channel: this.committed });
    this.path = opts.path;
    this.#now = opts.now ?? Date.now;
    this.#db = openLedgerFile(opts.path);
    const head = storedHead(this.#db);
    this.#position = { last: head, tip: head };

    const now = this.#now();
    const identity = ledgerIdentity(this.#db, now);
    this.ledgerId = identity.ledgerId;
    this.#encoder = new BatchEncoder({
      ledgerId: this.ledgerId,
      now: this.#now,
      skewToleranceMs: opts.clockSkewToleranceMs ?? 1000,
      sealKey: opts.signingKey,
    });
    const host = this.#host();
    this.#inline = new InlineCommitter(this.#db, host);
    if (identity.created && head.seq === 0) {
      this.#inline.commit([
        { input: genesisInput({ ...opts, ledgerId: this.ledgerId }, now), seq: 0 },
      ]);
    }
    this.#thread = ThreadedCommitter.open(
      opts,
      this.#db,
      host,
      opts.signingKey && { ledgerId: this.ledgerId, key: opts.signingKey },
    );
  }

  /** Where commits happen: `thread` (the writer thread) or `inline` (the event loop). */
  get writer(): 'thread' | 'inline' {
    return this.#committer().kind;
  }

  /**
   * The underlying connection, for src/audit/ only (checkpoints, retention, start-up checks) and
   * tests; other folders read through {@link store}.
   */
  get db(): Database.Database {
    return this.#db;
  }

  /** Typed reads of the committed records, for the folders outside src/audit/. */
  get store(): LedgerStore {
    return (this.#store ??= new LedgerStore(this.#db));
  }

  get lastSeq(): number {
    return this.#position.last.seq;
  }

  get degraded(): boolean {
    return this.#window.active;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Seq and chain hash of the last committed record. */
  head(): LedgerHead {
    const last = this.#position.last;
    return { seq: last.seq, chain: Buffer.from(last.chain) };
  }

  /**
   * After a large baseline (src/runtime/memory-release.ts): the writer thread runs a
   * memory-reducing GC of its own heap too. False when the ledger commits inline.
   */
  releaseWriterMemory(): boolean {
    return this.#thread?.thread.releaseMemory() ?? false;
  }

  /**
   * Batches encoded and hashed on the event loop and on the writer thread so far (see
   * threaded-committer.ts); undefined when the ledger commits inline (diagnostics, tests).
   */
  get encodedBy(): { eventLoop: number; writer: number; columns: number } | undefined {
    return this.#thread?.encodedBy;
  }

  /** The writer thread's V8 heap, undefined when the ledger commits inline (diagnostics, tests). */
  async writerHeap(): Promise<{ usedHeapSize: number; totalHeapSize: number } | undefined> {
    return this.#thread?.thread.heapStatistics();
  }

  /** Calls `listener` after every commit with the new head (checkpoints count records). */
  addCommitListener(listener: (head: LedgerHead) => void): void {
    this.#notifier.addHeadListener(listener);
  }

  state(): LedgerState {
    return {
      ledgerId: this.ledgerId,
      lastSeq: this.#position.last.seq,
      pending: this.#pending(),
      degraded: this.degraded,
      degradedReason: this.#window.reason,
      degradedSince: this.#window.since,
      droppedTotal: this.#window.droppedTotal,
      encodeMismatches: this.#encodeMismatches,
    };
  }

  /** Queue a record; it commits with the next batch. Fire-and-forget (keyspace hot path). */
  append(input: AuditInput, event?: DomainEvent): void {
    this.#enqueue(event ? { input, seq: 0, event } : { input, seq: 0 });
  }

  /**
   * append() of a token record (tokenInput, the keyspace recorder's: nearly all of a busy
   * ledger's records). A batch of them only goes to the writer thread as columns (encodeTokens),
   * the writer making the same records of them with tokenInput: same canonical JSON, same stored
   * bytes (ledger.test.ts, recorder-plain.test.ts).
   */
  appendToken(input: TokenInput, event?: DomainEvent): void {
    this.#enqueue(event ? { input, seq: 0, event, token: true } : { input, seq: 0, token: true });
  }

  #enqueue(p: Pending): void {
    if (this.#closed) throw new TokenwatchError('ERR_AUDIT_CLOSED', 'the audit ledger is closed');
    if (this.#pending() >= this.#opts.maxPending) {
      this.#drop(1);
      return;
    }
    this.#queue.push(p);
    this.#schedule();
  }

  /**
   * Queue records and resolve once they committed (what a webhook reply waits for). Rejects with
   * ERR_AUDIT_DEGRADED at once while the ledger cannot write, so the caller answers 503.
   * `events[i]`, when given, is the domain event `inputs[i]` was made from.
   */
  appendDurable(
    inputs: readonly AuditInput[],
    events?: readonly (DomainEvent | undefined)[],
  ): Promise<Committed[]> {
    if (this.#closed) {
      return Promise.reject(new TokenwatchError('ERR_AUDIT_CLOSED', 'the audit ledger is closed'));
    }
    if (this.degraded) return Promise.reject(this.#window.error());
    if (inputs.length === 0) return Promise.resolve([]);
    return new Promise<Committed[]>((resolve, reject) => {
      const waiter: Waiter = { remaining: inputs.length, items: [], resolve, reject };
      for (const [i, input] of inputs.entries()) {
        const event = events?.[i];
        const p: Pending = event ? { input, seq: 0, waiter, event } : { input, seq: 0, waiter };
        waiter.items.push(p);
        this.#queue.push(p);
      }
      this.#schedule(true);
    });
  }

  /** Commit everything queued now (synchronously). Returns false when the ledger is degraded. */
  flush(): boolean {
    this.#clearTimers();
    if (this.degraded) {
      this.#retryDegraded();
      if (this.degraded) return false;
    }
    if (this.#thread?.alive) {
      const outcome = this.#thread.flush();
      if (outcome === 'done') return true;
      if (outcome === 'degraded') return false;
    }
    while (this.#queue.length > 0) {
      const batch = this.#queue.peek(this.#opts.batchSize);
      if (!this.#inline.tryCommit(batch)) return false;
      this.#queue.remove(batch.length);
    }
    return true;
  }

  /**
   * Flushes the queue, then commits `inputs` and runs `work` on the connection in the same
   * transaction (retention: the purge record and the DELETE it describes commit together or
   * not at all). Throws ERR_AUDIT_DEGRADED while the ledger cannot write.
   */
  commitWith(inputs: readonly AuditInput[], work: (db: Database.Database) => void): Committed[] {
    if (this.#closed) throw new TokenwatchError('ERR_AUDIT_CLOSED', 'the audit ledger is closed');
    if (!this.flush()) throw this.#window.error();
    const items: Pending[] = inputs.map((input) => ({ input, seq: 0 }));
    return this.#inline.commit(items, work);
  }

  /**
   * Runs one statement outside the chain (a checkpoint row) on the connection that writes: the
   * writer thread's, after what it holds, so the event loop never waits on its write lock; or
   * now, inline. `done` gets the error, or undefined once the statement committed.
   */
  execAside(sql: string, params: unknown[], done: (err?: Error) => void): void {
    this.#committer().execAside(sql, params, done);
  }

  /** Waits until the writer thread has answered what was handed to it (queued records stay). */
  settle(): void {
    this.#committer().settle();
  }

  /**
   * Runs a PRAGMA on every connection that writes the ledger (fault drills and tests limit the
   * file with max_page_count, which is per connection).
   */
  pragma(sql: string): void {
    this.#db.pragma(sql);
    this.#thread?.pragma(sql);
  }

  /** Flush and close. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    try {
      this.#thread?.close();
    } catch (err) {
      this.#opts.logger?.error(
        { err: (err as Error).message },
        'ledger writer thread close failed',
      );
    }
    this.#clearTimers();
    let lost = 0;
    for (const p of this.#queue.clear()) {
      if (p.waiter)
        p.waiter.reject(new TokenwatchError('ERR_AUDIT_CLOSED', 'the audit ledger closed'));
      else lost += 1;
    }
    if (lost > 0) {
      // Closing while degraded: these were never written. Counted, logged; the next start's
      // `tokenwatch_crashed` gap covers the window (SOC 2 CC7.2: gaps must be visible).
      this.#drop(lost);
      this.#opts.logger?.error({ dropped: lost }, 'audit ledger closed with unwritten records');
    }
    try {
      this.#db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // best effort: the WAL is replayed on next open anyway
    }
    this.#db.close();
  }

  /** Read records in seq order (for `audit list` and tests). */
  list(filter: RecordFilter = {}): AuditRecord[] {
    return listRecords(this.#db, filter);
  }

  /** The newest committed record of exactly `type`, before `beforeSeq` when given (correlator restore). */
  lastOfType(type: string, beforeSeq?: number): AuditRecord | undefined {
    return lastRecordOfType(this.#db, type, beforeSeq);
  }

  /** The writer thread while it is alive, else the event loop. */
  #committer(): Committer {
    return this.#thread?.alive ? this.#thread : this.#inline;
  }

  /** Records queued or handed to the writer thread and not yet acknowledged. */
  #pending(): number {
    return this.#queue.length + (this.#thread?.inflight ?? 0);
  }

  /** What the committers see of the ledger. */
  #host(): CommitHost {
    const isDegraded = (): boolean => this.degraded;
    const isClosed = (): boolean => this.#closed;
    return {
      queue: this.#queue,
      position: this.#position,
      batchSize: this.#opts.batchSize,
      logger: this.#opts.logger,
      get degraded() {
        return isDegraded();
      },
      get closed() {
        return isClosed();
      },
      started: () => this.#notifier.started(),
      encode: (items, rows) => this.#encoder.encode(this.#position.tip, items, rows),
      plan: (tip, items) => this.#encoder.plan(tip, items),
      written: (plan, chain) => this.#encoder.written(plan, chain, false),
      committed: (items, written, started) => this.#onCommitted(items, written, started),
      fail: (err) => this.#enterDegraded(err),
      schedule: () => this.#schedule(),
      encodeMismatch: (m) => this.#encodeMismatch(m),
    };
  }

  /** `urgent`: someone waits for this commit (a webhook reply): commit on the next turn. */
  #schedule(urgent = false): void {
    if (this.degraded) return; // the retry timer drives commits while degraded
    const turn = this.#committer().nextTurn(urgent);
    if (turn === 'now') {
      this.#immediate ??= setImmediate(() => {
        this.#immediate = undefined;
        this.#drain();
      });
    } else if (turn === 'later') {
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined;
        this.#drain();
      }, this.#opts.flushIntervalMs);
    }
  }

  #drain(): void {
    if (this.#closed) return;
    if (this.degraded) this.#retryDegraded();
    else this.#committer().drain();
  }

  /** After a COMMIT: the head moves, then everyone waiting hears of it. */
  #onCommitted(items: Pending[], written: Written, started: number): Committed[] {
    this.#position.last = headOf(written);
    return this.#notifier.notify(items, written, started, this.head());
  }

  /**
   * While degraded, every retry tries to commit the `audit.degraded` record that states the
   * window together with the next queued batch: the first commit that works ends the window.
   */
  #retryDegraded(): void {
    this.settle(); // an aside statement on the worker would hold the write lock
    if (this.#thread && !this.#thread.adoptLateCommits()) return;
    const now = this.#now();
    const marker: Pending = { input: this.#window.marker(now), seq: 0 };
    const batch = [marker, ...this.#queue.peek(this.#opts.batchSize - 1)];
    if (!this.#inline.tryCommit(batch)) return;
    this.#queue.remove(batch.length - 1);
    const covered = this.#window.close(now); // not inside logger?.(): that skips its arguments
    this.#opts.logger?.warn(covered, 'audit ledger writable again');
    this.#opts.onDegradedChange?.(false, undefined);
    if (this.#queue.length > 0) this.#schedule();
  }

  #enterDegraded(err: unknown): void {
    const opened = this.#window.open(this.#now(), err);
    if (opened !== undefined) {
      this.#opts.logger?.error(
        { err: opened },
        'audit ledger cannot write: degraded, failing closed',
      );
      this.#opts.onDegradedChange?.(true, opened);
    }
    // Durable waiters learn at once so the outside party retries; their records leave the queue.
    this.#queue.rejectDurable(() => this.#window.error());
    this.#clearTimers();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#drain();
    }, RETRY_MS);
    this.#timer.unref();
  }

  /**
   * A codec bug caught by the sampled check: the record itself is stored as text and every record
   * after it is checked, but those since the last check that passed went to the file unchecked.
   * Verification would report them as damaged: say so now, where an operator sees it, not first
   * in an auditor's verify (docs/runbook.md#audit-encoding-check-failed).
   */
  #encodeMismatch(m: EncodeMismatch): void {
    this.#encodeMismatches += 1;
    this.#opts.logger?.error(
      { seq: m.seq, suspectFrom: m.suspectFrom, suspectTo: m.seq - 1 },
      'audit ledger: the compact encoding of a record failed its decode check (a tokenwatch bug); records since the last passed check may not verify',
    );
    this.#opts.onEncodeMismatch?.(m);
  }

  #drop(n: number): void {
    this.#window.dropped(n);
    this.#opts.onDropped?.(n);
  }

  #clearTimers(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
  }
}
