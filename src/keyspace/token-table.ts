import { DigestTable } from '../domain/digest-table.js';
import { hexDigestInto } from '../domain/fingerprint.js';
import type { InventoryEntry } from './inventory.js';

/** Marks a key that holds a whole fingerprint string (never a latin1 digest, whose chars are < 256). */
const WHOLE = '\u0100';
const NO_TTL = -1;
/** The due of a freed slot, so counting over the columns skips it. */
const FREE = -2;
/** Slots per page of the columns (64 KiB of doubles): growth adds a page, never copies. */
const PAGE_BITS = 13;
const PAGE = 1 << PAGE_BITS;
const MASK = PAGE - 1;

/**
 * One kind's live tokens in columns: due / written / node and the fingerprint's 32 digest bytes
 * in paged typed arrays indexed by slot, and fingerprint -> slot as an open-addressing table of
 * slot numbers over those digests (DigestTable): no string and no Map entry per token. Freed
 * slots are reused; growing adds a page rather than copying into arrays twice the size (the old
 * copies stayed as RSS after a big baseline). A standard fingerprint (`hmac-sha256:<keyId>:<64
 * hex>`) is keyed by its 32 digest bytes as a latin1 string (the table's key; the key id prefix
 * is stored once); anything else is kept whole in a Map (rare).
 */
export class TokenTable {
  readonly #whole = new Map<string, number>();
  readonly #wholeKeys = new Map<number, string>();
  readonly #table = new DigestTable((slot) => {
    const page = this.#digests[slot >>> PAGE_BITS] as Uint32Array;
    return page[(slot & MASK) * 8] as number;
  });
  readonly #free: number[] = [];
  readonly #prefix: string;
  #next = 0;
  readonly #due: Float64Array[] = [];
  readonly #written: Float64Array[] = [];
  readonly #node: Int32Array[] = [];
  readonly #digests: Uint32Array[] = [];

  /** `prefix`: Fingerprinter.prefix; fingerprints under other key ids are kept whole. */
  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  get size(): number {
    return this.#table.size + this.#whole.size;
  }

  get(fp: string): InventoryEntry | undefined {
    return this.getKey(this.keyOf(fp));
  }

  getKey(key: string): InventoryEntry | undefined {
    const slot = this.#find(key);
    return slot < 0 ? undefined : this.#entry(slot);
  }

  set(fp: string, due: number | null, written: number, node: number): void {
    this.setKey(this.keyOf(fp), due, written, node);
  }

  setKey(key: string, due: number | null, written: number, node: number): void {
    let slot = this.#find(key);
    if (slot < 0) {
      slot = this.#free.pop() ?? this.#grow();
      if (isDigest(key)) {
        const page = this.#digests[slot >>> PAGE_BITS] as Uint32Array;
        page.set(scratchWords, (slot & MASK) * 8);
        this.#table.insert(slot);
      } else {
        this.#whole.set(key, slot);
        this.#wholeKeys.set(slot, key);
      }
    }
    const page = slot >>> PAGE_BITS;
    const i = slot & MASK;
    (this.#due[page] as Float64Array)[i] = due === null ? NO_TTL : due;
    (this.#written[page] as Float64Array)[i] = written;
    (this.#node[page] as Int32Array)[i] = node;
  }

  /** Removes the token; returns what it held. */
  delete(fp: string): InventoryEntry | undefined {
    return this.deleteKey(this.keyOf(fp));
  }

  deleteKey(key: string): InventoryEntry | undefined {
    const slot = this.#find(key);
    if (slot < 0) return undefined;
    const e = this.#entry(slot);
    if (isDigest(key)) this.#table.remove(slot);
    else {
      this.#whole.delete(key);
      this.#wholeKeys.delete(slot);
    }
    this.#free.push(slot);
    (this.#due[slot >>> PAGE_BITS] as Float64Array)[slot & MASK] = FREE;
    return e;
  }

  /** In slot order. */
  *entries(): IterableIterator<[string, InventoryEntry]> {
    for (const slot of this.#used())
      yield [this.fingerprintOf(this.#keyAt(slot)), this.#entry(slot)];
  }

  /** Node of every token by key, without building fingerprints or entries (reconciliation). */
  *nodes(): IterableIterator<[key: string, node: number]> {
    for (const slot of this.#used()) {
      yield [this.#keyAt(slot), this.#node[slot >>> PAGE_BITS]?.[slot & MASK] ?? 0];
    }
  }

  /**
   * Tokens whose due time passed (due <= the holding node's clock) but that are still in the
   * table: a pass over the due column, no Map walk (a million slots in about a millisecond).
   */
  countPastDue(redisNow: (node: number) => number): number {
    const nows = new Map<number, number>();
    let n = 0;
    for (let page = 0; page < this.#due.length; page++) {
      const due = this.#due[page] as Float64Array;
      const node = this.#node[page] as Int32Array;
      const end = Math.min(PAGE, this.#next - page * PAGE);
      for (let i = 0; i < end; i++) {
        const d = due[i] as number;
        // NO_TTL, FREE and NaN (unknown) are not past due; a real due is a unix ms > 0.
        if (!(d > 0)) continue;
        const nd = node[i] as number;
        let now = nows.get(nd);
        if (now === undefined) {
          now = redisNow(nd);
          nows.set(nd, now);
        }
        if (d <= now) n++;
      }
    }
    return n;
  }

  /** Slots in use (a freed slot's due is FREE), lowest first. */
  *#used(): IterableIterator<number> {
    for (let slot = 0; slot < this.#next; slot++)
      if (this.#due[slot >>> PAGE_BITS]?.[slot & MASK] !== FREE) yield slot;
  }

  /** The slot holding `key`, -1 when none. */
  #find(key: string): number {
    if (!isDigest(key)) return this.#whole.get(key) ?? -1;
    scratch.write(key, 0, 32, 'latin1');
    const t = this.#table;
    for (let c = t.start(scratchWords[0] as number); ; c = t.next(c)) {
      const slot = t.slotAt(c);
      if (slot < 0) return -1;
      const page = this.#digests[slot >>> PAGE_BITS] as Uint32Array;
      const o = (slot & MASK) * 8;
      let same = true;
      for (let k = 0; k < 8 && same; k++) same = page[o + k] === scratchWords[k];
      if (same) return slot;
    }
  }

  #keyAt(slot: number): string {
    const whole = this.#wholeKeys.get(slot);
    if (whole !== undefined) return whole;
    const page = this.#digests[slot >>> PAGE_BITS] as Uint32Array;
    return Buffer.from(page.buffer, page.byteOffset + (slot & MASK) * 32, 32).toString('latin1');
  }

  #entry(slot: number): InventoryEntry {
    const page = slot >>> PAGE_BITS;
    const i = slot & MASK;
    const due = this.#due[page]?.[i] ?? Number.NaN;
    return {
      due: due === NO_TTL ? null : due,
      written: this.#written[page]?.[i] ?? 0,
      node: this.#node[page]?.[i] ?? 0,
    };
  }

  #grow(): number {
    const slot = this.#next++;
    if (slot >>> PAGE_BITS >= this.#due.length) {
      this.#due.push(new Float64Array(PAGE));
      this.#written.push(new Float64Array(PAGE));
      this.#node.push(new Int32Array(PAGE));
      this.#digests.push(new Uint32Array(PAGE * 8));
    }
    return slot;
  }

  /** The table's key for a fingerprint (pass it to the *Key methods to convert only once). */
  keyOf(fp: string): string {
    return tokenKey(this.#prefix, fp);
  }

  fingerprintOf(key: string): string {
    if (key.startsWith(WHOLE)) return key.slice(1);
    return `${this.#prefix}${Buffer.from(key, 'latin1').toString('hex')}`;
  }
}

const scratch = Buffer.alloc(32);
const scratchWords = new Uint32Array(scratch.buffer, scratch.byteOffset, 8);

/** A standard key: 32 digest bytes as latin1 (chars < 256; a whole key starts with WHOLE). */
const isDigest = (key: string): boolean => key.length === 32 && !key.startsWith(WHOLE);
/** The last conversion (a fingerprint, never a secret). */
const last = { prefix: '', fp: '', key: WHOLE };

/**
 * The key a TokenTable under `prefix` stores `fp` by: a standard fingerprint of that key id as
 * its 32 digest bytes (latin1), anything else whole behind a marker no digest starts with.
 */
export function tokenKey(prefix: string, fp: string): string {
  // One notification looks its token up and then stores it: the same conversion twice.
  if (fp === last.fp && prefix === last.prefix) return last.key;
  let key = WHOLE + fp;
  // Lowercase hex only (as HMAC digests are written), decoded without a regex or Buffer#write;
  // anything else stays whole.
  if (
    fp.length === prefix.length + 64 &&
    fp.startsWith(prefix) &&
    hexDigestInto(fp, prefix.length, scratch, 0)
  ) {
    key = scratch.toString('latin1');
  }
  last.prefix = prefix;
  last.fp = fp;
  last.key = key;
  return key;
}
