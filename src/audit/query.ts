import Database from 'better-sqlite3';
import { TokenwatchError } from '../errors.js';
import type { AuditRecord, AuditSource } from './record.js';

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

interface Row {
  seq: number;
  time: number;
  source: AuditSource;
  type: string;
  kind: string | null;
  fingerprint: string | null;
  attrs: string;
}

/** Records in seq order matching the filter. */
export function listRecords(db: Database.Database, filter: RecordFilter = {}): AuditRecord[] {
  const where: string[] = [];
  const args: (string | number)[] = [];
  if (filter.type !== undefined) {
    if (filter.type.endsWith('*')) {
      const prefix = filter.type.slice(0, -1);
      where.push('type >= ? AND type < ?');
      args.push(prefix, `${prefix}\uffff`);
    } else {
      where.push('type = ?');
      args.push(filter.type);
    }
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
  } ORDER BY seq LIMIT ?`;
  args.push(filter.limit ?? -1);
  const rows = db.prepare(sql).all(...args) as Row[];
  return rows.map((r) => ({ ...r, attrs: JSON.parse(r.attrs) as Record<string, unknown> }));
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
  const row = db
    .prepare(
      'SELECT seq, time, source, type, kind, fingerprint, attrs FROM records WHERE type = ? AND seq < ? ORDER BY seq DESC LIMIT 1',
    )
    .get(type, beforeSeq) as Row | undefined;
  return row && { ...row, attrs: JSON.parse(row.attrs) as Record<string, unknown> };
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
