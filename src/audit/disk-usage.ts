import Database from 'better-sqlite3';

/** What a ledger file holds on disk: its record count and the pages of each table and index. */
export interface LedgerDiskUsage {
  records: number;
  /** Bytes of pages per table or index (SQLite's dbstat), largest first. */
  objects: { name: string; bytes: number }[];
}

/**
 * Reads a closed ledger file's size per table and index, after folding its WAL into it (the
 * figures a disk-sizing estimate needs: docs/ledger-format.md, "Sizing the disk"). Opens its
 * own connection: never call it on the file of a running service.
 */
export function ledgerDiskUsage(path: string): LedgerDiskUsage {
  const db = new Database(path);
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
    const records = (db.prepare('SELECT COUNT(*) AS n FROM records').get() as { n: number }).n;
    const objects = db
      .prepare('SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC')
      .all() as { name: string; bytes: number }[];
    return { records, objects };
  } finally {
    db.close();
  }
}
