import Database from 'better-sqlite3';
import { migrate } from './schema.js';

/** Collaborators of {@link ReplayStore}. */
export interface ReplayStoreOptions {
  /** The ledger file (`audit.path`); the `replay_jtis` table comes with schema v4. */
  path: string;
  now: () => number;
  /** Expired rows are deleted at most this often, ms (default one minute). */
  pruneEveryMs?: number;
}

/**
 * Durable replay protection for signed one-time tokens (SETs, RFC 8417 §2.2 and RFC 8935 §2.3;
 * logout tokens, OIDC Back-Channel Logout §2.6 step 10): a token's `jti` fingerprint is claimed
 * here, in the ledger's SQLite file, until its acceptance window (maximum `iat` age plus clock
 * tolerance) has passed. The in-memory seen-set forgets after `maxEntries` events and a restart;
 * this does not, so a replay is refused for the whole window.
 *
 * What is trusted: the caller has verified the token's signature before claiming, so an
 * unsigned request cannot fill the table. Only an HMAC fingerprint of (provider, jti) is stored.
 * Its own connection, like the cursor store; only src/audit runs SQL on the ledger's file.
 */
export class ReplayStore {
  readonly #db: Database.Database;
  readonly #o: ReplayStoreOptions;
  readonly #claim: Database.Statement<[string, number]>;
  readonly #release: Database.Statement<[string]>;
  readonly #takeExpired: Database.Statement<[number, string, number]>;
  readonly #prune: Database.Statement<[number]>;
  #prunedAt = -Infinity;
  #closed = false;

  constructor(options: ReplayStoreOptions) {
    this.#o = options;
    this.#db = new Database(options.path);
    this.#db.pragma('busy_timeout = 5000');
    migrate(this.#db); // a no-op once the ledger opened the file; creates the table for :memory:
    this.#claim = this.#db.prepare(
      'INSERT INTO replay_jtis (fingerprint, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING',
    );
    this.#release = this.#db.prepare('DELETE FROM replay_jtis WHERE fingerprint = ?');
    // A row whose window is over no longer protects anything: it may be claimed afresh.
    this.#takeExpired = this.#db.prepare(
      'UPDATE replay_jtis SET expires_at = ? WHERE fingerprint = ? AND expires_at <= ?',
    );
    this.#prune = this.#db.prepare('DELETE FROM replay_jtis WHERE expires_at <= ?');
  }

  /**
   * Claims `fingerprint` until `expiresAt` (unix ms). True when it was not claimed before (or
   * its earlier claim expired); false for a replay. One statement: two concurrent deliveries of
   * one token cannot both win.
   */
  claim(fingerprint: string, expiresAt: number): boolean {
    const now = this.#o.now();
    if (now - this.#prunedAt >= (this.#o.pruneEveryMs ?? 60_000)) {
      this.#prunedAt = now;
      this.#prune.run(now);
    }
    if (this.#claim.run(fingerprint, expiresAt).changes === 1) return true;
    return this.#takeExpired.run(expiresAt, fingerprint, now).changes === 1;
  }

  /** Gives a claim back (the delivery could not be recorded: the sender will retry). */
  release(fingerprint: string): void {
    this.#release.run(fingerprint);
  }

  /** Rows held now (tests, metrics). */
  get size(): number {
    return (this.#db.prepare('SELECT COUNT(*) AS n FROM replay_jtis').get() as { n: number }).n;
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
