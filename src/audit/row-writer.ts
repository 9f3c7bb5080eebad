import type Database from 'better-sqlite3';
import { canonicalJson, canonicalRecord, chainHashHex, leafHashHex } from './canonical.js';
import type { AuditInput } from './record.js';
import { LEAF_HINT_BYTES } from './leaf-hint.js';
import { encodeColumns } from './record-codec.js';

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
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * SQLite stores text as UTF-8, which cannot carry a lone surrogate, while canonicalRecord's
 * JSON.stringify escapes it: such a column would never hash back to its leaf. Replace it first.
 */
function wellFormed(s: string): string {
  return /[\ud800-\udfff]/.test(s) ? s.replace(LONE_SURROGATE, '\ufffd') : s;
}

/** What a batch ends with: the new head and, without a connection, the rows to insert. */
export interface BatchEnd {
  seq: number;
  chain: Buffer;
  /** 9 values per row in INSERT order; empty when the rows were inserted already. */
  args: unknown[];
}

/**
 * Rewrites rows encoded with `deferCompact` (9 values each, text form: attrs as canonical JSON)
 * into the storage encoding, in place. The writer thread runs it before its INSERTs, so the
 * storage encoding (and the decode that checks it) costs the event loop nothing. The attrs
 * object is parsed back from the canonical text: that text is what was hashed, and
 * encodeColumns keeps a row compact only when its blob decodes to exactly that text.
 */
export function compactRows(args: unknown[]): void {
  for (let i = 0; i + 9 <= args.length; i += 9) {
    const type = args[i + 3];
    if (typeof type !== 'string' || !type.startsWith('token.')) continue;
    const fields = {
      seq: args[i] as number,
      time: args[i + 1] as number,
      source: args[i + 2] as string,
      type,
      kind: args[i + 4] as string | null,
      fingerprint: args[i + 5] as string | null,
      attrs: args[i + 6] as string,
    };
    const c = encodeColumns(fields, JSON.parse(fields.attrs) as unknown);
    args[i + 2] = c.source;
    args[i + 3] = c.type;
    args[i + 4] = c.kind;
    args[i + 5] = c.fingerprint;
    args[i + 6] = c.attrs;
  }
}

export interface RowWriterOptions {
  /**
   * Hand the rows over in text form and leave the storage encoding to whoever inserts them
   * (compactRows, on the writer thread). Only without a connection.
   */
  deferCompact?: boolean;
}

/**
 * Encodes, hashes and inserts records (format version 1, docs/ledger-format.md): canonical
 * bytes, leaf = SHA-256(0x00 || canonical), chain = SHA-256(previous chain || leaf); the row in
 * the storage encoding of record-codec.ts (schema v5). Runs inside
 * the caller's transaction and keeps no state, so a rolled-back batch leaves nothing behind.
 * Without a connection it only encodes: `end()` hands the rows over (the writer thread inserts).
 */
export class RowWriter {
  readonly #one: Database.Statement | undefined;
  readonly #many: Database.Statement | undefined;
  #args: unknown[] = [];
  #seq = 0;
  #chain = '';
  #clock = 0;
  readonly #compact: boolean;

  constructor(db?: Database.Database, options: RowWriterOptions = {}) {
    this.#one = db?.prepare(insertSql(1));
    this.#many = db?.prepare(insertSql(ROWS_PER_INSERT));
    this.#compact = db !== undefined || options.deferCompact !== true;
  }

  /** Starts a batch after the record (`seq`, `chain`); `clock` replaces non-finite times. */
  begin(seq: number, chain: Buffer, clock: number): void {
    this.#seq = seq;
    this.#chain = chain.toString('hex');
    this.#clock = clock;
    this.#args = [];
  }

  /** Queues one record of the batch and returns the seq it gets. */
  add(input: AuditInput): number {
    const seq = (this.#seq += 1);
    const attrs = canonicalJson(input.attrs ?? {});
    const source = wellFormed(input.source);
    const type = wellFormed(input.type);
    const kind = input.kind == null ? null : wellFormed(input.kind);
    const fingerprint = input.fingerprint == null ? null : wellFormed(input.fingerprint);
    // A NaN time would poison every retry of the batch (STRICT rejects it): use the clock.
    const time = Number.isFinite(input.time) ? Math.trunc(input.time) : this.#clock;
    const fields = { seq, time, source, type, kind, fingerprint, attrs };
    const leaf = leafHashHex(canonicalRecord(fields));
    this.#chain = chainHashHex(this.#chain, leaf);
    // Stored compact where it can be (record-codec.ts); the leaf only as a hint: verification
    // recomputes it, and the chain, which hashes all of it, is what seals and checkpoints sign.
    const args = this.#args;
    if (this.#compact) {
      const c = encodeColumns(fields, input.attrs ?? {});
      args.push(seq, time, c.source, c.type, c.kind, c.fingerprint, c.attrs);
    } else args.push(seq, time, source, type, kind, fingerprint, attrs);
    args.push(leaf.slice(0, LEAF_HINT_BYTES * 2), this.#chain);
    if (args.length === ROWS_PER_INSERT * 9 && this.#many) {
      // Spread, not the array: better-sqlite3 binds an array argument element by element
      // through V8's generic Get(), ~2.5x slower per parameter than positional arguments.
      this.#many.run(...args);
      this.#args = [];
    }
    return seq;
  }

  /** Inserts what is left of the batch (or hands it over); returns the new head. */
  end(): BatchEnd {
    let args = this.#args;
    this.#args = [];
    if (this.#one) {
      for (let i = 0; i < args.length; i += 9) this.#one.run(...args.slice(i, i + 9));
      args = [];
    }
    return { seq: this.#seq, chain: Buffer.from(this.#chain, 'hex'), args };
  }
}
