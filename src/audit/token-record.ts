import type { AuditInput } from './record.js';

/**
 * The keyspace's token records (`token.written`, `token.expired`, ...): nearly all of a busy
 * ledger's records, and one shape. tokenInput() is the one place that shape is written: the
 * recorder makes its records with it, and the writer thread remakes them with it from the
 * columns encodeTokens() posts (issue #19). JSON.stringify of a batch of them cost the event
 * loop ~1.1 µs a record (most of it the two 79-char fingerprints, checked for escapes char by
 * char); its columns ~0.05 µs, and the writer thread decodes them faster than it parsed JSON.
 */
export interface TokenRecordFields {
  /** Observed time, unix ms. */
  time: number;
  /** `token.<TokenEventType>`. */
  type: string;
  kind: string;
  fingerprint: string;
  backlog?: true | undefined;
  db: number;
  dueAt?: number | null | undefined;
  epoch?: number | undefined;
  expiryLagMs?: number | undefined;
  /** The key's attributes (placeholder values; secrets as fingerprints). */
  key: Readonly<Record<string, string>>;
  lifetimeMs?: number | undefined;
  node: string;
  pos?: string | undefined;
  redisEvent: string;
  renamedFrom?: { readonly kind: string; readonly fingerprint: string } | null | undefined;
  rewrite?: true | undefined;
  ttlMs?: number | null | undefined;
  ttlUnknown?: true | undefined;
}

declare const TOKEN_INPUT: unique symbol;

/**
 * The attributes of a token record: every field of TokenRecordFields but the record's own four,
 * each present (undefined where the fields leave it out), as tokenInput() writes them.
 */
export type TokenAttrs = {
  readonly [
    K in Exclude<keyof TokenRecordFields, 'time' | 'type' | 'kind' | 'fingerprint'>
  ]: TokenRecordFields[K];
};

/** A record tokenInput() made (the brand is compile-time only: nothing else makes one). */
export interface TokenInput extends AuditInput {
  readonly source: 'redis';
  readonly kind: string;
  readonly fingerprint: string;
  readonly attrs: TokenAttrs;
  readonly [TOKEN_INPUT]: true;
}

/** The audit record of a token event's fields. */
export function tokenInput(f: TokenRecordFields): TokenInput {
  return {
    time: f.time,
    source: 'redis',
    type: f.type,
    kind: f.kind,
    fingerprint: f.fingerprint,
    // Keys in canonical (sorted) order: the ledger's encoder then needs no sort per record.
    attrs: {
      backlog: f.backlog,
      db: f.db,
      dueAt: f.dueAt,
      epoch: f.epoch,
      expiryLagMs: f.expiryLagMs,
      key: f.key,
      lifetimeMs: f.lifetimeMs,
      node: f.node,
      pos: f.pos,
      redisEvent: f.redisEvent,
      renamedFrom: f.renamedFrom,
      rewrite: f.rewrite,
      ttlMs: f.ttlMs,
      ttlUnknown: f.ttlUnknown,
    },
  } as TokenInput;
}

/**
 * A batch of token records as columns (structured-clone friendly: typed arrays and one string).
 * Per record: NUMS numbers, two flag words, and its strings appended to `text` (`lens` their
 * lengths, in order): type, kind, node and redisEvent only where they differ from the previous
 * record's, the fingerprint, pos, renamedFrom's kind and fingerprint when there, then the key's
 * names (unless the same as the previous record's) and its values (unless the fingerprint).
 */
export interface TokenColumns {
  n: number;
  nums: Float64Array;
  flags: Uint32Array;
  text: string;
  lens: Uint32Array;
}

/** time, db, dueAt, epoch, expiryLagMs, lifetimeMs, ttlMs. */
const NUMS = 7;
// Flag word 0.
const DUE_NULL = 1 << 0;
const DUE_NUM = 1 << 1;
const TTL_NULL = 1 << 2;
const TTL_NUM = 1 << 3;
const EPOCH = 1 << 4;
const LAG = 1 << 5;
const LIFETIME = 1 << 6;
const BACKLOG = 1 << 7;
const REWRITE = 1 << 8;
const TTL_UNKNOWN = 1 << 9;
const RENAMED_NULL = 1 << 10;
const RENAMED = 1 << 11;
const POS = 1 << 12;
const NEW_TYPE = 1 << 13;
const NEW_KIND = 1 << 14;
const NEW_NODE = 1 << 15;
const NEW_REDIS_EVENT = 1 << 16;
const NEW_KEY_NAMES = 1 << 17;
const ALL_FLAGS = (NEW_KEY_NAMES << 1) - 1;
/** Flag word 1: the key's entry count (low byte), then which of its first 24 values is the fingerprint. */
const MAX_KEY_ENTRIES = 24;

/**
 * Columns of `inputs`; undefined when one cannot go as columns (a key of more than 24 entries,
 * strings past V8's longest string), and the batch then goes as copies. A key's own fields only,
 * as canonical JSON reads them (Object.keys): an inherited enumerable one is not the record's.
 */
export function encodeTokens(inputs: readonly TokenInput[]): TokenColumns | undefined {
  try {
    return encode(inputs);
  } catch {
    return undefined;
  }
}

function encode(inputs: readonly TokenInput[]): TokenColumns | undefined {
  const n = inputs.length;
  const nums = new Float64Array(n * NUMS);
  const flags = new Uint32Array(n * 2);
  let lens = new Uint32Array(n * 4);
  let s = 0;
  let text = '';
  const add = (v: string): void => {
    if (s === lens.length) {
      const more = new Uint32Array(lens.length * 2);
      more.set(lens);
      lens = more;
    }
    lens[s++] = v.length;
    text += v;
  };
  let prev: TokenInput | undefined;
  let prevNames: string[] = [];
  /** The current record's key names (the first `count`), reused from record to record. */
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = inputs[i] as TokenInput;
    const a = r.attrs;
    const o = i * NUMS;
    let f = 0;
    nums[o] = r.time;
    nums[o + 1] = a.db;
    if (a.dueAt === null) f |= DUE_NULL;
    else if (a.dueAt !== undefined) {
      f |= DUE_NUM;
      nums[o + 2] = a.dueAt;
    }
    if (a.epoch !== undefined) {
      f |= EPOCH;
      nums[o + 3] = a.epoch;
    }
    if (a.expiryLagMs !== undefined) {
      f |= LAG;
      nums[o + 4] = a.expiryLagMs;
    }
    if (a.lifetimeMs !== undefined) {
      f |= LIFETIME;
      nums[o + 5] = a.lifetimeMs;
    }
    if (a.ttlMs === null) f |= TTL_NULL;
    else if (a.ttlMs !== undefined) {
      f |= TTL_NUM;
      nums[o + 6] = a.ttlMs;
    }
    if (a.backlog === true) f |= BACKLOG;
    if (a.rewrite === true) f |= REWRITE;
    if (a.ttlUnknown === true) f |= TTL_UNKNOWN;
    if (prev === undefined || r.type !== prev.type) {
      f |= NEW_TYPE;
      add(r.type);
    }
    if (prev === undefined || r.kind !== prev.kind) {
      f |= NEW_KIND;
      add(r.kind);
    }
    if (prev === undefined || a.node !== prev.attrs.node) {
      f |= NEW_NODE;
      add(a.node);
    }
    if (prev === undefined || a.redisEvent !== prev.attrs.redisEvent) {
      f |= NEW_REDIS_EVENT;
      add(a.redisEvent);
    }
    add(r.fingerprint);
    if (a.pos !== undefined) {
      f |= POS;
      add(a.pos);
    }
    if (a.renamedFrom === null) f |= RENAMED_NULL;
    else if (a.renamedFrom !== undefined) {
      f |= RENAMED;
      add(a.renamedFrom.kind);
      add(a.renamedFrom.fingerprint);
    }
    // The key: its own names (one walk), once while they repeat; its values unless the
    // fingerprint itself.
    const key = a.key;
    let count = 0;
    for (const name in key) {
      if (!Object.hasOwn(key, name)) continue;
      if (count === MAX_KEY_ENTRIES) return undefined;
      names[count++] = name;
    }
    let same = count === prevNames.length;
    for (let j = 0; same && j < count; j++) same = names[j] === prevNames[j];
    if (!same) {
      f |= NEW_KEY_NAMES;
      prevNames = names.slice(0, count);
      for (const name of prevNames) add(name);
    }
    let fp = 0;
    for (let j = 0; j < count; j++) {
      const v = key[names[j] as string] as string;
      if (v === r.fingerprint) fp |= 1 << j;
      else add(v);
    }
    flags[i * 2] = f;
    flags[i * 2 + 1] = count | (fp << 8);
    prev = r;
  }
  return { n, nums, flags, text, lens: lens.subarray(0, s) };
}

/** The records encodeTokens() made `c` of. @throws Error when `c` is not such columns. */
export function decodeTokens(c: TokenColumns): TokenInput[] {
  const { n, nums, flags, text, lens } = c;
  if (nums.length !== n * NUMS || flags.length !== n * 2) {
    throw new Error('token columns of the wrong size (a tokenwatch bug)');
  }
  let s = 0;
  let at = 0;
  const next = (): string => {
    if (s >= lens.length) throw new Error('token columns end early (a tokenwatch bug)');
    const len = lens[s++] as number;
    const v = text.slice(at, at + len);
    at += len;
    return v;
  };
  const out = new Array<TokenInput>(n);
  let type = '';
  let kind = '';
  let node = '';
  let redisEvent = '';
  let names: string[] = [];
  for (let i = 0; i < n; i++) {
    const f = flags[i * 2] as number;
    const count = (flags[i * 2 + 1] as number) & 0xff;
    const fpMask = (flags[i * 2 + 1] as number) >>> 8;
    if (
      f & ~ALL_FLAGS ||
      (f & DUE_NULL && f & DUE_NUM) ||
      (f & TTL_NULL && f & TTL_NUM) ||
      (f & RENAMED_NULL && f & RENAMED) ||
      count > MAX_KEY_ENTRIES ||
      fpMask >>> count !== 0
    ) {
      throw new Error('token columns: flags no record has (a tokenwatch bug)');
    }
    const o = i * NUMS;
    if (f & NEW_TYPE) type = next();
    if (f & NEW_KIND) kind = next();
    if (f & NEW_NODE) node = next();
    if (f & NEW_REDIS_EVENT) redisEvent = next();
    const fingerprint = next();
    const pos = f & POS ? next() : undefined;
    const renamedFrom =
      f & RENAMED ? { kind: next(), fingerprint: next() } : f & RENAMED_NULL ? null : undefined;
    if (f & NEW_KEY_NAMES) {
      names = [];
      for (let j = 0; j < count; j++) names.push(next());
    } else if (names.length !== count) {
      throw new Error('token columns: key names missing (a tokenwatch bug)');
    }
    const key: Record<string, string> = {};
    for (let j = 0; j < count; j++)
      ownField(key, names[j] as string, fpMask & (1 << j) ? fingerprint : next());
    out[i] = tokenInput({
      time: nums[o] as number,
      type,
      kind,
      fingerprint,
      backlog: f & BACKLOG ? true : undefined,
      db: nums[o + 1] as number,
      dueAt: f & DUE_NUM ? nums[o + 2] : f & DUE_NULL ? null : undefined,
      epoch: f & EPOCH ? nums[o + 3] : undefined,
      expiryLagMs: f & LAG ? nums[o + 4] : undefined,
      key,
      lifetimeMs: f & LIFETIME ? nums[o + 5] : undefined,
      node,
      pos,
      redisEvent,
      renamedFrom,
      rewrite: f & REWRITE ? true : undefined,
      ttlMs: f & TTL_NUM ? nums[o + 6] : f & TTL_NULL ? null : undefined,
      ttlUnknown: f & TTL_UNKNOWN ? true : undefined,
    });
  }
  if (s !== lens.length || at !== text.length) {
    throw new Error('token columns hold more than their records (a tokenwatch bug)');
  }
  return out;
}

/**
 * Sets `name` as an own field, as JSON.parse does: a plain assignment of `__proto__` would set the
 * prototype instead (a key template may name a placeholder so).
 */
function ownField(o: Record<string, string>, name: string, value: string): void {
  if (name === '__proto__') {
    Object.defineProperty(o, name, { value, enumerable: true, writable: true, configurable: true });
  } else o[name] = value;
}
