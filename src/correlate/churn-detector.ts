/** Scales the median absolute deviation to σ for normally distributed data (Rousseeuw & Croux 1993). */
const MAD_TO_SIGMA = 1.4826;

const median = (sorted: readonly number[]): number => {
  const n = sorted.length;
  if (n === 0) return 0;
  const mid = n >> 1;
  return n % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/**
 * Robust baseline of a per-second rate: median and MAD over a rolling window of the last
 * `capacity` learned buckets. Unlike a mean, the median does not move until more than half the
 * window has changed, so a burst of a few seconds (learned or not) cannot raise the threshold
 * that should flag the next one; the MAD likewise ignores the burst's own spread. What is
 * learned is decided by the caller (see ChurnSpikeRule: outliers are clipped before learning).
 * The window is plain data so it can be snapshotted and restored across restarts.
 */
export class RobustBaseline {
  readonly capacity: number;
  readonly #ring: number[] = [];
  #start = 0;
  #median = 0;
  #mad = 0;
  #dirty = false;

  constructor(capacity: number, window: readonly number[] = []) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.capacity = capacity;
    for (const x of window.slice(-capacity)) this.push(x);
  }

  /** Buckets in the window (at most `capacity`). */
  get samples(): number {
    return this.#ring.length;
  }

  get median(): number {
    this.#compute();
    return this.#median;
  }

  /** Median absolute deviation scaled to σ (unfloored). */
  get mad(): number {
    this.#compute();
    return this.#mad * MAD_TO_SIGMA;
  }

  /**
   * Spread used for thresholds: the robust σ, but never below √median (per-second event counts
   * are roughly Poisson, so a perfectly steady rate must not make +1 event an anomaly) nor 1.
   */
  get spread(): number {
    this.#compute();
    return Math.max(this.#mad * MAD_TO_SIGMA, Math.sqrt(this.#median), 1);
  }

  /** median + sigmas·spread. */
  threshold(sigmas: number): number {
    return this.median + sigmas * this.spread;
  }

  push(x: number): void {
    if (this.#ring.length < this.capacity) this.#ring.push(x);
    else {
      this.#ring[this.#start] = x;
      this.#start = (this.#start + 1) % this.capacity;
    }
    this.#dirty = true;
  }

  /** The window, oldest first. */
  values(): number[] {
    return [...this.#ring.slice(this.#start), ...this.#ring.slice(0, this.#start)];
  }

  #compute(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    const sorted = [...this.#ring].sort((a, b) => a - b);
    const m = median(sorted);
    this.#median = m;
    this.#mad = median(sorted.map((x) => Math.abs(x - m)).sort((a, b) => a - b));
  }
}
