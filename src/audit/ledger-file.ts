import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { LEDGER_FORMAT_VERSION } from './canonical.js';
import { migrate } from './schema.js';

/**
 * Opens (creating) the ledger file for writing: WAL with synchronous=FULL, because NORMAL can
 * lose the last committed transactions on power loss, and the schema migrated to the current
 * version.
 */
export function openLedgerFile(path: string): Database.Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

/** The ledger id from the write-once `meta` table, written (with format and time) on first open. */
export function ledgerIdentity(
  db: Database.Database,
  now: number,
): { ledgerId: string; created: boolean } {
  const existing = db.prepare("SELECT v FROM meta WHERE k = 'ledger_id'").get() as
    { v: string } | undefined;
  if (existing) return { ledgerId: existing.v, created: false };
  const ledgerId = randomUUID();
  const insert = db.prepare('INSERT INTO meta (k, v) VALUES (?, ?)');
  db.transaction(() => {
    insert.run('ledger_id', ledgerId);
    insert.run('format_version', String(LEDGER_FORMAT_VERSION));
    insert.run('created_at', String(now));
  })();
  return { ledgerId, created: true };
}
