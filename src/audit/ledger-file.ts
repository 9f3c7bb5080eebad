import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { LEDGER_FORMAT_VERSION, ZERO_HASH } from './canonical.js';
import type { ChainHead } from './chain-head.js';
import { migrate } from './schema.js';

/**
 * Opens (creating) the ledger file for writing: WAL with synchronous=FULL, because NORMAL can
 * lose the last committed transactions on power loss, and the schema migrated to the current
 * version.
 */
export function openLedgerFile(path: string): Database.Database {
  if (path !== ':memory:') {
    // The data directory is created 0700 and the file 0600 before SQLite opens it: SQLite
    // creates the -wal and -shm files with the database file's permissions.
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
    restrictModes(path);
  }
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  if (path !== ':memory:') restrictModes(path);
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

/**
 * Narrows the database, WAL and SHM files to 0600 (an older tokenwatch, or a copy, may have left
 * them 0644): the ledger holds fingerprints and who accessed what, readable by its owner only.
 */
export function restrictModes(path: string): void {
  if (process.platform === 'win32') return;
  for (const p of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      if ((statSync(p).mode & 0o077) !== 0) chmodSync(p, 0o600);
    } catch {
      // absent (no WAL yet), or not ours to change: SQLite reports what matters
    }
  }
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

/**
 * Where the file's chain ends: the last record's seq and chain, and its time as the clock, so a
 * restart after the clock went back states the jump too.
 */
export function storedHead(db: Database.Database): ChainHead {
  const last = db
    .prepare('SELECT seq, time, chain FROM records ORDER BY seq DESC LIMIT 1')
    .get() as { seq: number; time: number; chain: Buffer } | undefined;
  return { seq: last?.seq ?? 0, chain: last?.chain ?? ZERO_HASH, clock: last?.time };
}
