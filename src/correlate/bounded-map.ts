interface Node<K, V> {
  key: K;
  value: V;
  older: Node<K, V> | undefined;
  newer: Node<K, V> | undefined;
}

/**
 * A Map with a hard capacity. Inserting a new key beyond it evicts the oldest entry (insertion
 * order; `touch` moves an entry to the newest end, which turns it into an LRU). Every correlator
 * index is one of these so that a flood of unique subjects, sessions or events cannot grow
 * memory without limit; evictions are counted for `stats()`.
 *
 * Order is kept in a linked list rather than the Map's own: V8 leaves deleted entries in place
 * until a rehash, so repeatedly taking the first entry of a large Map costs O(size) per call.
 */
export class BoundedMap<K, V> {
  readonly capacity: number;
  readonly #map = new Map<K, Node<K, V>>();
  readonly #onEvict: ((key: K, value: V) => void) | undefined;
  #oldest: Node<K, V> | undefined;
  #newest: Node<K, V> | undefined;
  #evictions = 0;

  constructor(capacity: number, onEvict?: (key: K, value: V) => void) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
    this.#onEvict = onEvict;
  }

  get size(): number {
    return this.#map.size;
  }

  /** Entries removed because the map was full (not explicit deletes or expiry). */
  get evictions(): number {
    return this.#evictions;
  }

  get(key: K): V | undefined {
    return this.#map.get(key)?.value;
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** Inserts at the newest end, or replaces in place when the key exists. */
  set(key: K, value: V): this {
    const node = this.#map.get(key);
    if (node) {
      node.value = value;
      return this;
    }
    const added: Node<K, V> = { key, value, older: this.#newest, newer: undefined };
    this.#map.set(key, added);
    this.#append(added);
    while (this.#map.size > this.capacity && this.#oldest) {
      const victim = this.#oldest;
      this.#remove(victim);
      this.#evictions++;
      this.#onEvict?.(victim.key, victim.value);
    }
    return this;
  }

  /** Moves an existing key to the newest end; false when absent. */
  touch(key: K): boolean {
    const node = this.#map.get(key);
    if (!node) return false;
    if (node === this.#newest) return true;
    this.#unlink(node);
    node.older = this.#newest;
    node.newer = undefined;
    this.#append(node);
    return true;
  }

  delete(key: K): boolean {
    const node = this.#map.get(key);
    if (!node) return false;
    this.#remove(node);
    return true;
  }

  /** Removes entries from the oldest end while `stale` holds (expiry, not counted as eviction). */
  dropOldestWhile(
    stale: (value: V, key: K) => boolean,
    onDrop?: (value: V, key: K) => void,
  ): number {
    let dropped = 0;
    while (this.#oldest && stale(this.#oldest.value, this.#oldest.key)) {
      const node = this.#oldest;
      this.#remove(node);
      onDrop?.(node.value, node.key);
      dropped++;
    }
    return dropped;
  }

  /** Oldest first. Do not mutate the map while iterating. */
  *entries(): IterableIterator<[K, V]> {
    for (let n = this.#oldest; n; n = n.newer) yield [n.key, n.value];
  }

  *keys(): IterableIterator<K> {
    for (let n = this.#oldest; n; n = n.newer) yield n.key;
  }

  *values(): IterableIterator<V> {
    for (let n = this.#oldest; n; n = n.newer) yield n.value;
  }

  #append(node: Node<K, V>): void {
    if (this.#newest) this.#newest.newer = node;
    else this.#oldest = node;
    this.#newest = node;
  }

  #unlink(node: Node<K, V>): void {
    if (node.older) node.older.newer = node.newer;
    else this.#oldest = node.newer;
    if (node.newer) node.newer.older = node.older;
    else this.#newest = node.older;
  }

  #remove(node: Node<K, V>): void {
    this.#map.delete(node.key);
    this.#unlink(node);
    node.older = undefined;
    node.newer = undefined;
  }
}
