import type Database from 'better-sqlite3';
import type { AuditSource } from './record.js';
import { decodeColumns, type StoredColumns } from './record-codec.js';

/**
 * Committed records as they are stored, with the chain hash each one extends: what a consumer
 * that streams the ledger elsewhere (OTLP logs) forwards, so the far side can re-derive the
 * leaf and chain hashes from the canonical fields (docs/ledger-format.md) without our database.
 */
export interface ChainedRecord {
  seq: number;
  time: number;
  source: AuditSource;
  type: string;
  kind: string | null;
  fingerprint: string | null;
  /** Canonical JSON text of the attributes, exactly as hashed. */
  attrs: string;
  /** Chain hash after this record, lowercase hex. */
  chain: string;
}

interface Row extends StoredColumns {
  chain: Buffer;
}

const statements = new WeakMap<
  Database.Database,
  { after: Database.Statement<[number, number]>; chainAt: Database.Statement<[number]> }
>();

function prepared(db: Database.Database) {
  let s = statements.get(db);
  if (!s) {
    s = {
      after: db.prepare<[number, number]>(
        'SELECT seq, time, source, type, kind, fingerprint, attrs, chain FROM records WHERE seq > ? ORDER BY seq LIMIT ?',
      ),
      chainAt: db.prepare<[number]>('SELECT chain FROM records WHERE seq = ?'),
    };
    statements.set(db, s);
  }
  return s;
}

/** Up to `limit` committed records after `afterSeq`, in seq order. */
export function readChainedAfter(
  db: Database.Database,
  afterSeq: number,
  limit: number,
): ChainedRecord[] {
  const rows = prepared(db).after.all(afterSeq, limit) as Row[];
  return rows.map((r) => ({
    ...(decodeColumns(r) as Omit<ChainedRecord, 'chain'>),
    chain: r.chain.toString('hex'),
  }));
}

/** The chain hash stored at `seq` (hex), or undefined when no such record (purged or never). */
export function chainAt(db: Database.Database, seq: number): string | undefined {
  const row = prepared(db).chainAt.get(seq) as { chain: Buffer } | undefined;
  return row?.chain.toString('hex');
}
