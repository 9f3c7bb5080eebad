import type { Counter } from 'prom-client';

interface Entry<L extends string> {
  labels: Record<L, string>;
  n: number;
}

/**
 * Increments of a prom-client Counter made once or more per keyspace event (issue #19), kept
 * here and added to the counter when it is read (its `collect`, before every scrape and every
 * get()): Counter.inc hashes the label object into a string and lists its keys on every call.
 * A label set is found through a map per label (no string made). What is read is exact: the
 * counter is never read without this flush first.
 */
export class PendingCounts<L extends string> {
  readonly #labelNames: readonly L[];
  #index = new Map<string, unknown>();
  readonly #entries: Entry<L>[] = [];

  constructor(labelNames: readonly L[]) {
    if (labelNames.length === 0) throw new Error('PendingCounts needs labels');
    this.#labelNames = labelNames;
  }

  /** One more for `labels` (the counter's own label names, every one of them given). */
  add(labels: Record<L, string>): void {
    const names = this.#labelNames;
    let node = this.#index;
    for (let i = 0; i < names.length; i++) {
      const value = labels[names[i] as L];
      let next = node.get(value);
      if (next === undefined) {
        next = i === names.length - 1 ? this.#entry(labels) : new Map<string, unknown>();
        node.set(value, next);
      }
      if (i === names.length - 1) {
        (next as Entry<L>).n += 1;
        return;
      }
      node = next as Map<string, unknown>;
    }
  }

  /** Adds what was counted since the last flush to `counter` (from its `collect`). */
  flushInto(counter: Counter<L>): void {
    for (const e of this.#entries) {
      if (e.n === 0) continue;
      const n = e.n;
      e.n = 0;
      counter.inc(e.labels, n);
    }
  }

  #entry(labels: Record<L, string>): Entry<L> {
    const own = {} as Record<L, string>;
    for (const k of this.#labelNames) own[k] = labels[k];
    const e: Entry<L> = { labels: own, n: 0 };
    this.#entries.push(e);
    return e;
  }
}
