/**
 * Values by label set, found through one map per label name, in the metric's label order: no
 * string is made per look-up (prom-client hashes the label object into one on every call). The
 * hot metrics' series (hot-histogram.ts, pending-counts.ts). `make` runs once per new label set;
 * `values` holds what it made, in the order the label sets were first seen.
 */
export class LabelIndex<L extends string, T> {
  readonly values: T[] = [];
  readonly #names: readonly L[];
  readonly #make: (labels: Record<L, string>) => T;
  readonly #root = new Map<string, unknown>();
  /** The value of a metric without labels. */
  #only: T | undefined;

  constructor(names: readonly L[], make: (labels: Record<L, string>) => T) {
    this.#names = names;
    this.#make = make;
  }

  /** The value of `labels` (made now if new; `make` may throw, and then nothing is kept). */
  get(labels: Record<L, string>): T {
    const names = this.#names;
    if (names.length === 0) return (this.#only ??= this.#add(labels));
    let node = this.#root;
    const last = names.length - 1;
    for (let n = 0; n < last; n++) {
      const value = labels[names[n] as L];
      let next = node.get(value) as Map<string, unknown> | undefined;
      if (next === undefined) node.set(value, (next = new Map()));
      node = next;
    }
    const value = labels[names[last] as L];
    let v = node.get(value) as T | undefined;
    if (v === undefined) {
      v = this.#add(labels);
      node.set(value, v);
    }
    return v;
  }

  #add(labels: Record<L, string>): T {
    const v = this.#make(labels);
    this.values.push(v);
    return v;
  }
}
