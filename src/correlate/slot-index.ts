/**
 * Join key -> slots of the records that carry it. A single slot is stored bare (most keys name
 * one token); a Set only for keys shared by several. Holds no records: its owner removes a slot
 * when the slot is freed, so its size is bounded by the owner's.
 */
export class SlotIndex<K extends string | number> {
  readonly #map = new Map<K, number | Set<number>>();

  /** Number of distinct keys. */
  get size(): number {
    return this.#map.size;
  }

  add(key: K, slot: number): void {
    const cur = this.#map.get(key);
    if (cur === undefined) this.#map.set(key, slot);
    else if (typeof cur === 'number') {
      if (cur !== slot) this.#map.set(key, new Set([cur, slot]));
    } else cur.add(slot);
  }

  delete(key: K, slot: number): void {
    const cur = this.#map.get(key);
    if (cur === undefined) return;
    if (typeof cur === 'number') {
      if (cur === slot) this.#map.delete(key);
      return;
    }
    cur.delete(slot);
    if (cur.size === 0) this.#map.delete(key);
    else if (cur.size === 1) this.#map.set(key, cur.values().next().value as number);
  }

  /** The key's slots (a live view: copy before changing the index while iterating). */
  members(key: K): Iterable<number> {
    const cur = this.#map.get(key);
    if (cur === undefined) return [];
    return typeof cur === 'number' ? [cur] : cur;
  }
}
