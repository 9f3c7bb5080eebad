/**
 * Exponentially weighted mean and variance of a per-second rate (Finch, "Incremental calculation
 * of weighted mean and variance", 2009). During warm-up the weight is at least 1/n, i.e. the
 * plain running mean, so the first buckets do not drag an arbitrary start value along.
 */
export class EwmaBaseline {
  readonly alpha: number;
  #mean = 0;
  #variance = 0;
  #samples = 0;

  constructor(alpha: number) {
    this.alpha = alpha;
  }

  get mean(): number {
    return this.#mean;
  }

  get samples(): number {
    return this.#samples;
  }

  /**
   * Spread used for thresholds: the learned σ, but never below √mean. Per-second event counts
   * are roughly Poisson, so a perfectly steady baseline must not make +1 event an anomaly.
   */
  get sigma(): number {
    return Math.max(Math.sqrt(this.#variance), Math.sqrt(this.#mean), 1);
  }

  get stdDev(): number {
    return Math.sqrt(this.#variance);
  }

  /** Learns one bucket; `weight` scales alpha (0 freezes the baseline). */
  update(x: number, weight = 1): void {
    if (weight <= 0) return;
    this.#samples++;
    const a = Math.max(this.alpha, 1 / this.#samples) * Math.min(weight, 1);
    const diff = x - this.#mean;
    const incr = a * diff;
    this.#mean += incr;
    this.#variance = (1 - a) * (this.#variance + diff * incr);
  }
}
