import type Database from 'better-sqlite3';
import {
  canonicalJson,
  canonicalRecord,
  chainHashHex,
  leafHashHex,
  type CanonicalFields,
} from './canonical.js';
import { CompactEncoder } from './compact-encoder.js';
import type { AuditInput } from './record.js';
import { LEAF_HINT_BYTES } from './leaf-hint.js';

/** Rows per multi-row INSERT: one statement step instead of 32 cuts per-row binding overhead. */
export const ROWS_PER_INSERT = 32;
const COLUMNS = '(seq, time, source, type, kind, fingerprint, attrs, leaf, chain)';
/**
 * Leaf and chain are bound as hex and stored as BLOB by unhex(): a hex digest is ~1.5 us cheaper
 * to produce in Node than a Buffer digest, and it is what the next chain link hashes anyway.
 */
const ONE = '(?,?,?,?,?,?,?,unhex(?),unhex(?))';

/** The INSERT of `rows` records, 9 parameters each (the benchmark's ceiling uses it too). */
export function insertSql(rows: number): string {
  return `INSERT INTO records ${COLUMNS} VALUES ${Array<string>(rows).fill(ONE).join(',')}`;
}
const EMPTY = Buffer.alloc(0);

/**
 * Chains rows of a leaves-only batch (RowWriter.beginLeaves) after `chainHex`, in place: each
 * row's full leaf hash becomes its chain hash. Returns the last chain hash (hex).
 */
export function chainLeaves(args: unknown[], chainHex: string): string {
  let chain = chainHex;
  for (let i = 8; i < args.length; i += 9) {
    chain = chainHashHex(chain, args[i] as string);
    args[i] = chain;
  }
  return chain;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * SQLite stores text as UTF-8, which cannot carry a lone surrogate, while canonicalRecord's
 * JSON.stringify escapes it: such a column would never hash back to its leaf. Replace it first.
 */
function wellFormed(s: string): string {
  return s.isWellFormed() ? s : s.replace(LONE_SURROGATE, '\ufffd');
}

/**
 * A record whose sampled decode check failed (compact-encoder.ts): it is stored as text, but the
 * compact records since the last check that passed (`suspectFrom` up to `seq` - 1) were stored
 * unchecked by the same codec, and may not decode to the text that was hashed.
 */
export interface EncodeMismatch {
  seq: number;
  suspectFrom: number;
}

/** What a batch ends with: the new head and, without a connection, the rows to insert. */
export interface BatchEnd {
  seq: number;
  chain: Buffer;
  /** 9 values per row in INSERT order; empty when the rows were inserted already. */
  args: unknown[];
}

/**
 * Encodes, hashes and inserts records (format version 1, docs/ledger-format.md): canonical
 * bytes, leaf = SHA-256(0x00 || canonical), chain = SHA-256(previous chain || leaf); the row in
 * the storage encoding of record-codec.ts (schema v5), written by compact-encoder.ts. Runs inside
 * the caller's transaction and keeps no state, so a rolled-back batch leaves nothing behind.
 * Without a connection it only encodes: `end()` hands the rows over (the writer thread inserts).
 */
export class RowWriter {
  readonly #one: Database.Statement | undefined;
  readonly #many: Database.Statement | undefined;
  #args: unknown[] = [];
  #seq = 0;
  /** Chain hash (hex) after the last record added; null in a leaves-only batch. */
  #chain: string | null = '';
  #clock = 0;
  readonly #compact = new CompactEncoder((seq, passed) => this.#checked(seq, passed));
  readonly #onMismatch: ((m: EncodeMismatch) => void) | undefined;
  /** The seq of the last record whose sampled decode check passed. */
  #checkedThrough = 0;
  /** The first compact record encoded after that check, if any. */
  #uncheckedFrom: number | undefined;

  /** `onMismatch`: told of each record whose sampled decode check failed (a codec bug). */
  constructor(db?: Database.Database, onMismatch?: (m: EncodeMismatch) => void) {
    this.#one = db?.prepare(insertSql(1));
    this.#many = db?.prepare(insertSql(ROWS_PER_INSERT));
    this.#onMismatch = onMismatch;
  }

  /**
   * The first record stored compact since the last sampled decode check that passed, if any:
   * where the range a failed check reports would start (another encoder's report widens to it).
   */
  get uncheckedFrom(): number | undefined {
    return this.#uncheckedFrom;
  }

  /** Starts a batch after the record (`seq`, `chain`); `clock` replaces non-finite times. */
  begin(seq: number, chain: Buffer, clock: number): void {
    this.#seq = seq;
    this.#chain = chain.toString('hex');
    this.#clock = clock;
    this.#args = [];
  }

  /**
   * Starts a batch after `seq` whose rows carry each record's full leaf hash (hex) where the
   * chain hash goes: whoever inserts them chains them (chainLeaves), knowing the head before.
   */
  beginLeaves(seq: number, clock: number): void {
    if (this.#many) throw new Error('a leaves-only batch on a connection (a tokenwatch bug)');
    this.begin(seq, EMPTY, clock);
    this.#chain = null;
  }

  /** Queues one record of the batch and returns the seq it gets. */
  add(input: AuditInput): number {
    const seq = (this.#seq += 1);
    const attrs = input.attrs ?? {};
    // A NaN time would poison every retry of the batch (STRICT rejects it): use the clock.
    const time = Number.isFinite(input.time) ? Math.trunc(input.time) : this.#clock;
    const fields: CanonicalFields = {
      seq,
      time,
      source: wellFormed(input.source),
      type: wellFormed(input.type),
      kind: input.kind == null ? null : wellFormed(input.kind),
      fingerprint: input.fingerprint == null ? null : wellFormed(input.fingerprint),
      attrs: '',
    };
    // Stored compact where it can be (compact-encoder.ts), which also writes the canonical attrs
    // text; otherwise the text form, the canonical text itself.
    const unchecked = this.#uncheckedFrom;
    this.#uncheckedFrom ??= seq; // reset by a check of this record that passes
    const c = this.#compact.encode(fields, attrs);
    if (c === null && this.#uncheckedFrom === seq) this.#uncheckedFrom = unchecked; // text form
    fields.attrs = c === null ? canonicalJson(attrs) : c.attrs;
    const leaf = leafHashHex(canonicalRecord(fields));
    const chain = this.#chain === null ? leaf : chainHashHex(this.#chain, leaf);
    if (this.#chain !== null) this.#chain = chain;
    // The leaf only as a hint: verification recomputes it, and the chain, which hashes all of
    // it, is what seals and checkpoints sign.
    const args = this.#args;
    if (c === null) {
      args.push(seq, time, fields.source, fields.type, fields.kind, fields.fingerprint);
      args.push(fields.attrs);
    } else args.push(seq, time, null, null, null, null, c.blob);
    args.push(leaf.slice(0, LEAF_HINT_BYTES * 2), chain);
    if (args.length === ROWS_PER_INSERT * 9 && this.#many) {
      // Spread, not the array (see insertRows).
      this.#many.run(...args);
      this.#args = [];
    }
    return seq;
  }

  /** A sampled decode check ran on record `seq`: it passed, or the codec has a bug. */
  #checked(seq: number, passed: boolean): void {
    if (passed) {
      this.#checkedThrough = seq;
      this.#uncheckedFrom = undefined;
      return;
    }
    // A batch encoded again after a failed commit starts below the last check: never past seq.
    const suspectFrom = Math.min(this.#checkedThrough + 1, seq);
    this.#onMismatch?.({ seq, suspectFrom });
  }

  /** Ends a leaves-only batch: its last seq and rows. */
  endLeaves(): { seq: number; args: unknown[] } {
    const args = this.#args;
    this.#args = [];
    this.#chain = '';
    return { seq: this.#seq, args };
  }

  /** Inserts what is left of the batch (or hands it over); returns the new head. */
  end(): BatchEnd {
    if (this.#chain === null) throw new Error('end() of a leaves-only batch (a tokenwatch bug)');
    let args = this.#args;
    this.#args = [];
    if (this.#one) {
      this.insertRows(args);
      args = [];
    }
    return { seq: this.#seq, chain: Buffer.from(this.#chain, 'hex'), args };
  }

  /**
   * Inserts encoded rows (9 values each, as add() makes them) on this writer's connection:
   * ROWS_PER_INSERT rows per statement, then one by one. Positional arguments, not the array:
   * better-sqlite3 binds an array argument element by element through V8's generic Get(), ~2.5x
   * slower per parameter.
   */
  insertRows(args: unknown[]): void {
    const many = this.#many;
    const one = this.#one;
    if (!many || !one) throw new Error('insertRows() without a connection (a tokenwatch bug)');
    const width = ROWS_PER_INSERT * 9;
    let i = 0;
    for (; i + width <= args.length; i += width) many.run(...args.slice(i, i + width));
    for (; i < args.length; i += 9) one.run(...args.slice(i, i + 9));
  }
}
