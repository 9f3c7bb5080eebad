import Database from 'better-sqlite3';
import { TokenwatchError } from '../errors.js';
import type { AuditRecord } from './record.js';
import { COMPACT_PREFIX, decodeRecord, type StoredColumns } from './record-codec.js';

export interface RecordFilter {
  /** Exact type, or a prefix ending in `*` (e.g. `token.*`). */
  type?: string;
  /** Observed time at or after (unix ms). */
  since?: number;
  /** Observed time before (unix ms). */
  until?: number;
  afterSeq?: number;
  limit?: number;
}

/**
 * Whether records of `type` (or of a type starting with `prefix`) can be stored compact, i.e.
 * with a NULL type column (record-codec.ts): those are found by decoding, not by the index.
 */
function compactTypes(type: string, prefix: boolean): boolean {
  return type.startsWith(COMPACT_PREFIX) || (prefix && COMPACT_PREFIX.startsWith(type));
}

/** Records in seq order matching the filter. */
export function listRecords(db: Database.Database, filter: RecordFilter = {}): AuditRecord[] {
  const where: string[] = [];
  const args: (string | number)[] = [];
  let match: ((type: string) => boolean) | undefined;
  if (filter.type !== undefined) {
    const prefix = filter.type.endsWith('*') ? filter.type.slice(0, -1) : undefined;
    const clause = prefix === undefined ? 'type = ?' : 'type >= ? AND type < ?';
    if (compactTypes(prefix ?? filter.type, prefix !== undefined)) {
      where.push(`(${clause} OR type IS NULL)`);
    } else where.push(clause);
    // Always matched on the decoded type: a compact row's type column is not what it hashes
    // (a type written into it by whoever edits the file must not select it).
    const t = filter.type;
    match = prefix === undefined ? (x) => x === t : (x) => x.startsWith(prefix);
    if (prefix === undefined) args.push(filter.type);
    else args.push(prefix, `${prefix}\uffff`);
  }
  if (filter.since !== undefined) {
    where.push('time >= ?');
    args.push(filter.since);
  }
  if (filter.until !== undefined) {
    where.push('time < ?');
    args.push(filter.until);
  }
  if (filter.afterSeq !== undefined) {
    where.push('seq > ?');
    args.push(filter.afterSeq);
  }
  const sql = `SELECT seq, time, source, type, kind, fingerprint, attrs FROM records${
    where.length ? ` WHERE ${where.join(' AND ')}` : ''
  } ORDER BY seq`;
  const limit = filter.limit ?? Infinity;
  if (match === undefined) {
    const rows = db.prepare(`${sql} LIMIT ?`).all(...args, limit === Infinity ? -1 : limit);
    return (rows as StoredColumns[]).map(decodeRecord);
  }
  // The type of a compact row is known once decoded: filter here, then apply the limit.
  const out: AuditRecord[] = [];
  if (limit <= 0) return out;
  for (const row of db.prepare(sql).iterate(...args) as IterableIterator<StoredColumns>) {
    const r = decodeRecord(row);
    if (!match(r.type)) continue;
    out.push(r);
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * The newest record of exactly `type`, before `beforeSeq` when given (one index seek on
 * records_type_seq), e.g. the last `correlator.snapshot` to restore from, or the `config.policy`
 * in force when a report's range starts.
 */
export function lastRecordOfType(
  db: Database.Database,
  type: string,
  beforeSeq = Number.MAX_SAFE_INTEGER,
): AuditRecord | undefined {
  if (compactTypes(type, false)) {
    const rows = db
      .prepare(
        'SELECT seq, time, source, type, kind, fingerprint, attrs FROM records WHERE (type = ? OR type IS NULL) AND seq < ? ORDER BY seq DESC',
      )
      .iterate(type, beforeSeq) as IterableIterator<StoredColumns>;
    for (const row of rows) {
      const r = decodeRecord(row);
      if (r.type === type) return r;
    }
    return undefined;
  }
  // Matched on the decoded type too: a compact row (type decoded from its blob) with a type
  // column written by whoever edits the file is not a record of that type.
  const rows = db
    .prepare(
      'SELECT seq, time, source, type, kind, fingerprint, attrs FROM records WHERE type = ? AND seq < ? ORDER BY seq DESC',
    )
    .iterate(type, beforeSeq) as IterableIterator<StoredColumns>;
  for (const row of rows) {
    const r = decodeRecord(row);
    if (r.type === type) return r;
  }
  return undefined;
}

/** Opens a ledger file read-only (CLI and auditors). */
export function openReadOnly(path: string): Database.Database {
  try {
    return new Database(path, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new TokenwatchError(
      'ERR_USAGE',
      `cannot open ledger ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
