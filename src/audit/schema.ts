import type Database from 'better-sqlite3';
import { TokenwatchError } from '../errors.js';

/** Schema version stored in PRAGMA user_version. */
export const SCHEMA_VERSION = 1;

/**
 * Append-only from day one. Triggers stop accidents, not attackers (the hash chain and signed
 * checkpoints detect tampering): UPDATE and DELETE abort, and any INSERT whose seq is not
 * max(seq)+1 aborts, which also rejects INSERT OR REPLACE over an existing row (SQLite fires
 * BEFORE INSERT triggers for REPLACE, while delete triggers would need recursive_triggers).
 */
const DDL_V1 = `
CREATE TABLE IF NOT EXISTS meta (
  k TEXT PRIMARY KEY,
  v TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS records (
  seq         INTEGER PRIMARY KEY,
  time        INTEGER NOT NULL,
  source      TEXT NOT NULL,
  type        TEXT NOT NULL,
  kind        TEXT,
  fingerprint TEXT,
  attrs       TEXT NOT NULL,
  leaf        BLOB NOT NULL,
  chain       BLOB NOT NULL
) STRICT;

CREATE INDEX IF NOT EXISTS records_type_seq ON records(type, seq);
CREATE INDEX IF NOT EXISTS records_time ON records(time);

CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only: UPDATE rejected'); END;

CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only: DELETE rejected'); END;

CREATE TRIGGER IF NOT EXISTS records_seq_next BEFORE INSERT ON records
WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM records)
BEGIN SELECT RAISE(ABORT, 'audit records are append-only: seq must be max(seq)+1'); END;

CREATE TRIGGER IF NOT EXISTS meta_no_update BEFORE UPDATE ON meta
BEGIN SELECT RAISE(ABORT, 'ledger metadata is write-once'); END;

CREATE TRIGGER IF NOT EXISTS meta_no_delete BEFORE DELETE ON meta
BEGIN SELECT RAISE(ABORT, 'ledger metadata is write-once'); END;
`;

export function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new TokenwatchError(
      'ERR_AUDIT_SCHEMA',
      `ledger schema version ${version} is newer than this tokenwatch understands (${SCHEMA_VERSION})`,
    );
  }
  if (version < 1) {
    db.exec(DDL_V1);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }
}
