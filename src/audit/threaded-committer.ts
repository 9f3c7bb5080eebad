import type Database from 'better-sqlite3';
import { chainBatch, type BatchPlan } from './batch-encoder.js';
import { canonicalSafe } from './canonical.js';
import { headOf, type ChainHead } from './chain-head.js';
import { chainAt } from './record-stream.js';
import type { Pending } from './commit-queue.js';
import type { CommitHost, Committer } from './committer.js';
import type { LedgerOptions } from './ledger-options.js';
import type { AuditInput } from './record.js';
import { chainLeaves, RowWriter, type EncodeMismatch } from './row-writer.js';
import type { SigningKey } from './signing-keys.js';
import { decodeTokens, encodeTokens, type TokenColumns, type TokenInput } from './token-record.js';
import { compiledWorkerUrl } from './worker-url.js';
import { writeFailure } from './write-failure.js';
import { WriterThread } from './writer-thread.js';
import type { WriterReply } from './writer-worker.js';

/**
 * Batches handed to the writer thread before its first reply: one committing, one waiting, so
 * the worker never idles while the event loop encodes the next (group commit on every reply).
 */
const MAX_IN_FLIGHT = 2;

/**
 * How fast the sums of the worker's busy and idle time forget: each reply scales both by
 * 1 - this, so about the last eight replies count.
 */
const LOAD_WEIGHT = 0.125;
/** The worker is the bound when its event loop was idle for less than this share of its recent time. */
const BEHIND_IDLE_SHARE = 0.1;
/**
 * The event loop is the bound when it was busy for more than this share of the last
 * ELU_WINDOW_MS (its event loop utilisation).
 */
const BUSY_LOOP = 0.9;
const ELU_WINDOW_MS = 100;

/** A batch handed to the writer thread, not yet acknowledged. */
interface InFlight {
  id: number;
  items: Pending[];
  plan: BatchPlan;
  started: number;
  /**
   * What the worker chains, as posted: plain copies of the records (`chain`), or the rows with
   * their leaf hashes (`leaves`). Its head is recomputed from this, never from the records
   * themselves, which their producer could have changed since.
   */
  sent: { inputs: AuditInput[] } | { tokens: TokenColumns } | { args: unknown[] };
}

/** Where the batch after `plan` chains on, as far as the event loop knows it (no chain hash). */
function planned(plan: BatchPlan): Pick<ChainHead, 'seq' | 'clock'> {
  return { seq: plan.seq, clock: plan.headClock };
}

/**
 * A failed decode check's range of records in doubt, widened to the other encoder's records
 * stored unchecked since its own last passed check: the range starts at its encoder's last
 * passed check, and the other thread's records in between were never checked by it.
 */
function widen(m: EncodeMismatch, otherUncheckedFrom: number | undefined): EncodeMismatch {
  return otherUncheckedFrom === undefined || otherUncheckedFrom >= m.suspectFrom
    ? m
    : { seq: m.seq, suspectFrom: otherUncheckedFrom };
}

/** What a thrown value says, whatever it is (String() itself can throw). */
function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  try {
    return String(err);
  } catch {
    return typeof err;
  }
}

/**
 * A record as RowWriter reads it, field by field (inherited fields included), its attributes a
 * plain copy with the same canonical JSON (canonicalSafe); attributes that are not an object
 * (against the type) go as they are, and the structured clone decides.
 */
function plainInput(i: AuditInput): AuditInput {
  const a = i.attrs as unknown;
  const attrs =
    typeof a === 'object' && a !== null ? (canonicalSafe(a) as AuditInput['attrs']) : i.attrs;
  return {
    time: i.time,
    source: i.source,
    type: i.type,
    kind: i.kind,
    fingerprint: i.fingerprint,
    ...(attrs === undefined ? {} : { attrs }),
  };
}

/** A batch that was in flight when the worker died, and the chain hash it would have left. */
interface Doubtful extends InFlight {
  /** Undefined when it could not be recomputed: such a batch is never adopted. */
  chain: Buffer | undefined;
}

/**
 * Commits on a writer thread, which owns the chain: it hashes each batch after the one before,
 * INSERTs it, signs its head and COMMITs on its own connection, and the head moves only when it
 * acknowledged the COMMIT with the chain hash. The event loop plans each batch (its clock, seqs
 * and clock-skew record, batch-encoder.ts). Who encodes the records and hashes their leaves
 * (most of the ledger's cost per record: ~10 us in the drain of issue #19) follows which thread
 * binds, batch by batch:
 *
 * - the worker when the event loop is the bound (busy more than BUSY_LOOP of its last
 *   ELU_WINDOW_MS: a drain of a backlog) and the worker keeps up (its own event loop was idle
 *   for at least BEHIND_IDLE_SHARE of its recent time): the event loop pays only the structured
 *   clone of the records (~0.7 us each), or their columns where all are token records
 *   (Ledger.appendToken, token-record.ts: ~0.05 us each);
 * - otherwise the event loop, which hands over rows with their leaf hashes (the worker chains
 *   them): when the worker is the bound (a pure append, scenario 6 of the benchmark, or a drain
 *   once the worker is saturated; encoding and inserting on one thread would halve a pure
 *   append's rate, docs/benchmarks-notes.md, "Measured, then reverted"), and when the event loop
 *   has time to spare, where its encoding overlaps the worker's fsync instead of adding to it
 *   (the commit latency of scenario 2).
 *
 * Under a backlog the split settles where the worker is busy about 1 - BEHIND_IDLE_SHARE of the
 * time and the event loop does the rest.
 *
 * Either way the worker chains in batch order, so switching costs nothing and both write the
 * same bytes (RowWriter). While batches are in flight `position.tip` is not where the next batch
 * chains on (its chain hash is not known here): it is set to the head whenever nothing is in
 * flight, the only time the inline committer runs. When the worker dies, what it held goes back
 * to the queue and the ledger commits inline; batches it may have committed on its way out are
 * adopted from the file (their chain hashes computed here from their plans).
 */
export class ThreadedCommitter implements Committer {
  readonly kind = 'thread';
  readonly #host: CommitHost;
  readonly #writer: WriterThread;
  /** Reads the file after the worker died (adoption); never writes. */
  readonly #db: Database.Database;
  /** Encodes the batches the event loop encodes itself (no connection: it hands the rows over). */
  readonly #encoder: RowWriter;
  /** Hashes the batches a lost worker held, to recognise them in the file (no connection). */
  readonly #rehash = new RowWriter(undefined);
  /** Batches encoded on the event loop and on the worker (diagnostics, tests). */
  readonly #encodedBy = { eventLoop: 0, writer: 0, columns: 0 };
  readonly #encodes: 'auto' | 'writer' | 'eventLoop';
  /**
   * Decaying sums of the time (ms) the worker's event loop was active and idle, as its replies
   * report them (a new worker, with neither, keeps up).
   */
  #busyMs = 0;
  #idleMs = 0;
  /** The worker's RowWriter.uncheckedFrom, as its last batch reply said. */
  #workerUnchecked: number | undefined;
  /** The event loop's utilisation over the last complete window, and where the window began. */
  #loopBusy = 0;
  #eluMark = performance.eventLoopUtilization();
  #inflight: InFlight[] = [];
  /** Statements handed to the writer thread by execAside, by request id. */
  readonly #aside = new Map<number, (err?: Error) => void>();
  /**
   * Batches that were in flight when the worker died: it may have committed them (a COMMIT in
   * progress finishes even when the thread is terminated). Their records are back in the queue;
   * before the next inline commit, the file says which of them are there.
   */
  #doubtful: Doubtful[] = [];

  /**
   * The writer thread a file ledger commits on, unless `writerThread: false`, the ledger is in
   * memory, or there is no compiled worker (then it commits inline, and says so).
   */
  static open(
    opts: Pick<
      LedgerOptions,
      'path' | 'writerThread' | 'writerWorker' | 'writerEncodes' | 'logger'
    >,
    db: Database.Database,
    host: CommitHost,
    seal: { ledgerId: string; key: SigningKey } | undefined,
  ): ThreadedCommitter | undefined {
    if (opts.writerThread === false || opts.path === ':memory:') return undefined;
    const url = opts.writerWorker ?? compiledWorkerUrl('writer-worker.js');
    if (url) {
      return new ThreadedCommitter(opts.path, url, db, host, seal, opts.writerEncodes ?? 'auto');
    }
    opts.logger?.warn('ledger writer thread unavailable (no compiled worker): committing inline');
    return undefined;
  }

  constructor(
    path: string,
    url: URL,
    db: Database.Database,
    host: CommitHost,
    seal?: { ledgerId: string; key: SigningKey },
    encodes: 'auto' | 'writer' | 'eventLoop' = 'auto',
  ) {
    this.#encodes = encodes;
    this.#host = host;
    this.#db = db;
    this.#encoder = new RowWriter(undefined, (m) =>
      host.encodeMismatch(widen(m, this.#workerUnchecked)),
    );
    this.#writer = new WriterThread(path, url, seal);
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

  /** How many batches each thread encoded and hashed so far (`columns`: of the writer's, sent as token columns). */
  get encodedBy(): { eventLoop: number; writer: number; columns: number } {
    return { ...this.#encodedBy };
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
   * Hands queued batches to the writer thread, up to MAX_IN_FLIGHT unacknowledged, encoded here
   * or only planned (see the class comment); the head moves when the worker acknowledges.
   */
  drain(): void {
    const { queue, position } = this.#host;
    const here = this.#encodes === 'auto' ? this.#encodeHere() : this.#encodes === 'eventLoop';
    while (this.alive && this.#inflight.length < MAX_IN_FLIGHT && queue.length > 0) {
      const previous = this.#inflight.at(-1);
      // With nothing in flight the worker is told where to chain on (inline commits may have
      // moved the head since its last batch); behind a batch in flight it chains on that one.
      const after = previous ? undefined : position.last;
      const items = queue.take(this.#host.batchSize);
      const started = this.#host.started();
      let plan: BatchPlan;
      let posted: Pick<InFlight, 'id' | 'sent'>;
      try {
        plan = this.#host.plan(previous ? planned(previous.plan) : position.last, items);
        posted = here ? this.#postLeaves(after, plan) : this.#postPlan(after, plan, items);
      } catch (err) {
        // This batch never reached the worker: it goes back and the ledger fails closed (as
        // inline). The batches in flight stay: the worker has them, and their replies (the
        // degraded retry waits for them) say whether they committed. Whatever was thrown (a
        // getter of a record may throw anything) is reported as an Error.
        queue.putBack(items);
        this.#host.fail(
          err instanceof Error ? err : new Error(`record not encodable: ${messageOf(err)}`),
        );
        return;
      }
      this.#inflight.push({ ...posted, items, plan, started });
    }
  }

  /**
   * Adds what a reply says of the worker's time since its previous batch reply: how long its
   * event loop was active (the batch, its fsync, the messages) out of how long. Both sums decay
   * at every reply, so their ratio is the recent share.
   */
  #workerLoad(r: WriterReply): void {
    if (r.ok !== true || r.spanMs === undefined) return;
    this.#busyMs = this.#busyMs * (1 - LOAD_WEIGHT) + (r.activeMs ?? 0);
    this.#idleMs = this.#idleMs * (1 - LOAD_WEIGHT) + (r.spanMs - (r.activeMs ?? 0));
  }

  /** Whether the event loop encodes what goes now (see the class comment). */
  #encodeHere(): boolean {
    const elu = performance.eventLoopUtilization(this.#eluMark);
    if (elu.idle + elu.active >= ELU_WINDOW_MS) {
      this.#loopBusy = elu.utilization;
      this.#eluMark = performance.eventLoopUtilization();
    }
    if (this.#loopBusy <= BUSY_LOOP) return true;
    // The worker was hardly ever idle lately: it is the bound.
    return this.#idleMs < BEHIND_IDLE_SHARE * (this.#idleMs + this.#busyMs);
  }

  /** Encodes a planned batch here, with its leaf hashes, and posts the rows. */
  #postLeaves(after: ChainHead | undefined, plan: BatchPlan): Pick<InFlight, 'id' | 'sent'> {
    const rows = this.#encoder;
    rows.beginLeaves(plan.seq - plan.inputs.length, plan.clock);
    for (const input of plan.inputs) rows.add(input);
    const { seq, args } = rows.endLeaves();
    if (seq !== plan.seq) throw new Error(`batch encoded to seq ${seq}, planned ${plan.seq}`);
    const id = this.#writer.leaves(after, plan.clock, seq, args);
    this.#encodedBy.eventLoop++;
    return { id, sent: { args } };
  }

  /**
   * Posts a planned batch for the worker to encode, as plain copies of its records with the
   * same canonical JSON (canonicalSafe, ~0.4 us a record): the structured clone would refuse a
   * function or symbol, and drop what an Error, Date or Map carries in its own properties, which
   * canonical JSON writes; and the copies are what a lost worker's batch is recomputed from.
   */
  #postPlan(
    after: ChainHead | undefined,
    plan: BatchPlan,
    items: readonly Pending[],
  ): Pick<InFlight, 'id' | 'sent'> {
    // A batch of token records only (Ledger.appendToken; none the ledger added in front): their
    // columns, which the worker makes the same records of (token-record.ts), at a twentieth of
    // their JSON text (which cost ~1.1 us a record here). A batch whose columns would not carry
    // one (a key of more than 24 names) goes as copies, as any other.
    const columns =
      plan.extra.length === 0 && items.every((p) => p.token === true)
        ? // Every record of the batch is an appendToken one: tokenInput made it.
          encodeTokens(plan.inputs as unknown as TokenInput[])
        : undefined;
    if (columns !== undefined) {
      const sent = { tokens: columns };
      const id = this.#writer.chain(after, plan.clock, sent, plan.seq);
      this.#encodedBy.writer++;
      this.#encodedBy.columns++;
      return { id, sent };
    }
    const inputs = plan.inputs.map(plainInput);
    const id = this.#writer.chain(after, plan.clock, inputs, plan.seq);
    this.#encodedBy.writer++;
    return { id, sent: { inputs } };
  }

  /** The head `f` leaves after `after`, as the worker computes it, from what was sent to it. */
  #expectedHead(
    f: InFlight,
    after: { seq: number; chain: Buffer },
  ): { seq: number; chain: Buffer } {
    if ('args' in f.sent) {
      const chain = chainLeaves(f.sent.args, after.chain.toString('hex'));
      return { seq: f.plan.seq, chain: Buffer.from(chain, 'hex') };
    }
    const inputs = 'tokens' in f.sent ? decodeTokens(f.sent.tokens) : f.sent.inputs;
    return chainBatch(this.#rehash, after, f.plan.clock, inputs);
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
    const top = this.#db.prepare('SELECT MAX(seq) FROM records').pluck().get() as number | null;
    while (this.#doubtful.length > 0) {
      const b = this.#doubtful[0] as Doubtful;
      const seq = b.plan.seq;
      if ((top ?? 0) < seq) break;
      if (!b.chain || chainAt(this.#db, seq) !== b.chain.toString('hex')) {
        logger?.error(
          { seq },
          'audit ledger file holds a different record where a lost batch ended',
        );
        return false;
      }
      this.#doubtful.shift();
      // By identity: durable records were taken out of the queue when their waiters were told.
      queue.forget(new Set(b.items));
      const written = this.#host.written(b.plan, b.chain);
      position.tip = headOf(written);
      logger?.warn({ seq }, 'adopting a batch the lost writer committed');
      this.#host.committed(b.items, written, b.started);
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
    this.#workerLoad(r);
    this.#workerUnchecked = r.uncheckedFrom;
    const written = this.#host.written(head.plan, this.#chainOf(head, r.chain));
    if (this.#inflight.length === 0) this.#host.position.tip = headOf(written);
    this.#host.committed(head.items, written, head.started);
    // After the head moved: a report that throws must not leave a committed batch in flight.
    for (const m of r.mismatches ?? []) {
      try {
        this.#host.encodeMismatch(widen(m, this.#encoder.uncheckedFrom));
      } catch (err) {
        this.#host.logger?.error({ err: messageOf(err) }, 'encode check report failed');
      }
    }
    // Group commit: whatever queued while the worker was busy goes now, in one batch.
    if (this.#host.queue.length > 0 && !this.#host.closed && !this.#host.degraded) this.drain();
  }

  /**
   * The chain hash the worker acknowledged `f` with; read from the file should a reply lack it
   * (a tokenwatch bug: every batch reply carries it), never an empty head.
   */
  #chainOf(f: InFlight, hex: string | undefined): Buffer {
    if (hex !== undefined) return Buffer.from(hex, 'hex');
    this.#host.logger?.error(
      { seq: f.plan.seq },
      'writer thread acknowledged a batch without its chain hash: reading it from the file',
    );
    // Acknowledged means committed: the file has it (WAL, visible to this connection).
    return Buffer.from(chainAt(this.#db, f.plan.seq) as string, 'hex');
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
      // What the worker would have written: what it was sent, hashed here from the head on. A
      // batch that cannot be (a record that fails to encode, which may be what ended the
      // worker) is never adopted, nor any behind it.
      let after: { seq: number; chain: Buffer } | undefined = this.#host.position.last;
      this.#doubtful = this.#inflight.map((f) => {
        try {
          after = after && this.#expectedHead(f, after);
        } catch (err) {
          this.#host.logger?.error(
            { seq: f.plan.seq, err: messageOf(err) },
            'cannot recompute a lost batch: it will not be adopted',
          );
          after = undefined;
        }
        return { ...f, chain: after?.chain };
      });
      this.#failInflight(writeFailure(reason));
    }
  }
}
