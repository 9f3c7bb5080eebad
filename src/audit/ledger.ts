import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { TokenwatchError } from '../errors.js';
import { LEDGER_FORMAT_VERSION, ZERO_HASH } from './canonical.js';
import type { AuditInput, AuditRecord, Committed } from './record.js';
import { lastRecordOfType, listRecords, type RecordFilter } from './query.js';
import { LedgerStore } from './store/ledger-store.js';
import { headOf, type ChainHead } from './chain-head.js';
import { CommittedChannel, type CommittedListener } from './committed-channel.js';
import type { DomainEvent } from '../domain/domain-event.js';
import { DegradedWindow } from './degraded-window.js';
import { ledgerIdentity, openLedgerFile } from './ledger-file.js';
import { RowWriter } from './row-writer.js';
import { WriterThread } from './writer-thread.js';
import { compiledWorkerUrl } from './worker-url.js';
import type { WriterReply } from './writer-worker.js';
import { INSERT_SEAL_SQL, signSeal } from './seal.js';
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
  now?: () => number;
  logger?: Logger;
  /**
   * The first subscriber of {@link Ledger.committed}, subscribed before the genesis record
   * commits.
   */
  onCommit?: CommittedListener;
  /** Called after each committed transaction with its size and wall-clock span (tracing). */
  onCommitTimed?: (records: number, startMs: number, endMs: number) => void;
  /** Called when the ledger enters or leaves the degraded (cannot write) state. */
  onDegradedChange?: (degraded: boolean, reason: string | undefined) => void;
  /** Called when queued records had to be dropped (the caller must cover them with a gap). */
  onDropped?: (count: number) => void;
}

/** The last committed record: what a checkpoint signs. */
export interface LedgerHead {
  seq: number;
  chain: Buffer;
}

interface Pending {
  input: AuditInput;
  seq: number;
  waiter?: Waiter;
  event?: DomainEvent;
}

interface Waiter {
  remaining: number;
  items: Pending[];
  resolve: (c: Committed[]) => void;
  reject: (e: Error) => void;
}

interface Written {
  seq: number;
  chain: Buffer;
  clock: number;
  extra: Committed[];
  /** The encoded rows when a writer thread inserts them. */
  args: unknown[];
  /** The `seals` row of the batch head (SEAL_COLUMNS order), when the ledger signs. */
  seal: unknown[] | undefined;
}

/** A batch handed to the writer thread, not yet acknowledged. */
interface InFlight {
  id: number;
  items: Pending[];
  written: Written;
  started: number;
}

export interface LedgerState {
  ledgerId: string;
  lastSeq: number;
  pending: number;
  degraded: boolean;
  degradedReason: string | undefined;
  degradedSince: number | undefined;
  droppedTotal: number;
}

const RETRY_MS = 1000;
/**
 * Batches handed to the writer thread before its first reply: one committing, one waiting, so
 * the worker never idles while the event loop encodes the next (group commit on every reply).
 */
const MAX_IN_FLIGHT = 2;
/**
 * The append-only audit ledger in one SQLite file: one writer, batched transactions bounded by
 * size (and, inline, by time), WAL with synchronous=FULL (NORMAL can lose the last commits on power loss),
 * every record hash-chained to the previous one.
 *
 * With a writer thread (the default for a file), the event loop encodes and hashes each batch and
 * a worker commits it on its own connection; the head (`lastSeq`, `head()`) and every listener
 * move only when the worker acknowledged the COMMIT. The rare writes that must share a
 * transaction with other work (genesis, `commitWith`, recovery from degraded) wait for the worker
 * to go idle and commit on the event loop's connection.
 *
 * Fails closed: when a batch cannot commit (SQLITE_FULL, I/O error, locked) the batch rolls
 * back, durable waiters are rejected (webhooks then answer 503 so providers retry), other
 * records stay queued up to `maxPending`, beyond which they are dropped and reported through
 * `onDropped` so the caller records a gap. Recovery writes an `audit.degraded` record.
 */
export class Ledger {
  readonly path: string;
  readonly ledgerId: string;
  readonly #db: Database.Database;
  readonly #opts: LedgerOptions;
  readonly #now: () => number;
  readonly #skewToleranceMs: number;
  readonly #rows: RowWriter;
  readonly #writer: WriterThread | undefined;
  /** Encoder for the writer thread (no connection: it hands the rows over). */
  readonly #encoder = new RowWriter();
  #inflight: InFlight[] = [];
  /** Statements handed to the writer thread by execAside, by request id. */
  readonly #aside = new Map<number, (err?: Error) => void>();
  /**
   * Batches that were in flight when the worker died: it may have committed them (a COMMIT in
   * progress finishes even when the thread is terminated). Their records are back in the queue;
   * before the next inline commit, the file says which of them are there.
   */
  #doubtful: InFlight[] = [];
  readonly #transact: (items: Pending[], work?: (db: Database.Database) => void) => Written;
  readonly #insertSeal: Database.Statement;
  readonly #commitListeners: ((head: LedgerHead) => void)[] = [];
  #queue: Pending[] = [];
  /** The head of what committed. */
  #last: ChainHead;
  /** The head after every batch handed to the writer thread: where the next batch chains on. */
  #tip: ChainHead;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  readonly #window = new DegradedWindow();
  readonly #sealKey: SigningKey | undefined;
  #closed = false;
  #store: LedgerStore | undefined;
  /** Every committed batch with the domain events of its records, in commit order. */
  readonly committed: CommittedChannel;

  constructor(opts: LedgerOptions) {
    this.#opts = opts;
    this.committed = new CommittedChannel(opts.logger);
    if (opts.onCommit) this.committed.subscribe(opts.onCommit);
    this.path = opts.path;
    this.#now = opts.now ?? Date.now;
    this.#skewToleranceMs = opts.clockSkewToleranceMs ?? 1000;
    this.#db = openLedgerFile(opts.path);
    this.#rows = new RowWriter(this.#db);
    this.#insertSeal = this.#db.prepare(INSERT_SEAL_SQL);
    const last = this.#db
      .prepare('SELECT seq, time, chain FROM records ORDER BY seq DESC LIMIT 1')
      .get() as { seq: number; time: number; chain: Buffer } | undefined;
    // A restart after the clock went back is a jump too: start from the last record's time.
    this.#last = { seq: last?.seq ?? 0, chain: last?.chain ?? ZERO_HASH, clock: last?.time };
    this.#tip = this.#last;
    this.#transact = this.#db.transaction(
      (items: Pending[], work?: (db: Database.Database) => void) => {
        const written = this.#writeRows(items, this.#rows);
        if (written.seal) this.#insertSeal.run(...written.seal);
        work?.(this.#db);
        return written;
      },
    );

    const now = this.#now();
    const identity = ledgerIdentity(this.#db, now);
    this.ledgerId = identity.ledgerId;
    this.#sealKey = opts.signingKey;
    if (identity.created && this.#last.seq === 0) {
      const genesis: AuditInput = {
        time: now,
        source: 'system',
        type: 'ledger.genesis',
        attrs: {
          ledgerId: this.ledgerId,
          formatVersion: LEDGER_FORMAT_VERSION,
          hmacKeyIds: [...opts.hmacKeyIds],
          signingKeyId: opts.signingKeyId ?? opts.signingKey?.keyId,
          retentionDays: opts.retentionDays,
          batchSeals: opts.signingKey ? 1 : undefined,
        },
      };
      this.#commit([{ input: genesis, seq: 0 }]);
    }
    const url =
      opts.writerThread === false || opts.path === ':memory:'
        ? undefined
        : (opts.writerWorker ?? compiledWorkerUrl('writer-worker.js'));
    if (url) {
      this.#writer = new WriterThread(opts.path, url);
      this.#writer.onReply = (r) => this.#onReply(r);
      this.#writer.onDeath = (reason) => this.#onWriterDeath(reason);
    } else if (opts.writerThread !== false && opts.path !== ':memory:') {
      opts.logger?.warn('ledger writer thread unavailable (no compiled worker): committing inline');
    }
  }

  /** Where commits happen: `thread` (the writer thread) or `inline` (the event loop). */
  get writer(): 'thread' | 'inline' {
    return this.#threaded() ? 'thread' : 'inline';
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
    return this.#last.seq;
  }

  get degraded(): boolean {
    return this.#window.active;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Seq and chain hash of the last committed record. */
  head(): LedgerHead {
    return { seq: this.#last.seq, chain: Buffer.from(this.#last.chain) };
  }

  /** Calls `listener` after every commit with the new head (checkpoints count records). */
  addCommitListener(listener: (head: LedgerHead) => void): void {
    this.#commitListeners.push(listener);
  }

  state(): LedgerState {
    return {
      ledgerId: this.ledgerId,
      lastSeq: this.#last.seq,
      pending: this.#queue.length + this.#inflightRecords(),
      degraded: this.degraded,
      degradedReason: this.#window.reason,
      degradedSince: this.#window.since,
      droppedTotal: this.#window.droppedTotal,
    };
  }

  /** Queue a record; it commits with the next batch. Fire-and-forget (keyspace hot path). */
  append(input: AuditInput, event?: DomainEvent): void {
    if (this.#closed) throw new TokenwatchError('ERR_AUDIT_CLOSED', 'the audit ledger is closed');
    if (this.#queue.length + this.#inflightRecords() >= this.#opts.maxPending) {
      this.#drop(1);
      return;
    }
    this.#queue.push(event ? { input, seq: 0, event } : { input, seq: 0 });
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
    for (let writer = this.#threaded(); writer; writer = this.#threaded()) {
      if (this.#queue.length > 0 && this.#inflight.length < MAX_IN_FLIGHT) this.#send(writer);
      else if (writer.outstanding === 0) return true;
      else if (!writer.waitReply() && this.#inflight.length > 0) {
        this.#onWriterDeath(writer.dead ?? 'writer thread is gone');
      }
      if (this.degraded) return false;
    }
    while (this.#queue.length > 0) {
      const batch = this.#queue.slice(0, this.#opts.batchSize);
      if (!this.#tryCommit(batch)) return false;
      this.#queue.splice(0, batch.length);
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
    return this.#commit(items, work);
  }

  /**
   * Runs one statement outside the chain (a checkpoint row) on the connection that writes: the
   * writer thread's, after what it holds, so the event loop never waits on its write lock; or
   * now, inline. `done` gets the error, or undefined once the statement committed.
   */
  execAside(sql: string, params: unknown[], done: (err?: Error) => void): void {
    const writer = this.#threaded();
    if (!writer) {
      let error: Error | undefined;
      try {
        this.#db.prepare(sql).run(...params);
      } catch (err) {
        error = err as Error;
      }
      done(error);
      return;
    }
    this.#aside.set(writer.exec(sql, params), done);
  }

  /** Waits until the writer thread has answered what was handed to it (queued records stay). */
  settle(): void {
    const writer = this.#threaded();
    if (!writer) return;
    const target = writer.lastPosted; // replies may send more batches: not waited for
    while (writer.lastAnswered < target && writer.waitReply());
  }

  /**
   * Runs a PRAGMA on every connection that writes the ledger (fault drills and tests limit the
   * file with max_page_count, which is per connection).
   */
  pragma(sql: string): void {
    this.#db.pragma(sql);
    if (this.#threaded()) this.#writer?.pragmaSync(sql);
  }

  /** Flush and close. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    try {
      this.#writer?.close();
    } catch (err) {
      this.#opts.logger?.error(
        { err: (err as Error).message },
        'ledger writer thread close failed',
      );
    }
    this.#clearTimers();
    let lost = 0;
    for (const p of this.#queue) {
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
    this.#queue = [];
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

  /** `urgent`: someone waits for this commit (a webhook reply): commit on the next turn. */
  #schedule(urgent = false): void {
    if (this.degraded) return; // the retry timer drives commits while degraded
    if (this.#threaded()) {
      // Group commit: with nothing in flight, what this turn queued goes at its end; while a
      // batch commits, its reply sends what queued meanwhile (a full batch goes beside it).
      const idle = this.#inflight.length === 0;
      const full =
        this.#queue.length >= this.#opts.batchSize && this.#inflight.length < MAX_IN_FLIGHT;
      if (idle || full) {
        this.#immediate ??= setImmediate(() => {
          this.#immediate = undefined;
          this.#drain();
        });
      }
      return;
    }
    if (urgent || this.#queue.length >= this.#opts.batchSize) {
      this.#immediate ??= setImmediate(() => {
        this.#immediate = undefined;
        this.#drain();
      });
    } else {
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined;
        this.#drain();
      }, this.#opts.flushIntervalMs);
    }
  }

  #drain(): void {
    if (this.#closed) return;
    if (this.degraded) {
      this.#retryDegraded();
      return;
    }
    const writer = this.#threaded();
    if (writer) {
      this.#send(writer);
      return;
    }
    const batch = this.#queue.slice(0, this.#opts.batchSize);
    if (batch.length === 0) return;
    if (!this.#tryCommit(batch)) return;
    this.#queue.splice(0, batch.length);
    if (this.#queue.length > 0) this.#schedule();
  }

  #tryCommit(batch: Pending[]): boolean {
    try {
      this.#commit(batch);
      return true;
    } catch (err) {
      this.#enterDegraded(err);
      return false;
    }
  }

  /**
   * Writes `items` (and `work`) in one transaction; throws only when the transaction failed and
   * rolled back. Listener errors are logged, never thrown: a batch that committed must not be
   * retried (it would be written twice).
   */
  #commit(items: Pending[], work?: (db: Database.Database) => void): Committed[] {
    const started = this.#opts.onCommitTimed ? Date.now() : 0;
    const written = this.#transact(items, work);
    this.#tip = headOf(written);
    return this.#committed(items, written, started);
  }

  /** Records handed to the writer thread and not yet acknowledged (at most MAX_IN_FLIGHT batches). */
  #inflightRecords(): number {
    let n = 0;
    for (const f of this.#inflight) n += f.items.length;
    return n;
  }

  /** The writer thread is there and alive (else commits run inline). */
  #threaded(): WriterThread | undefined {
    return this.#writer && !this.#writer.dead ? this.#writer : undefined;
  }

  /**
   * Encodes and hashes queued batches and hands them to the writer thread, up to MAX_IN_FLIGHT
   * unacknowledged. The tip moves now; the head when the worker acknowledges.
   */
  #send(writer: WriterThread): void {
    while (this.#inflight.length < MAX_IN_FLIGHT && this.#queue.length > 0) {
      const items = this.#queue.splice(0, this.#opts.batchSize);
      const started = this.#opts.onCommitTimed ? Date.now() : 0;
      let written: Written;
      try {
        written = this.#writeRows(items, this.#encoder);
      } catch (err) {
        // Nothing left the event loop: the batch goes back, the ledger fails closed (as inline).
        this.#queue = items.concat(this.#queue);
        this.#failInflight(err as Error);
        return;
      }
      this.#tip = headOf(written);
      const id = writer.write(written.args, written.seal);
      written.args = [];
      this.#inflight.push({ id, items, written, started });
    }
  }

  /** The writer thread's reply to the oldest batch in flight. */
  #onReply(r: WriterReply): void {
    const aside = this.#aside.get(r.id);
    if (aside) {
      this.#aside.delete(r.id);
      aside(r.ok ? undefined : Object.assign(new Error(r.message), { code: r.code }));
      return;
    }
    const head = this.#inflight[0];
    if (!head || head.id !== r.id) return; // refused behind a failure that was handled already
    if (!r.ok) {
      this.#writer?.resume();
      this.#failInflight(
        Object.assign(new Error(r.message), { code: r.code ?? 'ERR_AUDIT_WRITE' }),
      );
      return;
    }
    this.#inflight.shift();
    this.#committed(head.items, head.written, head.started);
    // Group commit: whatever queued while the worker was busy goes now, in one batch.
    if (this.#queue.length > 0 && !this.#closed && !this.degraded) {
      const writer = this.#threaded();
      if (writer) this.#send(writer);
    }
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
    this.#queue = items.concat(this.#queue);
    this.#tip = this.#last;
    this.#enterDegraded(err);
  }

  /**
   * Adopts doubtful batches the file holds (same last seq and chain): their records leave the
   * queue and count as committed. Returns false when the file disagrees with every explanation
   * (the next retry reads it again).
   */
  #adoptLateCommits(): boolean {
    if (this.#doubtful.length === 0) return true;
    const rowAt = this.#db.prepare('SELECT chain FROM records WHERE seq = ?').pluck();
    const top = this.#db.prepare('SELECT MAX(seq) FROM records').pluck().get() as number | null;
    while (this.#doubtful.length > 0) {
      const b = this.#doubtful[0] as InFlight;
      if ((top ?? 0) < b.written.seq) break;
      const chain = rowAt.get(b.written.seq) as Buffer | undefined;
      if (!chain?.equals(b.written.chain)) {
        this.#opts.logger?.error(
          { seq: b.written.seq },
          'audit ledger file holds a different record where a lost batch ended',
        );
        return false;
      }
      this.#doubtful.shift();
      // By identity: durable records were taken out of the queue when their waiters were told.
      const adopted = new Set(b.items);
      this.#queue = this.#queue.filter((p) => !adopted.has(p));
      this.#tip = headOf(b.written);
      this.#opts.logger?.warn({ seq: b.written.seq }, 'adopting a batch the lost writer committed');
      this.#committed(b.items, b.written, b.started);
    }
    this.#doubtful = [];
    return true;
  }

  /** The worker is gone: what it held failed; from now on the ledger commits inline. */
  #onWriterDeath(reason: string): void {
    this.#opts.logger?.error({ err: reason }, 'ledger writer thread gone: committing inline');
    const asides = [...this.#aside.values()];
    this.#aside.clear();
    for (const done of asides) done(Object.assign(new Error(reason), { code: 'ERR_AUDIT_WRITE' }));
    if (this.#inflight.length > 0) {
      this.#doubtful = [...this.#inflight];
      this.#failInflight(Object.assign(new Error(reason), { code: 'ERR_AUDIT_WRITE' }));
    }
  }

  /** Bookkeeping after a COMMIT: head, waiters, listeners. */
  #committed(items: Pending[], written: Written, started: number): Committed[] {
    this.#last = headOf(written);
    try {
      this.#opts.onCommitTimed?.(items.length, started, Date.now());
    } catch (err) {
      this.#opts.logger?.error({ err: (err as Error).message }, 'audit onCommitTimed failed');
    }
    const committed: Committed[] = [...written.extra];
    for (const p of items) committed.push(committedOf(p));
    for (const p of items) {
      const w = p.waiter;
      if (w && --w.remaining === 0) w.resolve(w.items.map(committedOf));
    }
    this.committed.publish(committed);
    const head = this.head();
    for (const l of this.#commitListeners) {
      try {
        l(head);
      } catch (err) {
        this.#opts.logger?.error({ err: (err as Error).message }, 'audit commit listener failed');
      }
    }
    return committed;
  }

  /**
   * Hashes the rows after the tip and inserts them (`rows` with a connection, inside the
   * transaction) or returns them encoded (the writer thread's encoder). Leaves head and tip.
   */
  #writeRows(items: Pending[], rows: RowWriter): Written {
    const clock = this.#now();
    const extra: Committed[] = [];
    rows.begin(this.#tip.seq, this.#tip.chain, clock);
    const previous = this.#tip.clock;
    const jumped = previous !== undefined && clock < previous - this.#skewToleranceMs;
    if (jumped) {
      // Seq stays authoritative; the jump is stated in the chain so an auditor sees why record
      // times go backwards here (SOC 2 CC7.2 looks for gaps in sequence or time).
      const input: AuditInput = {
        time: clock,
        source: 'system',
        type: 'audit.clock_skew',
        attrs: {
          previousClock: previous,
          clock,
          backwardsMs: previous - clock,
          afterSeq: this.#tip.seq,
        },
      };
      extra.push({ seq: rows.add(input), input });
    }
    for (const p of items) p.seq = rows.add(p.input);
    const { seq, chain, args } = rows.end();
    // One signature per batch over its head: with the chain it covers every row of the batch
    // (and all before), so the cost is per commit, not per record.
    const key = this.#sealKey;
    const seal = key && [
      seq,
      chain,
      clock,
      key.keyId,
      signSeal(this.ledgerId, seq, chain.toString('hex'), clock, key),
    ];
    // High-water mark unless a jump was flagged: steps inside the tolerance cannot add up.
    return {
      seq,
      chain,
      clock: jumped || previous === undefined ? clock : Math.max(clock, previous),
      extra,
      args,
      seal,
    };
  }

  /**
   * While degraded, every retry tries to commit the `audit.degraded` record that states the
   * window together with the next queued batch: the first commit that works ends the window.
   */
  #retryDegraded(): void {
    this.settle(); // an aside statement on the worker would hold the write lock
    if (!this.#adoptLateCommits()) return;
    const now = this.#now();
    const marker: Pending = { input: this.#window.marker(now), seq: 0 };
    const batch = [marker, ...this.#queue.slice(0, this.#opts.batchSize - 1)];
    if (!this.#tryCommit(batch)) return;
    this.#queue.splice(0, batch.length - 1);
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
    const failed = new Set<Waiter>();
    for (const p of this.#queue) if (p.waiter) failed.add(p.waiter);
    if (failed.size > 0) {
      this.#queue = this.#queue.filter((p) => p.waiter === undefined);
      for (const w of failed) w.reject(this.#window.error());
    }
    this.#clearTimers();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#drain();
    }, RETRY_MS);
    this.#timer.unref();
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

function committedOf(p: Pending): Committed {
  return p.event ? { seq: p.seq, input: p.input, event: p.event } : { seq: p.seq, input: p.input };
}
