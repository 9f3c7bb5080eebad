import { canonicalJson, quotedKey, sortedKeys, type CanonicalFields } from './canonical.js';
import { fingerprintPrefixLength, hexDigestInto } from '../domain/fingerprint.js';
import { ByteWriter, Slab } from './record-codec-bytes.js';
import {
  COMPACT_PREFIX,
  decodeColumns,
  FP_PREFIX,
  RECORD_CODEC_VERSION,
  SELF_PER_BYTE,
  SELF_SLACK,
} from './record-codec.js';
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
} from './record-codec-vocabulary.js';

/** A record's fields other than its attributes (strings already free of lone surrogates). */
export type RecordHead = Omit<CanonicalFields, 'attrs'>;

/** What RowWriter hashes and stores for a compact record. */
export interface CompactRecord {
  /** Canonical JSON text of the attributes: what is hashed. */
  attrs: string;
  /** The compact blob (record-codec.ts), which decodes to exactly `attrs` and the head. */
  blob: Uint8Array;
}

/** A full decode check of one record in this many (the first one included). */
export const CHECK_EVERY = 64;

/**
 * Encodes a `token.*` record into the compact blob and its canonical attrs text in one pass
 * (docs/ledger-format.md#storage-encoding-schema-v5). Each value's text is the text that the
 * decoder (record-codec.ts readValue) produces for the bytes written for it, so the blob
 * decodes to exactly the text that is hashed by construction, instead of by decoding every
 * record again; the text equals canonicalJson(attrs) (test/audit/compact-encoder.test.ts checks
 * both on generated records). Whatever the construction cannot vouch for (a lone surrogate, a
 * fingerprint referenced beyond the decoder's budget) returns null: the caller then stores the
 * text form. Every CHECK_EVERY-th record is still decoded and compared in full; a mismatch (a
 * codec bug) stores that record as text and turns the check on for every record after it.
 */
export class CompactEncoder {
  readonly #o = new ByteWriter();
  readonly #slab = new Slab();
  #t = '';
  #self: string | null = null;
  #selfJson = '';
  #selfChars = 0;
  #sinceCheck = CHECK_EVERY - 1;
  #checkAll = false;
  #mismatches = 0;
  readonly #onCheck: ((seq: number, passed: boolean) => void) | undefined;

  /** `onCheck`: told the seq of each record a sampled decode check ran on, and its outcome. */
  constructor(onCheck?: (seq: number, passed: boolean) => void) {
    this.#onCheck = onCheck;
  }

  /** Records whose sampled decode check failed (each stored as text); 0 unless the codec has a bug. */
  get mismatches(): number {
    return this.#mismatches;
  }

  /** The compact form of a record, or null when it keeps the text form. */
  encode(head: RecordHead, attrs: unknown): CompactRecord | null {
    if (
      !head.type.startsWith(COMPACT_PREFIX) ||
      typeof attrs !== 'object' ||
      attrs === null ||
      Array.isArray(attrs)
    ) {
      return null;
    }
    const o = this.#o;
    o.n = 0;
    o.byte(RECORD_CODEC_VERSION);
    if (!this.#headString(head.source) || !this.#headString(head.type)) return null;
    if (head.kind === null) o.byte(T_NULL);
    else if (!this.#headString(head.kind)) return null;
    const fp = head.fingerprint;
    if (fp === null) o.byte(T_NULL);
    else if (!this.#headString(fp)) return null;
    this.#self = fp;
    this.#selfJson = fp === null ? '' : JSON.stringify(fp);
    this.#selfChars = 0;
    this.#t = '';
    const ok = this.#object(attrs as Record<string, unknown>, head.time);
    const text = this.#t;
    this.#t = '';
    // The decoder refuses blobs whose fingerprint references expand beyond this budget.
    if (!ok || this.#selfChars > SELF_PER_BYTE * o.n + SELF_SLACK) return null;
    const blob = this.#slab.take(o.buf, o.n);
    if (this.#checkAll || ++this.#sinceCheck >= CHECK_EVERY) {
      this.#sinceCheck = 0;
      const passed = decodesTo(head, text, blob);
      this.#onCheck?.(head.seq, passed);
      if (!passed) {
        this.#mismatches += 1;
        this.#checkAll = true;
        return null;
      }
    }
    return { attrs: text, blob };
  }

  /** source, type, kind or fingerprint: a string value with no text of its own. */
  #headString(s: string): boolean {
    const o = this.#o;
    const w = WORD_INDEX.get(s);
    if (w !== undefined) {
      o.byte(T_WORD);
      o.byte(w);
      return true;
    }
    if (this.#fingerprint(s)) return true;
    if (!s.isWellFormed()) return false;
    o.byte(T_STR);
    o.text(s);
    return true;
  }

  /**
   * FP: key id and hex digest as bytes; decoded as `"hmac-sha256:<id>:<hex>"`, which is s.
   * Parsed by src/domain/fingerprint.ts rather than with FP_RE (same grammar; the property test
   * compares the bytes with encodeColumns', which uses FP_RE): no match array and substrings.
   */
  #fingerprint(s: string): boolean {
    const cut = fingerprintPrefixLength(s);
    if (cut < 0) return false;
    const idEnd = cut - 1;
    const o = this.#o;
    o.room(2 + idEnd - FP_PREFIX.length + 32);
    const buf = o.buf;
    let p = o.n;
    buf[p++] = T_FP;
    buf[p++] = idEnd - FP_PREFIX.length;
    for (let i = FP_PREFIX.length; i < idEnd; i++) buf[p++] = s.charCodeAt(i);
    if (!hexDigestInto(s, cut, buf, p)) return false;
    o.n = p + 32;
    return true;
  }

  #string(s: string): boolean {
    const o = this.#o;
    if (this.#self !== null && s === this.#self) {
      o.byte(T_SELF);
      this.#t += this.#selfJson;
      this.#selfChars += this.#selfJson.length;
      return true;
    }
    const w = WORD_INDEX.get(s);
    if (w !== undefined) {
      o.byte(T_WORD);
      o.byte(w);
      this.#t += WORD_JSON[w] as string;
      return true;
    }
    if (this.#fingerprint(s)) {
      // Only [A-Za-z0-9_.:-] and hex: JSON.stringify adds the quotes and nothing else.
      this.#t += `"${s}"`;
      return true;
    }
    // UTF-8 carries every well-formed string unchanged, so JSON.stringify of what is read back
    // is JSON.stringify(s); a lone surrogate would come back as U+FFFD.
    if (!s.isWellFormed()) return false;
    o.byte(T_STR);
    o.text(s);
    this.#t += JSON.stringify(s);
    return true;
  }

  #value(v: unknown, time: number): boolean {
    const o = this.#o;
    switch (typeof v) {
      case 'string':
        return this.#string(v);
      case 'boolean':
        o.byte(v ? T_TRUE : T_FALSE);
        this.#t += v ? 'true' : 'false';
        return true;
      case 'number':
        if (Number.isSafeInteger(v)) {
          // Exact in doubles: v and time are safe integers and so is their difference, so
          // time + d (or time - d) is v again; String() of -0 is "0", as canonicalJson writes it.
          const d = v - time;
          if (Number.isSafeInteger(d) && Math.abs(d) < Math.abs(v)) {
            o.byte(d >= 0 ? T_AFTER : T_BEFORE);
            o.varint(Math.abs(d));
          } else {
            o.byte(v >= 0 ? T_UINT : T_NEG);
            o.varint(Math.abs(v));
          }
          this.#t += String(v);
          return true;
        }
        break;
      case 'object':
        if (v === null) {
          o.byte(T_NULL);
          this.#t += 'null';
          return true;
        }
        if (!Array.isArray(v)) return this.#object(v as Record<string, unknown>, time);
        break;
      default:
        break;
    }
    // JSON: read back as this very text. canonicalJson escapes lone surrogates, so its text is
    // well-formed and survives UTF-8; checked anyway, since the cost is on rare values only.
    const json = canonicalJson(v);
    if (!json.isWellFormed()) return false;
    o.byte(T_JSON);
    o.text(json);
    this.#t += json;
    return true;
  }

  /** OBJ with its member count written after the members (a getter is read once). */
  #object(obj: Record<string, unknown>, time: number): boolean {
    const o = this.#o;
    o.byte(T_OBJ);
    const at = o.n;
    o.byte(0);
    this.#t += '{';
    let count = 0;
    for (const k of sortedKeys(obj)) {
      const v = obj[k];
      if (v === undefined) continue;
      if (count > 0) this.#t += ',';
      count += 1;
      const i = KEY_INDEX.get(k);
      if (i === undefined) {
        if (!k.isWellFormed()) return false;
        o.byte(INLINE_KEY);
        o.text(k);
        this.#t += quotedKey(k);
        this.#t += ':';
      } else {
        o.byte(i);
        this.#t += KEY_JSON[i] as string;
      }
      if (!this.#value(v, time)) return false;
    }
    this.#t += '}';
    if (count < 0x80) {
      o.buf[at] = count;
      return true;
    }
    // Rare: the varint needs more than the one byte reserved; move the members up.
    let len = 1;
    for (let c = count; c >= 0x80; c = Math.floor(c / 0x80)) len += 1;
    o.room(len - 1);
    o.buf.copyWithin(at + len, at + 1, o.n);
    o.n += len - 1;
    let c = count;
    let p = at;
    for (; c >= 0x80; c = Math.floor(c / 0x80)) o.buf[p++] = (c % 0x80) | 0x80;
    o.buf[p] = c;
    return true;
  }
}

/** The full check: the blob decodes to exactly the head and attrs text that are hashed. */
function decodesTo(head: RecordHead, attrs: string, blob: Uint8Array): boolean {
  try {
    const back = decodeColumns({
      seq: head.seq,
      time: head.time,
      source: null,
      type: null,
      kind: null,
      fingerprint: null,
      attrs: blob,
    });
    return (
      back.attrs === attrs &&
      back.source === head.source &&
      back.type === head.type &&
      back.kind === head.kind &&
      back.fingerprint === head.fingerprint
    );
  } catch {
    return false;
  }
}
