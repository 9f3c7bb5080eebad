import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { TokenwatchError } from '../errors.js';
import {
  LEDGER_FORMAT_VERSION,
  ZERO_HASH,
  canonicalJson,
  canonicalRecord,
  chainHash,
  leafHash,
} from './canonical.js';
import type { AuditInput, AuditRecord, Committed } from './record.js';
import { listRecords, type RecordFilter } from './query.js';
import { migrate } from './schema.js';

export interface LedgerOptions {
  path: string;
  batchSize: number;
  flushIntervalMs: number;
  maxPending: number;
  /** Ids of the HMAC keys, stated in the genesis record. */
  hmacKeyIds: readonly string[];
  now?: () => number;
  logger?: Logger;
  /** Called after every committed batch (metrics, correlation evidence). */
  onCommit?: (batch: readonly Committed[]) => void;
  /** Called when the ledger enters or leaves the degraded (cannot write) state. */
  onDegradedChange?: (degraded: boolean, reason: string | undefined) => void;
  /** Called when queued records had to be dropped (the caller must cover them with a gap). */
  onDropped?: (count: number) => void;
}

interface Pending {
  input: AuditInput;
  seq: number;
  waiter?: Waiter;
}

interface Waiter {
  remaining: number;
  items: Pending[];
  resolve: (c: Committed[]) => void;
  reject: (e: Error) => void;
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
 * The append-only audit ledger in one SQLite file: one writer, batched transactions bounded by
 * size and time, WAL with synchronous=FULL (NORMAL can lose the last commits on power loss),
 * every record hash-chained to the previous one.
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
  readonly #insert: Database.Statement;
  readonly #commitBatch: (items: Pending[]) => void;
  #queue: Pending[] = [];
  #lastSeq: number;
  #lastChain: Buffer;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #degradedSince: number | undefined;
  #degradedReason: string | undefined;
  #droppedTotal = 0;
  #droppedInWindow = 0;
  #closed = false;

  constructor(opts: LedgerOptions) {
    this.#opts = opts;
    this.path = opts.path;
    this.#now = opts.now ?? Date.now;
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
    this.#db = new Database(opts.path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    this.#db.pragma('busy_timeout = 5000');
    migrate(this.#db);
    this.#insert = this.#db.prepare(
      'INSERT INTO records (seq, time, source, type, kind, fingerprint, attrs, leaf, chain) VALUES (?,?,?,?,?,?,?,?,?)',
    );
    const last = this.#db
      .prepare('SELECT seq, chain FROM records ORDER BY seq DESC LIMIT 1')
      .get() as { seq: number; chain: Buffer } | undefined;
    this.#lastSeq = last?.seq ?? 0;
    this.#lastChain = last?.chain ?? ZERO_HASH;
    this.#commitBatch = this.#db.transaction((items: Pending[]) => {
      let seq = this.#lastSeq;
      let chain = this.#lastChain;
      for (const p of items) {
        seq += 1;
        const i = p.input;
        const attrs = canonicalJson(i.attrs ?? {});
        const kind = i.kind ?? null;
        const fingerprint = i.fingerprint ?? null;
        const time = Math.trunc(i.time);
        const leaf = leafHash(
          canonicalRecord({ seq, time, source: i.source, type: i.type, kind, fingerprint, attrs }),
        );
        chain = chainHash(chain, leaf);
        this.#insert.run(seq, time, i.source, i.type, kind, fingerprint, attrs, leaf, chain);
        p.seq = seq;
      }
      this.#lastSeq = seq;
      this.#lastChain = chain;
    });

    const existing = this.#db.prepare("SELECT v FROM meta WHERE k = 'ledger_id'").get() as
      { v: string } | undefined;
    if (existing) {
      this.ledgerId = existing.v;
    } else {
      this.ledgerId = randomUUID();
      const now = this.#now();
      this.#db.transaction(() => {
        this.#db.prepare("INSERT INTO meta (k, v) VALUES ('ledger_id', ?)").run(this.ledgerId);
        this.#db
          .prepare("INSERT INTO meta (k, v) VALUES ('format_version', ?)")
          .run(String(LEDGER_FORMAT_VERSION));
        this.#db.prepare("INSERT INTO meta (k, v) VALUES ('created_at', ?)").run(String(now));
      })();
      if (this.#lastSeq === 0) {
        this.#commitNow([
          {
            input: {
              time: now,
              source: 'system',
              type: 'ledger.genesis',
              attrs: {
                ledgerId: this.ledgerId,
                formatVersion: LEDGER_FORMAT_VERSION,
                hmacKeyIds: [...opts.hmacKeyIds],
              },
            },
            seq: 0,
          },
        ]);
      }
    }
  }

  /** The underlying connection, for read-only queries by the audit module. */
  get db(): Database.Database {
    return this.#db;
  }

  get lastSeq(): number {
    return this.#lastSeq;
  }

  get degraded(): boolean {
    return this.#degradedSince !== undefined;
  }

  state(): LedgerState {
    return {
      ledgerId: this.ledgerId,
      lastSeq: this.#lastSeq,
      pending: this.#queue.length,
      degraded: this.degraded,
      degradedReason: this.#degradedReason,
      degradedSince: this.#degradedSince,
      droppedTotal: this.#droppedTotal,
    };
  }

  /** Queue a record; it commits with the next batch. Fire-and-forget (keyspace hot path). */
  append(input: AuditInput): void {
    if (this.#closed) throw new TokenwatchError('ERR_AUDIT_CLOSED', 'the audit ledger is closed');
    if (this.#queue.length >= this.#opts.maxPending) {
      this.#drop(1);
      return;
    }
    this.#queue.push({ input, seq: 0 });
    this.#schedule();
  }

  /**
   * Queue records and resolve once they committed (what a webhook reply waits for). Rejects with
   * ERR_AUDIT_DEGRADED at once while the ledger cannot write, so the caller answers 503.
   */
  appendDurable(inputs: readonly AuditInput[]): Promise<Committed[]> {
    if (this.#closed) {
      return Promise.reject(new TokenwatchError('ERR_AUDIT_CLOSED', 'the audit ledger is closed'));
    }
    if (this.degraded) return Promise.reject(this.#degradedError());
    if (inputs.length === 0) return Promise.resolve([]);
    return new Promise<Committed[]>((resolve, reject) => {
      const waiter: Waiter = { remaining: inputs.length, items: [], resolve, reject };
      for (const input of inputs) {
        const p: Pending = { input, seq: 0, waiter };
        waiter.items.push(p);
        this.#queue.push(p);
      }
      this.#schedule();
    });
  }

  /** Commit everything queued now (synchronously). Returns false when the ledger is degraded. */
  flush(): boolean {
    this.#clearTimers();
    if (this.degraded) {
      this.#retryDegraded();
      if (this.degraded) return false;
    }
    while (this.#queue.length > 0) {
      const batch = this.#queue.slice(0, this.#opts.batchSize);
      if (!this.#tryCommit(batch)) return false;
      this.#queue = this.#queue.slice(batch.length);
    }
    return true;
  }

  /** Flush and close. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    this.#clearTimers();
    for (const p of this.#queue) {
      p.waiter?.reject(new TokenwatchError('ERR_AUDIT_CLOSED', 'the audit ledger closed'));
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

  #schedule(): void {
    if (this.degraded) return; // the retry timer drives commits while degraded
    if (this.#queue.length >= this.#opts.batchSize) {
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
    const batch = this.#queue.slice(0, this.#opts.batchSize);
    if (batch.length === 0) return;
    if (!this.#tryCommit(batch)) return;
    this.#queue = this.#queue.slice(batch.length);
    if (this.#queue.length > 0) this.#schedule();
  }

  #tryCommit(batch: Pending[]): boolean {
    try {
      this.#commitNow(batch);
      return true;
    } catch (err) {
      this.#enterDegraded(err);
      return false;
    }
  }

  #commitNow(batch: Pending[]): void {
    this.#commitBatch(batch);
    const committed: Committed[] = batch.map((p) => ({ seq: p.seq, input: p.input }));
    for (const p of batch) {
      const w = p.waiter;
      if (w && --w.remaining === 0) w.resolve(w.items.map((i) => ({ seq: i.seq, input: i.input })));
    }
    this.#opts.onCommit?.(committed);
  }

  /**
   * While degraded, every retry tries to commit the `audit.degraded` record that states the
   * window together with the next queued batch: the first commit that works ends the window.
   */
  #retryDegraded(): void {
    const since = this.#degradedSince ?? this.#now();
    const now = this.#now();
    const marker: Pending = {
      input: {
        time: now,
        source: 'system',
        type: 'audit.degraded',
        attrs: {
          start: since,
          end: now,
          durationMs: now - since,
          reason: this.#degradedReason,
          droppedRecords: this.#droppedInWindow,
        },
      },
      seq: 0,
    };
    const batch = [marker, ...this.#queue.slice(0, this.#opts.batchSize - 1)];
    if (!this.#tryCommit(batch)) return;
    this.#queue = this.#queue.slice(batch.length - 1);
    this.#opts.logger?.warn(
      { durationMs: now - since, dropped: this.#droppedInWindow },
      'audit ledger writable again',
    );
    this.#degradedSince = undefined;
    this.#degradedReason = undefined;
    this.#droppedInWindow = 0;
    this.#opts.onDegradedChange?.(false, undefined);
    if (this.#queue.length > 0) this.#schedule();
  }

  #enterDegraded(err: unknown): void {
    const reason =
      err instanceof Error
        ? `${(err as { code?: string }).code ?? err.name}: ${err.message}`
        : String(err);
    const first = this.#degradedSince === undefined;
    if (first) {
      this.#degradedSince = this.#now();
      this.#degradedReason = reason;
      this.#opts.logger?.error(
        { err: reason },
        'audit ledger cannot write: degraded, failing closed',
      );
      this.#opts.onDegradedChange?.(true, reason);
    }
    // Durable waiters learn at once so the outside party retries; their records leave the queue.
    const failed = new Set<Waiter>();
    for (const p of this.#queue) if (p.waiter) failed.add(p.waiter);
    if (failed.size > 0) {
      this.#queue = this.#queue.filter((p) => p.waiter === undefined);
      for (const w of failed) w.reject(this.#degradedError());
    }
    this.#clearTimers();
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#drain();
    }, RETRY_MS);
    this.#timer.unref();
  }

  #drop(n: number): void {
    this.#droppedTotal += n;
    this.#droppedInWindow += n;
    this.#opts.onDropped?.(n);
  }

  #degradedError(): TokenwatchError {
    return new TokenwatchError(
      'ERR_AUDIT_DEGRADED',
      'the audit ledger cannot write right now; retry later',
      {
        status: 503,
        details: { reason: this.#degradedReason },
      },
    );
  }

  #clearTimers(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
  }
}
