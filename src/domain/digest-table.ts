const MIN_CELLS = 1024;

/**
 * An open-addressing table of slot numbers keyed by their fingerprint digest (linear probing,
 * deletion by backward shift, so no tombstones pile up under churn). It stores 4 bytes per
 * cell and nothing per entry on the V8 heap; the digests stay in their owner's columns, read
 * through `hashOf`. Several slots may share a digest (the same fingerprint under two kinds or
 * nodes): a look-up walks the run from the digest's home cell to the next empty one and the
 * caller picks what matches. Kept at most three quarters full (linear probing
 * stays short with hashes this uniform); shrinks when an eighth full.
 */
export class DigestTable {
  readonly #hashOf: (slot: number) => number;
  #cells = new Int32Array(MIN_CELLS);
  #mask = MIN_CELLS - 1;
  #count = 0;

  /** `hashOf(slot)`: a 32-bit hash of the slot's digest (its first 4 bytes: it is an HMAC). */
  constructor(hashOf: (slot: number) => number) {
    this.#hashOf = hashOf;
  }

  get size(): number {
    return this.#count;
  }

  /** Bytes of the cell array (outside the V8 heap). */
  get bytes(): number {
    return this.#cells.byteLength;
  }

  insert(slot: number): void {
    if ((this.#count + 1) * 4 > this.#cells.length * 3) this.#resize(this.#cells.length * 2);
    this.#place(slot);
    this.#count++;
  }

  remove(slot: number): void {
    const cells = this.#cells;
    const mask = this.#mask;
    let i = this.#hashOf(slot) & mask;
    while (cells[i] !== slot + 1) {
      if (cells[i] === 0) return;
      i = (i + 1) & mask;
    }
    // Backward shift: pull later entries of the run into the hole unless that would put them
    // before their home cell.
    for (let j = (i + 1) & mask; cells[j] !== 0; j = (j + 1) & mask) {
      const c = cells[j] as number;
      const home = this.#hashOf(c - 1) & mask;
      const movable = i <= j ? home <= i || home > j : home <= i && home > j;
      if (movable) {
        cells[i] = c;
        i = j;
      }
    }
    cells[i] = 0;
    this.#count--;
    if (this.#cells.length > MIN_CELLS && this.#count * 8 < this.#cells.length)
      this.#resize(this.#cells.length / 2);
  }

  /** The first cell of `hash`'s run; walk it with `slotAt` and `next` until `slotAt` is -1. */
  start(hash: number): number {
    return hash & this.#mask;
  }

  /** The slot in cell `i`, -1 when the cell is empty (the run ends). */
  slotAt(i: number): number {
    return (this.#cells[i] as number) - 1;
  }

  next(i: number): number {
    return (i + 1) & this.#mask;
  }

  #place(slot: number): void {
    const cells = this.#cells;
    const mask = this.#mask;
    let i = this.#hashOf(slot) & mask;
    while (cells[i] !== 0) i = (i + 1) & mask;
    cells[i] = slot + 1;
  }

  #resize(length: number): void {
    const old = this.#cells;
    this.#cells = new Int32Array(length);
    this.#mask = length - 1;
    for (const c of old) if (c !== 0) this.#place(c - 1);
  }
}
