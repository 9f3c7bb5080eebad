import { DigestTable } from '../domain/digest-table.js';
import { fingerprintPrefixLength, hexDigestInto } from '../domain/fingerprint.js';
import { EndColumns } from './end-columns.js';
import type { TokenEnd } from './end-columns.js';
import { Codes, RefCodes } from './interned.js';
import { SlotOrder } from './slot-order.js';

/** Join code: no value. */
export const NIL = -1;
/** Join code: the token's own fingerprint (not interned). */
export const OWN = -2;
const MIN_SLOTS = 1024;
/** Columns grow by a quarter: at most ~25 % of slots stand empty after a growth. */
const GROWTH = 1.25;
/** Marks a value kept whole (never the first char of an encoded fingerprint, whose chars are < 256). */
const WHOLE = '\u0100';
const TIMES = 4;
// Flags per slot (the public ones are static members below).
const DUE_NULL = 8;
const DUE_UNDEFINED = 16;
const SEQ_UNDEFINED = 32;
/** The slot's id is `scope + fingerprint` with a standard fingerprint: it is in the table. */
const DIGEST = 64;
const USED = 128;

/** Texts of a slot whose id or fingerprint is not standard (kept whole; rare). */
interface Whole {
  id: string;
  fingerprint: string;
  kind: string;
}

/**
 * The columns behind the live token view: one slot per live token, its fingerprint as 32
 * digest bytes, its id as an interned `node, db, kind` scope code plus that digest, times in a
 * Float64Array, flags and codes in small typed arrays, LRU order as prev/next slot links, and
 * the id map as an open-addressing table over the digests. Nothing per token lives on the V8
 * heap except what is rare (odd ids, open findings, extra token ids). Slots are reused; `gen`
 * counts (mod 2^16) how often a slot was freed, so a record read before can tell it went stale.
 */
export class LiveColumns {
  static readonly WRITE_SEEN = 1;
  /** The token's first token id is its own fingerprint. */
  static readonly OWN_TOKEN_ID = 2;
  /** The token's session id is its own fingerprint. */
  static readonly OWN_SESSION = 4;

  /** Interned join values (subjects, clients, sessions, families). */
  readonly strings = new RefCodes();
  readonly #scopes = new Codes();
  readonly #prefixes = new Codes();
  /** Kind of each scope code (the kind part of `node\0db\0kind\0`). */
  readonly #scopeKinds: string[] = [];
  readonly #table = new DigestTable((slot) => this.#words[slot * 8] as number);
  readonly #wholeBy = new Map<string, number>();
  readonly #whole = new Map<number, Whole>();
  #digests = Buffer.alloc(0);
  #words = new Uint32Array(0);
  #times = new Float64Array(0);
  #flags = new Uint8Array(0);
  #scope = new Uint16Array(0);
  #prefix = new Uint16Array(0);
  readonly #order = new SlotOrder();
  /** Join codes, 4 per slot; allocated on the first token that has a join value. */
  #joins = new Int32Array(0);
  /** End columns, only for a store that keeps ends. */
  readonly #ends: EndColumns | undefined;
  #gen = new Uint16Array(0);
  #slots = 0;
  #size = 0;
  readonly #distinct = new Map<number, number>();
  readonly #scratch = Buffer.alloc(32);
  readonly #sw = new Uint32Array(this.#scratch.buffer, this.#scratch.byteOffset, 8);
  #pScope = 0;
  #pPrefix = 0;
  /** The last key-id prefix #parse found a code for, and that code (never taken back either). */
  #lastPrefix = '';
  #lastPrefixCode = 0;
  /** The last successful #parse (codes are never taken back, so it cannot go stale). */
  readonly #memo = {
    ok: false,
    /** The id it was parsed from (#parseId) and where its fingerprint starts, if any. */
    id: undefined as string | undefined,
    cut: 0,
    fp: '',
    scope: undefined as string | undefined,
    prefix: 0,
    scopeCode: 0,
    words: new Uint32Array(8),
  };

  /** `keepsEnds`: end time, type and seq in columns (the ended-token store). */
  constructor(keepsEnds: boolean) {
    this.#ends = keepsEnds ? new EndColumns() : undefined;
  }

  get size(): number {
    return this.#size;
  }

  get keepsEnds(): boolean {
    return this.#ends !== undefined;
  }

  /** Bytes of the columns and the digest table (typed arrays, outside the V8 heap). */
  get bytes(): number {
    const cols = [this.#digests, this.#times, this.#flags, this.#scope, this.#prefix, this.#gen];
    const more = [this.#joins];
    const ends = (this.#ends?.bytes ?? 0) + this.#order.bytes;
    return [...cols, ...more].reduce((n, a) => n + a.byteLength, 0) + this.#table.bytes + ends;
  }

  get oldest(): number {
    return this.#order.oldest;
  }

  newer(slot: number): number {
    return this.#order.newer(slot);
  }

  gen(slot: number): number {
    return this.#gen[slot] as number;
  }

  used(slot: number): boolean {
    return ((this.#flags[slot] as number) & USED) !== 0;
  }

  /** The slot's id is `scope + fingerprint` (false: kept whole). */
  isStandard(slot: number): boolean {
    return ((this.#flags[slot] as number) & DIGEST) !== 0;
  }

  /**
   * The slot of a live `id`, -1 when absent. `digest`: the 32 digest bytes (latin1) of the id's
   * fingerprint, when the caller has them (TokenEvent.digest): not decoded from the hex again.
   */
  slotOf(id: string, digest?: string): number {
    const whole = this.#wholeSlot(id);
    if (whole >= 0) return whole;
    const cut = id.lastIndexOf('\u0000') + 1;
    if (cut === 0 || !this.#parseId(id, cut, false, digest)) return -1;
    return this.#find();
  }

  /**
   * slotOf(id) for an `id` the caller built as `scope + fingerprint` (tokenIdentity): nothing is
   * cut back out of it, and the scope's code is found by the caller's (usually the same) scope
   * string. The id's parse is remembered for the add() of the same id that may follow.
   */
  slotOfParts(id: string, scope: string, fingerprint: string, digest?: string): number {
    const whole = this.#wholeSlot(id);
    if (whole >= 0) return whole;
    if (!this.#parse(scope, fingerprint, false, digest)) return -1;
    this.#memo.id = id;
    this.#memo.cut = scope.length;
    return this.#find();
  }

  /** The slot of an id kept whole (not scope + standard fingerprint), -1 when none. */
  #wholeSlot(id: string): number {
    return this.#wholeBy.size > 0 ? (this.#wholeBy.get(id) ?? -1) : -1;
  }

  /** The slot holding the scratch digest under #pScope and #pPrefix, -1 when none. */
  #find(): number {
    const t = this.#table;
    for (let i = t.start(this.#sw[0] as number); ; i = t.next(i)) {
      const s = t.slotAt(i);
      if (s < 0) return -1;
      if (this.#scope[s] === this.#pScope && this.#prefix[s] === this.#pPrefix && this.#same(s))
        return s;
    }
  }

  /** Slots whose fingerprint is `fingerprint` and that carry `flag` (0: any). */
  withFingerprint(fingerprint: string, flag: number): number[] {
    const out: number[] = [];
    if (this.#parse(undefined, fingerprint, false)) {
      const t = this.#table;
      for (let i = t.start(this.#sw[0] as number); ; i = t.next(i)) {
        const s = t.slotAt(i);
        if (s < 0) break;
        if (this.#prefix[s] === this.#pPrefix && this.#same(s) && (flag === 0 || this.has(s, flag)))
          out.push(s);
      }
    }
    if (flag === 0)
      for (const [s, w] of this.#whole) if (w.fingerprint === fingerprint) out.push(s);
    return out;
  }

  /** A new slot for the token at the newest end (the caller checked `id` is not live). */
  add(id: string, fingerprint: string, kind: string): number {
    const slot = this.#alloc();
    const cut = id.length - fingerprint.length;
    // The id slotOfParts just parsed as scope + this fingerprint (the same strings: compared by
    // identity, so the id, a concatenation, is not flattened to read its chars), else its text.
    const memo = this.#memo;
    const parsed = memo.ok && memo.id === id && memo.cut === cut && memo.fp === fingerprint;
    const standard =
      cut > 0 &&
      (parsed || (id.charCodeAt(cut - 1) === 0 && id.endsWith(fingerprint))) &&
      this.#parseId(id, cut, true) &&
      this.#scopeKinds[this.#pScope] === kind;
    let flags = USED;
    if (standard) {
      this.#digests.set(this.#scratch, slot * 32);
      this.#scope[slot] = this.#pScope;
      this.#prefix[slot] = this.#pPrefix;
      flags |= DIGEST;
      this.#flags[slot] = flags;
      this.#table.insert(slot);
    } else {
      this.#flags[slot] = flags;
      this.#whole.set(slot, { id, fingerprint, kind });
      this.#wholeBy.set(id, slot);
    }
    this.#order.link(slot);
    this.#size++;
    return slot;
  }

  free(slot: number): void {
    const flags = this.#flags[slot] as number;
    if ((flags & USED) === 0) return;
    if (flags & DIGEST) this.#table.remove(slot);
    else {
      const w = this.#whole.get(slot);
      if (w) this.#wholeBy.delete(w.id);
      this.#whole.delete(slot);
    }
    this.#order.unlink(slot);
    this.#flags[slot] = 0;
    this.#gen[slot] = (this.#gen[slot] as number) + 1;
    this.#order.pushFree(slot);
    this.#size--;
  }

  /** Moves the slot to the newest end. */
  touch(slot: number): void {
    this.#order.touch(slot);
  }

  has(slot: number, flag: number): boolean {
    return ((this.#flags[slot] as number) & flag) !== 0;
  }

  /**
   * Sets a public flag. OWN_* flags only on a slot in the digest table (false otherwise: the
   * caller keeps that value in an index instead); they count distinct fingerprints per flag.
   */
  setFlag(slot: number, flag: number): boolean {
    const f = this.#flags[slot] as number;
    if (flag !== LiveColumns.WRITE_SEEN && (f & DIGEST) === 0) return false;
    if (f & flag) return true;
    if (flag !== LiveColumns.WRITE_SEEN && !this.#sharesDigest(slot, flag))
      this.#distinct.set(flag, (this.#distinct.get(flag) ?? 0) + 1);
    this.#flags[slot] = f | flag;
    return true;
  }

  clearFlag(slot: number, flag: number): void {
    const f = this.#flags[slot] as number;
    if ((f & flag) === 0) return;
    this.#flags[slot] = f & ~flag;
    if (flag !== LiveColumns.WRITE_SEEN && !this.#sharesDigest(slot, flag))
      this.#distinct.set(flag, (this.#distinct.get(flag) ?? 0) - 1);
  }

  /** Distinct fingerprints among the slots carrying an OWN_* flag. */
  distinct(flag: number): number {
    return this.#distinct.get(flag) ?? 0;
  }

  setTimes(
    slot: number,
    firstSeenAt: number,
    writtenAt: number,
    writeSeen: boolean,
    seq: number | undefined,
  ): void {
    const t = slot * TIMES;
    this.#times[t] = firstSeenAt;
    this.#times[t + 1] = writtenAt;
    this.#times[t + 3] = seq ?? 0;
    let f = (this.#flags[slot] as number) & ~(LiveColumns.WRITE_SEEN | SEQ_UNDEFINED);
    if (writeSeen) f |= LiveColumns.WRITE_SEEN;
    if (seq === undefined) f |= SEQ_UNDEFINED;
    this.#flags[slot] = f;
  }

  /** A write observed at `at`; `seq` replaces the last write's seq when given. */
  markWritten(slot: number, at: number, seq: number | undefined): void {
    this.#times[slot * TIMES + 1] = at;
    let f = (this.#flags[slot] as number) | LiveColumns.WRITE_SEEN;
    if (seq !== undefined) {
      this.#times[slot * TIMES + 3] = seq;
      f &= ~SEQ_UNDEFINED;
    }
    this.#flags[slot] = f;
  }

  setDue(slot: number, dueAt: number | null | undefined): void {
    this.#times[slot * TIMES + 2] = typeof dueAt === 'number' ? dueAt : 0;
    let f = (this.#flags[slot] as number) & ~(DUE_NULL | DUE_UNDEFINED);
    if (dueAt === null) f |= DUE_NULL;
    if (dueAt === undefined) f |= DUE_UNDEFINED;
    this.#flags[slot] = f;
  }

  firstSeenAt(slot: number): number {
    return this.#times[slot * TIMES] as number;
  }

  writtenAt(slot: number): number {
    return this.#times[slot * TIMES + 1] as number;
  }

  dueAt(slot: number): number | null | undefined {
    const f = this.#flags[slot] as number;
    return f & DUE_NULL ? null : f & DUE_UNDEFINED ? undefined : this.#times[slot * TIMES + 2];
  }

  seq(slot: number): number | undefined {
    return this.has(slot, SEQ_UNDEFINED) ? undefined : this.#times[slot * TIMES + 3];
  }

  /** [session, subject, client, family]: interned codes, NIL or OWN. */
  joinCodes(slot: number): [number, number, number, number] {
    const j = this.#joins;
    const o = slot * 4;
    if (j.length === 0) return [NIL, NIL, NIL, NIL];
    return [j[o] as number, j[o + 1] as number, j[o + 2] as number, j[o + 3] as number];
  }

  setJoinCodes(slot: number, session: number, subject: number, client: number, family: number) {
    const o = slot * 4;
    if (this.#joins.length === 0) {
      if (session === NIL && subject === NIL && client === NIL && family === NIL) return;
      this.#joins = new Int32Array(this.#flags.length * 4).fill(NIL);
    }
    this.#joins[o] = session;
    this.#joins[o + 1] = subject;
    this.#joins[o + 2] = client;
    this.#joins[o + 3] = family;
  }

  id(slot: number): string {
    const w = this.#whole.get(slot);
    return w ? w.id : this.#scopes.text(this.#scope[slot] as number) + this.fingerprint(slot);
  }

  fingerprint(slot: number): string {
    const w = this.#whole.get(slot);
    if (w) return w.fingerprint;
    const at = slot * 32;
    return (
      this.#prefixes.text(this.#prefix[slot] as number) + this.#digests.toString('hex', at, at + 32)
    );
  }

  kind(slot: number): string {
    return this.#whole.get(slot)?.kind ?? this.#scopeKinds[this.#scope[slot] as number] ?? '';
  }

  /** Only for a store that keeps ends (see the constructor). */
  setEnd(slot: number, end: TokenEnd): void {
    this.#ends?.set(slot, end);
  }

  end(slot: number): TokenEnd {
    return this.#ends?.get(slot) ?? { endedAt: undefined, endType: undefined, endSeq: undefined };
  }

  /** The slot's end time, 0 when unknown (as the view judged a token without one). */
  endedAt(slot: number): number {
    return this.#ends?.endedAt(slot) ?? 0;
  }

  /** A token id as its prefix code + 32 digest bytes (34 latin1 chars), or whole. */
  encodeFp(fp: string, add: boolean): string {
    if (!this.#parse(undefined, fp, add)) return WHOLE + fp;
    const b = Buffer.allocUnsafe(34);
    b.writeUInt16BE(this.#pPrefix, 0);
    this.#scratch.copy(b, 2);
    return b.toString('latin1');
  }

  decodeFp(enc: string): string {
    if (enc.startsWith(WHOLE)) return enc.slice(1);
    const prefix = this.#prefixes.text((enc.charCodeAt(0) << 8) | enc.charCodeAt(1));
    return prefix + Buffer.from(enc.slice(2), 'latin1').toString('hex');
  }

  /** Another slot in the table with the same fingerprint carries `flag`. */
  #sharesDigest(slot: number, flag: number): boolean {
    this.#digests.copy(this.#scratch, 0, slot * 32, slot * 32 + 32);
    const t = this.#table;
    const prefix = this.#prefix[slot];
    for (let i = t.start(this.#sw[0] as number); ; i = t.next(i)) {
      const s = t.slotAt(i);
      if (s < 0) return false;
      if (s !== slot && this.#prefix[s] === prefix && this.#same(s) && this.has(s, flag))
        return true;
    }
  }

  /**
   * #parse of `id` cut at `cut` (where its fingerprint starts). The same id string again (an
   * event's look-up, the store's look-up before its insert, the insert) reuses the last parse
   * without slicing and comparing the parts again.
   */
  #parseId(id: string, cut: number, add: boolean, digest?: string): boolean {
    const memo = this.#memo;
    if (memo.ok && memo.id === id && memo.cut === cut) {
      this.#pPrefix = memo.prefix;
      this.#pScope = memo.scopeCode;
      this.#sw.set(memo.words);
      return true;
    }
    if (!this.#parse(id.slice(0, cut), id.slice(cut), add, digest)) return false;
    memo.id = id;
    memo.cut = cut;
    return true;
  }

  /**
   * Splits a standard fingerprint into #pPrefix and the scratch digest, and `scope` (when
   * given) into #pScope; `add` false: false when a code is unknown (nothing is then stored).
   */
  #parse(scope: string | undefined, fingerprint: string, add: boolean, digest?: string): boolean {
    // An event looks its id up and then stores it (live view, then ended store): parse once.
    const memo = this.#memo;
    if (memo.ok && fingerprint === memo.fp && scope === memo.scope) {
      this.#pPrefix = memo.prefix;
      this.#pScope = memo.scopeCode;
      this.#sw.set(memo.words);
      return true;
    }
    // A standard fingerprint (FINGERPRINT_RE), read without a match array: its digest into the
    // scratch first, so that nothing is interned for a string that is not one.
    const cut = fingerprintPrefixLength(fingerprint);
    if (cut < 0) return false;
    if (digest?.length === 32) this.#scratch.write(digest, 0, 32, 'latin1');
    else if (!hexDigestInto(fingerprint, cut, this.#scratch, 0)) return false;
    let prefix: number | undefined;
    if (cut === this.#lastPrefix.length && fingerprint.startsWith(this.#lastPrefix)) {
      prefix = this.#lastPrefixCode;
    } else {
      const text = fingerprint.slice(0, cut);
      prefix = this.#prefixes.code(text, add);
      if (prefix === undefined) return false;
      this.#lastPrefix = text;
      this.#lastPrefixCode = prefix;
    }
    if (scope !== undefined) {
      const code = this.#scopes.code(scope, add);
      if (code === undefined) return false;
      // `node\0db\0kind\0`: the kind is the last part.
      if (this.#scopeKinds[code] === undefined)
        this.#scopeKinds[code] = scope.slice(scope.lastIndexOf('\u0000', scope.length - 2) + 1, -1);
      this.#pScope = code;
    }
    this.#pPrefix = prefix;
    memo.ok = true;
    memo.id = undefined;
    memo.fp = fingerprint;
    memo.scope = scope;
    memo.prefix = prefix;
    memo.scopeCode = this.#pScope;
    memo.words.set(this.#sw);
    return true;
  }

  /** The slot's digest equals the scratch digest. */
  #same(slot: number): boolean {
    const w = this.#words;
    const sw = this.#sw;
    const o = slot * 8;
    for (let k = 0; k < 8; k++) if (w[o + k] !== sw[k]) return false;
    return true;
  }

  #alloc(): number {
    const free = this.#order.popFree();
    if (free >= 0) return free;
    if (this.#slots === this.#flags.length)
      this.#grow(Math.max(MIN_SLOTS, Math.ceil(this.#slots * GROWTH)));
    return this.#slots++;
  }

  #grow(cap: number): void {
    const digests = Buffer.alloc(cap * 32);
    this.#digests.copy(digests);
    this.#digests = digests;
    this.#words = new Uint32Array(digests.buffer, digests.byteOffset, cap * 8);
    const grow = <A extends Float64Array | Uint8Array | Uint16Array | Int32Array | Uint32Array>(
      a: A,
      make: (n: number) => A,
      per: number,
    ): A => {
      const b = make(cap * per);
      b.set(a);
      return b;
    };
    this.#times = grow(this.#times, (n) => new Float64Array(n), TIMES);
    this.#flags = grow(this.#flags, (n) => new Uint8Array(n), 1);
    this.#scope = grow(this.#scope, (n) => new Uint16Array(n), 1);
    this.#prefix = grow(this.#prefix, (n) => new Uint16Array(n), 1);
    this.#order.grow(cap);
    if (this.#joins.length > 0) {
      const joins = new Int32Array(cap * 4).fill(NIL);
      joins.set(this.#joins);
      this.#joins = joins;
    }
    this.#ends?.grow(cap);
    this.#gen = grow(this.#gen, (n) => new Uint16Array(n), 1);
  }
}
