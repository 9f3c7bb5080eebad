import { setFlagsFromString } from 'node:v8';

/**
 * Bounds how far V8 lets the heap grow between full collections (`--heap-growing-percent`).
 *
 * Why: V8 sizes the next heap limit from how fast it collected and how busy the mutator is,
 * between 1.1x and 4x of what survived. Under steady load it picks the high end, and since the
 * pages of a grown heap stay mapped (V8 pools and reuses them), RSS follows the largest heap
 * ever reached, not the tokens held: 700 MB RSS against 169 MB of live heap at 100 000 live
 * tokens after churn (docs/benchmarks.md). A fixed factor keeps RSS proportional to live data at
 * the price of more frequent full (mostly concurrent) collections.
 *
 * V8 reads the flag at every heap-limit computation, so setting it after start takes effect at
 * the next full GC. Process-wide: only `tokenwatch serve` and the benchmark that measures what
 * serve does call this, never code that a test imports.
 *
 * Returns the flag set, or undefined when V8's own heuristic stays (percent null).
 */
export function applyHeapGrowth(percent: number | null): string | undefined {
  if (percent === null) return undefined;
  const flag = heapGrowthFlag(percent);
  setFlagsFromString(flag);
  return flag;
}

/** The V8 flag that bounds heap growth to `percent` (10-400); sets nothing. */
export function heapGrowthFlag(percent: number): string {
  if (!Number.isInteger(percent) || percent < 10 || percent > 400) {
    throw new RangeError(`heap growth percent must be an integer in 10..400, not ${percent}`);
  }
  return `--heap-growing-percent=${percent}`;
}
