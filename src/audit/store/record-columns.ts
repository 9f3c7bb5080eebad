/**
 * The column lists of the `records` table as the store reads them: one place, so a change of
 * the row layout (src/audit/schema.ts) is one edit for every typed query of src/audit/store/.
 */

/** The canonical fields of a record (docs/ledger-format.md), attrs as its stored JSON text. */
export const RECORD_COLUMNS = 'seq, time, source, type, kind, fingerprint, attrs';

/** The canonical fields without `source` (the report's readers do not need it). */
export const RECORD_COLUMNS_NO_SOURCE = 'seq, time, type, kind, fingerprint, attrs';

/**
 * The canonical fields plus the stored leaf and chain hashes as lowercase hex text (read as
 * text: a Buffer per blob costs more).
 */
export const STORED_RECORD_COLUMNS = `${RECORD_COLUMNS},
  lower(hex(leaf)) AS leaf, lower(hex(chain)) AS chain`;

/** A record as read by a report: attrs still as its JSON text. */
export interface RecordRow {
  seq: number;
  time: number;
  type: string;
  kind: string | null;
  fingerprint: string | null;
  attrs: string;
}

/** A record's seq and attrs text (typed look-ups that need no more). */
export interface SeqAttrs {
  seq: number;
  attrs: string;
}
