import type { Counter } from 'prom-client';
import { LabelIndex } from './label-index.js';

interface Entry<L extends string> {
  labels: Record<L, string>;
  n: number;
}

/**
 * Increments of a prom-client Counter made once or more per keyspace event (issue #19), kept
 * here and added to the counter when it is read (its `collect`, before every scrape and every
 * get()): Counter.inc hashes the label object into a string and lists its keys on every call.
 * A label set is found through a LabelIndex (no string made). What is read is exact: the
 * counter is never read without this flush first.
 */
export class PendingCounts<L extends string> {
  readonly #index: LabelIndex<L, Entry<L>>;

  constructor(labelNames: readonly L[]) {
    if (labelNames.length === 0) throw new Error('PendingCounts needs labels');
    this.#index = new LabelIndex(labelNames, (labels) => {
      const own = {} as Record<L, string>;
      for (const k of labelNames) own[k] = labels[k];
      return { labels: own, n: 0 };
    });
  }

  /** One more for `labels` (the counter's own label names, every one of them given). */
  add(labels: Record<L, string>): void {
    this.#index.get(labels).n += 1;
  }

  /** Adds what was counted since the last flush to `counter` (from its `collect`). */
  flushInto(counter: Counter<L>): void {
    for (const e of this.#index.values) {
      if (e.n === 0) continue;
      const n = e.n;
      e.n = 0;
      counter.inc(e.labels, n);
    }
  }
}
