import type Database from 'better-sqlite3';
import { TokenwatchError } from '../errors.js';

/** Schema version stored in PRAGMA user_version. */
export const SCHEMA_VERSION = 5;

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

/**
 * v2: signed checkpoints (append-only like records, numbered 1, 2, ... with no gaps) and
 * retention. The only DELETE the records trigger lets through is one covered by a row in
 * purge_guard, which the retention transaction inserts and removes again before it commits.
 * Like every trigger here this stops accidents, not attackers: anyone who can write the file can
 * insert a guard row, which is why verification never relies on it.
 */
const DDL_V2 = `
CREATE TABLE IF NOT EXISTS checkpoints (
  n      INTEGER PRIMARY KEY,
  seq    INTEGER NOT NULL,
  chain  BLOB NOT NULL,
  time   INTEGER NOT NULL,
  reason TEXT NOT NULL,
  key_id TEXT NOT NULL,
  prev   BLOB,
  sig    BLOB NOT NULL
) STRICT;

CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only: UPDATE rejected'); END;

CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only: DELETE rejected'); END;

CREATE TRIGGER IF NOT EXISTS checkpoints_n_next BEFORE INSERT ON checkpoints
WHEN NEW.n IS NOT (SELECT COALESCE(MAX(n), 0) + 1 FROM checkpoints)
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only: n must be max(n)+1'); END;

CREATE TABLE IF NOT EXISTS purge_guard (
  upto INTEGER NOT NULL
) STRICT;

DROP TRIGGER IF EXISTS records_no_delete;
CREATE TRIGGER records_no_delete BEFORE DELETE ON records
WHEN OLD.seq > (SELECT COALESCE(MAX(upto), 0) FROM purge_guard)
BEGIN SELECT RAISE(ABORT, 'audit records are append-only: DELETE rejected'); END;
`;

/**
 * v3: a signature over the head of every committed batch (`seals`, docs/ledger-format.md), so no
 * committed row is ever covered by the hash chain alone; and the retention each checkpoint was
 * signed under, so a retention purge can be checked against signed data instead of a record the
 * database writer could have appended. Seals are append-only like records; the retention
 * transaction may delete the seals of the range it prunes (same purge_guard).
 */
const DDL_V3 = `
CREATE TABLE IF NOT EXISTS seals (
  seq    INTEGER PRIMARY KEY,
  chain  BLOB NOT NULL,
  time   INTEGER NOT NULL,
  key_id TEXT NOT NULL,
  sig    BLOB NOT NULL
) STRICT;

CREATE TRIGGER IF NOT EXISTS seals_no_update BEFORE UPDATE ON seals
BEGIN SELECT RAISE(ABORT, 'seals are append-only: UPDATE rejected'); END;

CREATE TRIGGER IF NOT EXISTS seals_no_delete BEFORE DELETE ON seals
WHEN OLD.seq > (SELECT COALESCE(MAX(upto), 0) FROM purge_guard)
BEGIN SELECT RAISE(ABORT, 'seals are append-only: DELETE rejected'); END;

CREATE TRIGGER IF NOT EXISTS seals_seq_next BEFORE INSERT ON seals
WHEN NEW.seq <= (SELECT COALESCE(MAX(seq), 0) FROM seals)
BEGIN SELECT RAISE(ABORT, 'seals are append-only: seq must grow'); END;

ALTER TABLE checkpoints ADD COLUMN retention_days INTEGER;
`;

/**
 * v4: durable replay protection of SETs and logout tokens (src/audit/replay-store.ts). Not part
 * of the evidence: a cache of `jti` fingerprints kept until the token's acceptance window ends,
 * then pruned (no append-only triggers). What a replayer sent is never in it: only an HMAC.
 */
const DDL_V4 = `
CREATE TABLE IF NOT EXISTS replay_jtis (
  fingerprint TEXT PRIMARY KEY,
  expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS replay_jtis_expires ON replay_jtis(expires_at);
`;

/**
 * v5: the storage encoding of record-codec.ts. `token.*` records keep source, type, kind and
 * fingerprint inside a compact `attrs` BLOB (those columns NULL), and every new row stores the
 * first 4 bytes of its leaf (verification recomputes the leaf; the chain is what is signed).
 * The (type, seq) index becomes partial (type IS NOT NULL): only the rarer types are looked up
 * by type, and SQLite uses it for any `type = ?`, `type IN (...)` or type range (each implies
 * NOT NULL). records_time stays: a report's or export's window maps to seqs through it.
 * STRICT cannot relax a column's type in place, so the table is rebuilt: rows are copied as they
 * are (older rows stay in the text form, which every reader still decodes), then the indexes and
 * append-only triggers are created again. DROP TABLE fires no DELETE trigger.
 */
const DDL_V5 = `
CREATE TABLE records_v5 (
  seq         INTEGER PRIMARY KEY,
  time        INTEGER NOT NULL,
  source      TEXT,
  type        TEXT,
  kind        TEXT,
  fingerprint TEXT,
  attrs       ANY NOT NULL,
  leaf        BLOB NOT NULL,
  chain       BLOB NOT NULL
) STRICT;

INSERT INTO records_v5 (seq, time, source, type, kind, fingerprint, attrs, leaf, chain)
  SELECT seq, time, source, type, kind, fingerprint, attrs, leaf, chain FROM records ORDER BY seq;

DROP TABLE records;
ALTER TABLE records_v5 RENAME TO records;

CREATE INDEX records_type_seq ON records(type, seq) WHERE type IS NOT NULL;
CREATE INDEX records_time ON records(time);

CREATE TRIGGER records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only: UPDATE rejected'); END;

CREATE TRIGGER records_no_delete BEFORE DELETE ON records
WHEN OLD.seq > (SELECT COALESCE(MAX(upto), 0) FROM purge_guard)
BEGIN SELECT RAISE(ABORT, 'audit records are append-only: DELETE rejected'); END;

CREATE TRIGGER records_seq_next BEFORE INSERT ON records
WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM records)
BEGIN SELECT RAISE(ABORT, 'audit records are append-only: seq must be max(seq)+1'); END;
`;

/**
 * Schema steps in order. Another table (e.g. a replay store) is a new step appended here with
 * the next version number; never edit a step that has shipped.
 */
const STEPS: readonly (readonly [version: number, ddl: string])[] = [
  [1, DDL_V1],
  [2, DDL_V2],
  [3, DDL_V3],
  [4, DDL_V4],
  [5, DDL_V5],
];

/**
 * Brings the file up to `target` (default: the current version) in one transaction. A v1
 * ledger gains the v2 tables and keeps every record; older tokenwatch versions then refuse the
 * file (user_version 2), never misread it. `target` below the current version exists so tests
 * can build the ledgers older versions wrote.
 */
export function migrate(db: Database.Database, target = SCHEMA_VERSION): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new TokenwatchError(
      'ERR_AUDIT_SCHEMA',
      `ledger schema version ${version} is newer than this tokenwatch understands (${SCHEMA_VERSION})`,
    );
  }
  if (version >= target) return;
  db.transaction(() => {
    for (const [v, ddl] of STEPS) if (v > version && v <= target) db.exec(ddl);
    db.pragma(`user_version = ${target}`);
  })();
}

/** True when the file has the v2 checkpoints table (read-only opens of older ledgers). */
export function hasCheckpointsTable(db: Database.Database): boolean {
  return (
    db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'checkpoints'")
      .get() !== undefined
  );
}

/** True when the file has the v3 seals table. */
export function hasSealsTable(db: Database.Database): boolean {
  return (
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seals'").get() !==
    undefined
  );
}
