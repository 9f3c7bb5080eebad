import Database from 'better-sqlite3';

/**
 * Poll cursors in their own table of the ledger's SQLite file, on a connection of their own (the
 * ledger's connection belongs to the ledger). Here, in src/audit, because only the audit module
 * runs SQL on the ledger file. A cursor row is not trusted by its readers: the pollers validate
 * it when it is loaded (src/outbound/origin-guard.ts). A cursor is written only after the events
 * it covers committed, so a restart resumes exactly where the last committed page ended.
 */
export class CursorStore {
  readonly #db: Database.Database;
  readonly #get: Database.Statement<[string], { cursor: string }>;
  readonly #put: Database.Statement<[string, string, number]>;
  #closed = false;

  /** `path` is `audit.path`; `:memory:` keeps cursors for the life of the process only. */
  constructor(path: string) {
    this.#db = new Database(path);
    this.#db.pragma('busy_timeout = 5000');
    this.#db.exec(`CREATE TABLE IF NOT EXISTS provider_cursors (
      name       TEXT PRIMARY KEY,
      cursor     TEXT NOT NULL,
      updated_at INTEGER NOT NULL
    ) STRICT`);
    this.#get = this.#db.prepare('SELECT cursor FROM provider_cursors WHERE name = ?');
    this.#put = this.#db.prepare(
      `INSERT INTO provider_cursors (name, cursor, updated_at) VALUES (?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at`,
    );
  }

  get(name: string): string | undefined {
    return this.#get.get(name)?.cursor;
  }

  set(name: string, cursor: string, now: number): void {
    this.#put.run(name, cursor, now);
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
