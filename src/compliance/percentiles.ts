/**
 * Nearest-rank percentiles (the definition auditors can recompute by hand: sort, take the value
 * at rank ⌈p/100 · n⌉). No interpolation, so every reported value is one that was observed.
 */

/** p50/p95/p99/max of a sample; all null when the sample is empty. */
export interface PercentileSummary {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

/** The nearest-rank `p`th percentile (0 < p <= 100) of an ascending array; null when empty. */
export function nearestRank(sortedAscending: readonly number[], p: number): number | null {
  const n = sortedAscending.length;
  if (n === 0) return null;
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  const rank = Math.ceil((p / 100) * n);
  return sortedAscending[Math.min(n, Math.max(1, rank)) - 1] ?? null;
}

/** Summarises `values` (any order; non-finite values are ignored). */
export function summarize(values: readonly number[]): PercentileSummary {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: nearestRank(sorted, 50),
    p95: nearestRank(sorted, 95),
    p99: nearestRank(sorted, 99),
    max: sorted.length === 0 ? null : (sorted[sorted.length - 1] ?? null),
  };
}
