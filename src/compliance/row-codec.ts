import {
  LEDGER_FORMAT_VERSION,
  canonicalJson,
  canonicalRecord,
  type CanonicalFields,
} from '../audit/canonical.js';
import { toOcsf, type OcsfContext } from './ocsf.js';

/** Data formats of an evidence bundle. */
export type ExportFormat = 'csv' | 'jsonl' | 'ocsf';

export const EXPORT_FORMATS: readonly ExportFormat[] = ['csv', 'jsonl', 'ocsf'];

/** A row that is not what this codec writes (wrong shape, or fields that disagree). */
export class RowFormatError extends Error {
  override readonly name = 'RowFormatError';
}

/**
 * Encodes records as data rows and decodes rows back to the record's canonical fields. Every row
 * carries the seq and everything needed to recompute the record's leaf hash, and
 * `encode(decode(row))` must give the row back byte for byte: a row is accepted only when each
 * of its fields is the one the canonical record determines, so no field can change without
 * changing the recomputed chain.
 */
export interface RowCodec {
  format: ExportFormat;
  /** File name suffix. */
  extension: string;
  /** First line of every data file (CSV), or null. */
  header: string | null;
  /** One row, without the line terminator. `attrs` is `r.attrs` parsed. */
  encode(r: CanonicalFields, attrs: Record<string, unknown>, canonical: string): string;
  /** The canonical fields a row states; throws RowFormatError when it is not a valid row. */
  decode(row: string): CanonicalFields;
}

function fields(o: Record<string, unknown>, where: string): CanonicalFields {
  const { seq, time, source, type, kind, fingerprint } = o;
  if (!Number.isSafeInteger(seq) || (seq as number) < 1)
    throw new RowFormatError(`${where}: bad seq`);
  if (!Number.isSafeInteger(time)) throw new RowFormatError(`${where}: bad time`);
  if (typeof source !== 'string' || typeof type !== 'string')
    throw new RowFormatError(`${where}: bad source/type`);
  if (kind !== null && typeof kind !== 'string') throw new RowFormatError(`${where}: bad kind`);
  if (fingerprint !== null && typeof fingerprint !== 'string')
    throw new RowFormatError(`${where}: bad fingerprint`);
  return {
    seq: seq as number,
    time: time as number,
    source,
    type,
    kind,
    fingerprint,
    attrs: '',
  };
}

function parseObject(text: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RowFormatError(`${what} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new RowFormatError(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** A canonical record text `[1,seq,time,source,type,kind,fingerprint,attrs]`, split up. */
export interface ParsedCanonical {
  fields: CanonicalFields;
  /** The attrs, parsed. */
  attrs: Record<string, unknown>;
}

/**
 * Parses a canonical record text. The attrs text is taken verbatim (the recomputed chain is
 * what judges it); everything before it must be exactly what canonicalRecord writes.
 */
export function parseCanonical(text: string): ParsedCanonical {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RowFormatError('canonical record is not JSON');
  }
  if (!Array.isArray(v) || v.length !== 8 || v[0] !== LEDGER_FORMAT_VERSION)
    throw new RowFormatError('canonical record is not a format v1 array');
  const [, seq, time, source, type, kind, fingerprint, attrs] = v as unknown[];
  if (typeof attrs !== 'object' || attrs === null || Array.isArray(attrs))
    throw new RowFormatError('canonical record attrs is not an object');
  const f = fields({ seq, time, source, type, kind, fingerprint }, 'canonical record');
  const prefix = canonicalRecord(f).slice(0, -1); // `[1,...,fingerprint,`
  if (!text.startsWith(prefix) || !text.endsWith(']'))
    throw new RowFormatError('record text is not canonical');
  f.attrs = text.slice(prefix.length, -1);
  return { fields: f, attrs: attrs as Record<string, unknown> };
}

const iso = (t: number): string => {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
};

// --- JSON lines -------------------------------------------------------------------------------

const jsonl: RowCodec = {
  format: 'jsonl',
  extension: 'jsonl',
  header: null,
  encode(r, attrs) {
    return JSON.stringify({
      seq: r.seq,
      time: r.time,
      timeIso: iso(r.time),
      source: r.source,
      type: r.type,
      kind: r.kind,
      fingerprint: r.fingerprint,
      attrs,
    });
  },
  decode(row) {
    const o = parseObject(row, 'row');
    const f = fields(o, 'row');
    const attrs = o.attrs;
    if (typeof attrs !== 'object' || attrs === null || Array.isArray(attrs))
      throw new RowFormatError('row attrs is not an object');
    f.attrs = canonicalJson(attrs);
    if (this.encode(f, attrs as Record<string, unknown>, '') !== row)
      throw new RowFormatError('row fields are not the ones its values determine');
    return f;
  },
};

// --- CSV (RFC 4180) ---------------------------------------------------------------------------

export const CSV_COLUMNS = [
  'seq',
  'time',
  'time_iso',
  'source',
  'type',
  'kind',
  'fingerprint',
  'attrs',
];

/** A cell: null as an empty unquoted cell, every string quoted (so "" is the empty string). */
function cell(v: string | number | null): string {
  if (v === null) return '';
  if (typeof v === 'number') return String(v);
  return `"${v.replaceAll('"', '""')}"`;
}

/** Splits one CSV record into cells, keeping whether each was quoted (null vs ""). */
export function splitCsv(line: string): { value: string; quoted: boolean }[] {
  const out: { value: string; quoted: boolean }[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let value = '';
      i += 1;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new RowFormatError('unterminated quoted cell');
        value += line.slice(i, q);
        if (line[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      out.push({ value, quoted: true });
    } else {
      const c = line.indexOf(',', i);
      const end = c < 0 ? line.length : c;
      const value = line.slice(i, end);
      if (value.includes('"')) throw new RowFormatError('quote inside an unquoted cell');
      out.push({ value, quoted: false });
      i = end;
    }
    if (i === line.length) return out;
    if (line[i] !== ',') throw new RowFormatError('text after a quoted cell');
    i += 1;
  }
}

const csv: RowCodec = {
  format: 'csv',
  extension: 'csv',
  header: CSV_COLUMNS.join(','),
  encode(r) {
    return [r.seq, r.time, iso(r.time), r.source, r.type, r.kind, r.fingerprint, r.attrs]
      .map(cell)
      .join(',');
  },
  decode(row) {
    const cells = splitCsv(row);
    if (cells.length !== CSV_COLUMNS.length) throw new RowFormatError('wrong number of cells');
    const text = (i: number): string | null => {
      const c = cells[i];
      return c === undefined || (!c.quoted && c.value === '') ? null : c.value;
    };
    const f = fields(
      {
        seq: Number(text(0)),
        time: Number(text(1)),
        source: text(3),
        type: text(4),
        kind: text(5),
        fingerprint: text(6),
      },
      'row',
    );
    const attrs = text(7);
    if (attrs === null || !attrs.startsWith('{'))
      throw new RowFormatError('row attrs is not an object');
    f.attrs = attrs; // the canonical text itself: the recomputed chain judges it
    if (this.encode(f, {}, '') !== row)
      throw new RowFormatError('row cells are not the ones its values determine');
    return f;
  },
};

// --- OCSF -------------------------------------------------------------------------------------

const RAW_DATA = ',"raw_data":';

function ocsfCodec(ctx: OcsfContext): RowCodec {
  return {
    format: 'ocsf',
    extension: 'ocsf.jsonl',
    header: null,
    encode(r, attrs, canonical) {
      return JSON.stringify(toOcsf(r, attrs, canonical, ctx));
    },
    decode(row) {
      // raw_data is the last member: read it alone, then re-derive the whole event and compare.
      const at = row.lastIndexOf(RAW_DATA);
      if (at < 0 || !row.endsWith('}')) throw new RowFormatError('event has no raw_data');
      let raw: unknown;
      try {
        raw = JSON.parse(row.slice(at + RAW_DATA.length, -1));
      } catch {
        raw = undefined;
      }
      if (typeof raw !== 'string') throw new RowFormatError('event raw_data is not a string');
      const { fields: f, attrs } = parseCanonical(raw);
      if (this.encode(f, attrs, raw) !== row)
        throw new RowFormatError('event fields are not the ones its raw_data determines');
      return f;
    },
  };
}

/** The codec of a format; OCSF events name the ledger and the producing version. */
export function codecFor(format: ExportFormat, ctx: OcsfContext): RowCodec {
  if (format === 'csv') return csv;
  if (format === 'jsonl') return jsonl;
  return ocsfCodec(ctx);
}

/** Sanity check used by the exporter: stored attrs that do not round-trip are never exported. */
export function attrsRoundTrip(stored: string): Record<string, unknown> | undefined {
  const parsed = JSON.parse(stored) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  return canonicalJson(parsed) === stored ? (parsed as Record<string, unknown>) : undefined;
}
