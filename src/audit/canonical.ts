import { hash } from 'node:crypto';

/**
 * Canonical encoding of audit records, format version 1 (docs/ledger-format.md). Stable: a
 * record written by any version of tokenwatch must hash to the same leaf forever.
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

/** Quoted JSON text of object keys (and record sources, types, kinds) seen so far: few recur. */
const quotedKeys = new Map<string, string>();
const MAX_QUOTED_KEYS = 4096;

/** JSON.stringify(k), cached (the compact encoder writes the same key text). */
export function quotedKey(k: string): string {
  let q = quotedKeys.get(k);
  if (q === undefined) {
    q = JSON.stringify(k);
    if (quotedKeys.size < MAX_QUOTED_KEYS) quotedKeys.set(k, q);
  }
  return q;
}

/** Object keys in UTF-16 code unit order; most records' keys need no sort at all. */
export function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj);
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) return keys.sort();
  }
  return keys;
}

/**
 * Canonical JSON text of a value (sorted keys, undefined members dropped). Written as loops
 * rather than map/filter/join: it runs once per record on the ledger's hot path. The output is
 * byte-identical to the v1 writer for every input that writer encoded as valid JSON.
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      // A finite number's JSON text is its ECMAScript ToString (both print -0 as "0").
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          out += canonicalJson(value[i] as unknown);
        }
        return `${out}]`;
      }
      const obj = value as Record<string, unknown>;
      let out = '{';
      let first = true;
      for (const k of sortedKeys(obj)) {
        const v = obj[k];
        if (v === undefined) continue;
        if (!first) out += ',';
        first = false;
        out += quotedKey(k);
        out += ':';
        out += canonicalJson(v);
      }
      return `${out}}`;
    }
    default:
      return 'null';
  }
}

/**
 * A plain copy of `value` with the same canonicalJson text that the structured clone accepts:
 * functions and symbols become null (as canonicalJson writes them), every other object a plain
 * object of its own enumerable keys (the ones canonicalJson reads), arrays stay arrays. For the
 * rare record the writer thread could not be sent as it is.
 */
export function canonicalSafe(value: unknown): unknown {
  switch (typeof value) {
    case 'function':
    case 'symbol':
      return null;
    case 'object': {
      if (value === null) return null;
      if (Array.isArray(value)) {
        const out: unknown[] = [];
        for (let i = 0; i < value.length; i++) out.push(canonicalSafe(value[i] as unknown));
        return out;
      }
      const obj = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(obj)) {
        const v = canonicalSafe(obj[k]);
        // Defined, not assigned: an own `__proto__` key (JSON.parse makes one) stays a key.
        if (k === '__proto__') {
          Object.defineProperty(out, k, {
            value: v,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        } else out[k] = v;
      }
      return out;
    }
    default:
      return value;
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
  // source, type and kind take few values: their JSON text comes from the key cache.
  return `[${version},${r.seq},${r.time},${quotedKey(r.source)},${quotedKey(r.type)},${
    r.kind === null ? 'null' : quotedKey(r.kind)
  },${r.fingerprint === null ? 'null' : JSON.stringify(r.fingerprint)},${r.attrs}]`;
}

/** SHA-256(0x00 || canonical). One-shot crypto.hash: ~2x faster than createHash per row. */
export function leafHash(canonical: string): Buffer {
  return hash('sha256', `\u0000${canonical}`, 'buffer');
}

/** leafHash as lowercase hex: a string is cheaper to make than a Buffer (verification). */
export function leafHashHex(canonical: string): string {
  return hash('sha256', `\u0000${canonical}`, 'hex');
}

const scratch = Buffer.alloc(64);

/** SHA-256(previous || leaf). */
export function chainHash(previous: Buffer, leaf: Buffer): Buffer {
  previous.copy(scratch, 0);
  leaf.copy(scratch, 32);
  return hash('sha256', scratch, 'buffer');
}

/** chainHash over hex inputs, hex out: no Buffer allocated per row (verification hot loop). */
export function chainHashHex(previousHex: string, leafHex: string): string {
  scratch.write(previousHex, 0, 32, 'hex');
  scratch.write(leafHex, 32, 32, 'hex');
  return hash('sha256', scratch, 'hex');
}
