import type { CanonicalFields } from './canonical.js';
import type { AuditRecord, AuditSource } from './record.js';
import { decodeColumns, type StoredColumns } from './record-codec.js';

/** Readers of stored rows built on the storage codec's decodeColumns (record-codec.ts). */

/** A stored row as an AuditRecord (attributes parsed). */
export function decodeRecord(row: StoredColumns): AuditRecord {
  const f = decodeColumns(row);
  return {
    seq: f.seq,
    time: f.time,
    source: f.source as AuditSource,
    type: f.type,
    kind: f.kind,
    fingerprint: f.fingerprint,
    attrs: JSON.parse(f.attrs) as Record<string, unknown>,
  };
}

/**
 * decodeColumns for readers that hash what they read (exports, reports): a compact blob that
 * does not parse comes back as fields that cannot hash to the row's leaf or chain (attrs `{}`,
 * no source, kind or fingerprint), so their integrity checks report the row as damaged instead
 * of throwing.
 */
export function decodeColumnsOrDamaged(row: StoredColumns): CanonicalFields {
  try {
    return decodeColumns(row);
  } catch {
    return { ...row, source: '', type: row.type ?? '', kind: null, fingerprint: null, attrs: '{}' };
  }
}
