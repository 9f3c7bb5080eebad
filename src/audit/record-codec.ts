import { FINGERPRINT_HEAD } from '../domain/fingerprint.js';
import { canonicalJson, LEDGER_FORMAT_VERSION, type CanonicalFields } from './canonical.js';
import { ByteReader as In, ByteWriter as Out, Slab } from './record-codec-bytes.js';
import {
  INLINE_KEY,
  KEY_INDEX,
  KEY_JSON,
  T_AFTER,
  T_BEFORE,
  T_FALSE,
  T_FP,
  T_JSON,
  T_NEG,
  T_NULL,
  T_OBJ,
  T_SELF,
  T_STR,
  T_TRUE,
  T_UINT,
  T_WORD,
  WORD_INDEX,
  WORD_JSON,
  WORDS,
} from './record-codec-vocabulary.js';

// Kept here for the readers outside src/audit/ that import them from the codec.
export { LEAF_HINT_BYTES, leafMatches } from './leaf-hint.js';
export { decodeColumnsOrDamaged, decodeRecord } from './record-decode.js';

/**
 * Storage codec of audit records (schema v5, docs/ledger-format.md#storage-encoding). What is
 * hashed and signed never changes: the canonical form of format version 1. This file only
 * decides how a record's columns sit on disk:
 *
 * - text form (every record before v5, and every record that is not `token.*`): `source`,
 *   `kind`, `fingerprint` as text and `attrs` as the canonical JSON text itself;
 * - compact form (`token.*` records, the bulk): `source`, `type`, `kind` and `fingerprint` NULL
 *   and `attrs` a BLOB holding all five (binary, below). A NULL `type` keeps these rows out of
 *   the partial index on (type, seq), which only queries of the rarer types need; a query for
 *   token types by type adds `type IS NULL` and filters after decoding (query.ts).
 *
 * A record is stored compact only when decoding the blob gives back exactly its canonical text
 * (checked at write time), so decode(encode(r)) equals r for every row, whatever the attributes.
 * Every reader of rows goes through decodeColumns / decodeRecord (never JSON.parse(row.attrs)).
 *
 * Blob, codec version 1:
 *   0x01, source (value), type (value), kind (value), fingerprint (value), attrs (object value)
 * value: a tag byte, then
 *   NULL 0 | FALSE 1 | TRUE 2
 *   UINT 3 varint | NEG 4 varint of -v                      (safe integers)
 *   AFTER 5 varint of v - time | BEFORE 6 varint of time - v (integers near the record's time)
 *   STR 7 varint byte length, UTF-8 | WORD 8 index into WORDS (one byte)
 *   FP 9 key-id length, key id, 32 digest bytes    (`hmac-sha256:<id>:<64 hex>`)
 *   SELF 10                                         (equals the record's fingerprint)
 *   OBJ 11 varint member count, then per member a key and a value; key: one byte index into
 *          KEYS, or 0xff, varint byte length, UTF-8
 *   JSON 12 varint byte length, canonical JSON text (anything else: floats, arrays, ...)
 * varint: unsigned LEB128. WORDS and KEYS are append-only: never reorder or remove an entry.
 */
export const RECORD_CODEC_VERSION = 1;

/** Records whose type starts with this are stored compact (when they round-trip). */
export const COMPACT_PREFIX = 'token.';
/**
 * The compact form holds `token.*` records only, and decoding enforces it: SQL readers find
 * the other types by their type column (verify's ledger.discontinuity, audit.retention_purge,
 * ..., the report's config.policy), so another type moved into a blob would still hash to its
 * leaf yet vanish from every one of them.
 */
const COMPACT_TYPE_JSON = JSON.stringify(COMPACT_PREFIX).slice(0, -1);
const NOT_COMPACT_TYPE = `compact record of a type outside ${COMPACT_PREFIX}*`;
/**
 * Fingerprint references (SELF) may expand to at most this many characters per blob byte
 * (plus SELF_SLACK): one byte naming a long fingerprint would otherwise let a small crafted
 * blob decode to hundreds of MB (quadratic in the blob's size). An `hmac-sha256:` fingerprint
 * is at most 111 characters of JSON and each reference costs 2 bytes at least (key and tag);
 * a record beyond the budget fails encodeColumns' round-trip check and is stored as text.
 */
export const SELF_PER_BYTE = 64;
export const SELF_SLACK = 1024;

export const FP_RE = /^hmac-sha256:([A-Za-z0-9_.-]{1,32}):([0-9a-f]{64})$/;
export const FP_PREFIX = FINGERPRINT_HEAD;
const KEY_ID_RE = /^[A-Za-z0-9_.-]{1,32}$/;

/** A row's record columns as SQLite returns them (attrs a Buffer in the compact form). */
export interface StoredColumns {
  seq: number;
  time: number;
  source: string | null;
  type: string | null;
  kind: string | null;
  fingerprint: string | null;
  attrs: string | Uint8Array;
}

/** What RowWriter binds for source, type, kind, fingerprint and attrs. */
export interface EncodedColumns {
  source: string | null;
  type: string | null;
  kind: string | null;
  fingerprint: string | null;
  attrs: string | Uint8Array;
}

const out = new Out();

const slab = new Slab();

function writeString(o: Out, s: string, self: string | null): void {
  if (self !== null && s === self) return o.byte(T_SELF);
  const w = WORD_INDEX.get(s);
  if (w !== undefined) {
    o.byte(T_WORD);
    return o.byte(w);
  }
  const fp = FP_RE.exec(s);
  if (fp) {
    const id = fp[1] as string;
    o.byte(T_FP);
    o.byte(id.length);
    o.room(id.length + 32);
    o.n += o.buf.write(id, o.n, 'latin1');
    o.n += o.buf.write(fp[2] as string, o.n, 'hex');
    return;
  }
  o.byte(T_STR);
  o.text(s);
}

function writeValue(o: Out, v: unknown, time: number, self: string | null): void {
  switch (typeof v) {
    case 'string':
      return writeString(o, v, self);
    case 'boolean':
      return o.byte(v ? T_TRUE : T_FALSE);
    case 'number':
      if (Number.isSafeInteger(v)) {
        const d = v - time;
        if (Number.isSafeInteger(d) && Math.abs(d) < Math.abs(v)) {
          o.byte(d >= 0 ? T_AFTER : T_BEFORE);
          return o.varint(Math.abs(d));
        }
        o.byte(v >= 0 ? T_UINT : T_NEG);
        return o.varint(Math.abs(v));
      }
      break;
    case 'object':
      if (v === null) return o.byte(T_NULL);
      if (!Array.isArray(v)) return writeObject(o, v as Record<string, unknown>, time, self);
      break;
    default:
      break;
  }
  o.byte(T_JSON);
  o.text(canonicalJson(v));
}

function writeObject(o: Out, obj: Record<string, unknown>, time: number, self: string | null) {
  const keys = Object.keys(obj).sort();
  let count = 0;
  for (const k of keys) if (obj[k] !== undefined) count += 1;
  o.byte(T_OBJ);
  o.varint(count);
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    const i = KEY_INDEX.get(k);
    if (i === undefined) {
      o.byte(INLINE_KEY);
      o.text(k);
    } else o.byte(i);
    writeValue(o, v, time, self);
  }
}

/**
 * Storage columns of a record. `fields.attrs` is its canonical attrs text (what is hashed),
 * `attrs` the object it was made from. Only `token.*` records are stored compact: other types
 * are read by SQL (json_extract) and are few.
 */
export function encodeColumns(fields: CanonicalFields, attrs: unknown): EncodedColumns {
  const text: EncodedColumns = {
    source: fields.source,
    type: fields.type,
    kind: fields.kind,
    fingerprint: fields.fingerprint,
    attrs: fields.attrs,
  };
  if (!fields.type.startsWith(COMPACT_PREFIX) || typeof attrs !== 'object' || attrs === null) {
    return text;
  }
  const o = out;
  o.n = 0;
  o.byte(RECORD_CODEC_VERSION);
  writeString(o, fields.source, null);
  writeString(o, fields.type, null);
  if (fields.kind === null) o.byte(T_NULL);
  else writeString(o, fields.kind, null);
  if (fields.fingerprint === null) o.byte(T_NULL);
  else writeString(o, fields.fingerprint, null);
  if (Array.isArray(attrs)) return text;
  writeObject(o, attrs as Record<string, unknown>, fields.time, fields.fingerprint);
  const blob = slab.take(o.buf, o.n);
  // Stored compact only when it decodes to the very bytes that were hashed (lone surrogates,
  // -0, a key order the caller's object had that canonical JSON sorts differently, ...).
  let back: CanonicalFields;
  try {
    back = decodeColumns({
      seq: fields.seq,
      time: fields.time,
      source: null,
      type: null,
      kind: null,
      fingerprint: null,
      attrs: blob,
    });
  } catch {
    return text;
  }
  return back.attrs === fields.attrs &&
    back.source === fields.source &&
    back.type === fields.type &&
    back.kind === fields.kind &&
    back.fingerprint === fields.fingerprint
    ? { source: null, type: null, kind: null, fingerprint: null, attrs: blob }
    : text;
}

/** One value as canonical JSON text; strings come back raw through `str` when asked. */
function readJson(r: In, time: number, selfJson: string | null): string {
  return readValue(r, time, selfJson, { left: SELF_PER_BYTE * r.b.length + SELF_SLACK });
}

function readValue(r: In, time: number, selfJson: string | null, budget: { left: number }): string {
  const tag = r.byte();
  switch (tag) {
    case T_NULL:
      return 'null';
    case T_FALSE:
      return 'false';
    case T_TRUE:
      return 'true';
    case T_UINT:
      return String(r.varint());
    case T_NEG:
      return String(-r.varint());
    case T_AFTER:
      return String(time + r.varint());
    case T_BEFORE:
      return String(time - r.varint());
    case T_OBJ: {
      const count = r.varint();
      let s = '{';
      for (let m = 0; m < count; m++) {
        const k = r.byte();
        const key = k === INLINE_KEY ? `${JSON.stringify(r.text())}:` : KEY_JSON[k];
        if (key === undefined) throw new RangeError(`unknown key index ${k}`);
        if (m > 0) s += ',';
        s += key + readValue(r, time, selfJson, budget);
      }
      return `${s}}`;
    }
    case T_JSON:
      return r.text();
    case T_WORD: {
      const w = WORD_JSON[r.byte()];
      if (w === undefined) throw new RangeError('unknown word index');
      return w;
    }
    case T_SELF:
      if (selfJson === null) throw new RangeError('fingerprint reference without a fingerprint');
      budget.left -= selfJson.length;
      if (budget.left < 0) throw new RangeError('fingerprint references expand too far');
      return selfJson;
    default:
      return stringJson(r, tag);
  }
}

/** A string value (STR, WORD or FP) as JSON text, as JSON.stringify writes it. */
function stringJson(r: In, tag: number): string {
  switch (tag) {
    case T_WORD: {
      const w = WORD_JSON[r.byte()];
      if (w === undefined) throw new RangeError('unknown word index');
      return w;
    }
    case T_FP: // key id and hex need no escaping
      return `"${readStringTag(r, tag, null)}"`;
    default:
      return JSON.stringify(readStringTag(r, tag, null));
  }
}

function readStringTag(r: In, tag: number, self: string | null): string {
  switch (tag) {
    case T_STR:
      return r.text();
    case T_WORD: {
      const w = WORDS[r.byte()];
      if (w === undefined) throw new RangeError('unknown word index');
      return w;
    }
    case T_FP: {
      const id = r.latin1(r.byte());
      if (!KEY_ID_RE.test(id)) throw new RangeError('invalid key id in a fingerprint');
      return `${FP_PREFIX}${id}:${r.hex(32)}`;
    }
    case T_SELF:
      if (self === null) throw new RangeError('fingerprint reference without a fingerprint');
      return self;
    default:
      throw new RangeError(`unknown tag ${tag}`);
  }
}

function readNullableString(r: In): string | null {
  const tag = r.byte();
  return tag === T_NULL ? null : readStringTag(r, tag, null);
}

function isBlob(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

/**
 * A stored row's canonical fields (attrs as canonical JSON text, exactly as hashed), whichever
 * form it is stored in. Throws a RangeError on a compact blob that does not parse (damage).
 */
export function decodeColumns(row: StoredColumns): CanonicalFields {
  const a = row.attrs;
  if (!isBlob(a)) {
    // NULL source or type only on a damaged row (the text form always has both): '' keeps
    // readers working; such a row never hashes to its leaf or chain.
    return {
      seq: row.seq,
      time: row.time,
      source: row.source ?? '',
      type: row.type ?? '',
      kind: row.kind,
      fingerprint: row.fingerprint,
      attrs: a,
    };
  }
  const r = new In(a);
  const version = r.byte();
  if (version !== RECORD_CODEC_VERSION) throw new RangeError(`unknown codec version ${version}`);
  const source = readStringTag(r, r.byte(), null);
  const type = readStringTag(r, r.byte(), null);
  if (!type.startsWith(COMPACT_PREFIX)) throw new RangeError(NOT_COMPACT_TYPE);
  const kind = readNullableString(r);
  const fingerprint = readNullableString(r);
  const attrs = readJson(r, row.time, fingerprint === null ? null : JSON.stringify(fingerprint));
  if (r.i !== a.length) throw new RangeError('trailing bytes after a compact record');
  return { seq: row.seq, time: row.time, source, type, kind, fingerprint, attrs };
}

/**
 * canonicalRecord(decodeColumns(row)) of a compact row in one pass, without the intermediate
 * strings: verification's hot loop. Same grammar and errors as decodeColumns.
 */
export function canonicalOfCompact(seq: number, time: number, blob: Uint8Array): string {
  const r = new In(blob);
  const version = r.byte();
  if (version !== RECORD_CODEC_VERSION) throw new RangeError(`unknown codec version ${version}`);
  const source = stringJson(r, r.byte());
  const type = stringJson(r, r.byte());
  if (!type.startsWith(COMPACT_TYPE_JSON)) throw new RangeError(NOT_COMPACT_TYPE);
  let tag = r.byte();
  const kind = tag === T_NULL ? 'null' : stringJson(r, tag);
  tag = r.byte();
  const fp = tag === T_NULL ? null : stringJson(r, tag);
  const attrs = readJson(r, time, fp);
  if (r.i !== blob.length) throw new RangeError('trailing bytes after a compact record');
  return `[${LEDGER_FORMAT_VERSION},${seq},${time},${source},${type},${kind},${fp ?? 'null'},${attrs}]`;
}
