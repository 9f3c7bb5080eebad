/**
 * Slots in order of last touch (LRU), as prev/next links in two Int32Arrays (-1: none), and the
 * free slots as a stack threaded through the same `newer` links: 8 bytes per slot, no object.
 */
export class SlotOrder {
  #older = new Int32Array(0);
  #newer = new Int32Array(0);
  #oldest = -1;
  #newest = -1;
  #freeHead = -1;

  get bytes(): number {
    return this.#older.byteLength + this.#newer.byteLength;
  }

  get oldest(): number {
    return this.#oldest;
  }

  newer(slot: number): number {
    return this.#newer[slot] as number;
  }

  /** Room for `cap` slots, keeping the links. */
  grow(cap: number): void {
    const older = new Int32Array(cap);
    older.set(this.#older);
    this.#older = older;
    const newer = new Int32Array(cap);
    newer.set(this.#newer);
    this.#newer = newer;
  }

  /** Appends the slot at the newest end. */
  link(slot: number): void {
    this.#older[slot] = this.#newest;
    this.#newer[slot] = -1;
    if (this.#newest >= 0) this.#newer[this.#newest] = slot;
    else this.#oldest = slot;
    this.#newest = slot;
  }

  unlink(slot: number): void {
    const older = this.#older[slot] as number;
    const newer = this.#newer[slot] as number;
    if (older >= 0) this.#newer[older] = newer;
    else this.#oldest = newer;
    if (newer >= 0) this.#older[newer] = older;
    else this.#newest = older;
  }

  /** Moves a linked slot to the newest end. */
  touch(slot: number): void {
    if (slot === this.#newest) return;
    this.unlink(slot);
    this.link(slot);
  }

  /** Puts an unlinked slot on the free stack. */
  pushFree(slot: number): void {
    this.#newer[slot] = this.#freeHead;
    this.#freeHead = slot;
  }

  /** A free slot, -1 when none. */
  popFree(): number {
    const slot = this.#freeHead;
    if (slot >= 0) this.#freeHead = this.#newer[slot] as number;
    return slot;
  }
}
