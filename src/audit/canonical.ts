import { hash } from 'node:crypto';

/**
 * Canonical encoding of audit records, format version 1 (docs/ledger-format.md).
 *
 * canonical(record) = UTF-8 of the JSON array
 *   [formatVersion, seq, time, source, type, kind|null, fingerprint|null, attrs]
 * where attrs is canonical JSON: object keys sorted by UTF-16 code unit order, no whitespace,
 * non-finite numbers as null, strings as ECMAScript JSON.stringify writes them.
 *
 * leaf  = SHA-256(0x00 || canonical)        (RFC 6962 §2.1 leaf domain separation)
 * chain = SHA-256(previous chain || leaf)   (chain of seq 0 is 32 zero bytes)
 */
export const LEDGER_FORMAT_VERSION = 1;

export const ZERO_HASH: Buffer = Buffer.alloc(32);

export type JsonValue =
  null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue | undefined };

/** Canonical JSON text of a value (sorted keys, undefined members dropped). */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      return 'null';
  }
}

export interface CanonicalFields {
  seq: number;
  time: number;
  source: string;
  type: string;
  kind: string | null;
  fingerprint: string | null;
  /** Canonical JSON text of the attributes (as stored). */
  attrs: string;
}

export function canonicalRecord(r: CanonicalFields, version = LEDGER_FORMAT_VERSION): string {
  return `[${version},${r.seq},${r.time},${JSON.stringify(r.source)},${JSON.stringify(r.type)},${
    r.kind === null ? 'null' : JSON.stringify(r.kind)
  },${r.fingerprint === null ? 'null' : JSON.stringify(r.fingerprint)},${r.attrs}]`;
}

/** SHA-256(0x00 || canonical). One-shot crypto.hash: ~2x faster than createHash per row. */
export function leafHash(canonical: string): Buffer {
  return hash('sha256', `\u0000${canonical}`, 'buffer');
}

const scratch = Buffer.alloc(64);

/** SHA-256(previous || leaf). */
export function chainHash(previous: Buffer, leaf: Buffer): Buffer {
  previous.copy(scratch, 0);
  leaf.copy(scratch, 32);
  return hash('sha256', scratch, 'buffer');
}
