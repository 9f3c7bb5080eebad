/**
 * Multi-valued index: join key → ids of the records that carry it. It holds no records of its
 * own; its owner removes members when their records go, so its size is bounded by the owner's.
 * Most keys (a token id, a session) have exactly one member, which is stored bare: a Set per key
 * would roughly double the memory of a two-million-token view.
 */
export class SetIndex {
  readonly #map = new Map<string, string | Set<string>>();

  /** Number of distinct keys. */
  get size(): number {
    return this.#map.size;
  }

  add(key: string, member: string): void {
    const cur = this.#map.get(key);
    if (cur === undefined) this.#map.set(key, member);
    else if (typeof cur === 'string') {
      if (cur !== member) this.#map.set(key, new Set([cur, member]));
    } else cur.add(member);
  }

  delete(key: string, member: string): void {
    const cur = this.#map.get(key);
    if (cur === undefined) return;
    if (typeof cur === 'string') {
      if (cur === member) this.#map.delete(key);
      return;
    }
    cur.delete(member);
    if (cur.size === 0) this.#map.delete(key);
    else if (cur.size === 1) this.#map.set(key, cur.values().next().value as string);
  }

  /** A fresh array of the key's members (safe to iterate while changing the index). */
  members(key: string): string[] {
    const cur = this.#map.get(key);
    if (cur === undefined) return [];
    return typeof cur === 'string' ? [cur] : [...cur];
  }
}
