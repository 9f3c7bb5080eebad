/** What a window of refusals from one source that were not recorded one by one amounted to. */
export interface RefusalSummary {
  /** Remote address, or `*` for sources beyond `maxSources`. */
  source: string;
  /** Window start and end, unix ms. */
  from: number;
  to: number;
  /** Refusals recorded one by one in the window. */
  recorded: number;
  /** Refusals only counted here, by outcome. */
  suppressed: number;
  outcomes: Record<string, number>;
}

export interface RefusalLimiterOptions {
  /** Refusals per source and window recorded one by one. */
  perWindow: number;
  windowMs: number;
  /** Sources tracked at once; the rest share one `*` bucket. */
  maxSources: number;
  /**
   * Refusals recorded one by one per window across ALL sources (default 10 x perWindow): a flood
   * from many addresses (a botnet, an IPv6 /64) cannot multiply the per-source budget. Beyond it
   * every refusal is counted in the `*` summary.
   */
  total?: number;
  now: () => number;
  /** Receives each window that suppressed refusals, when it ends (or at flush). */
  onSummary: (s: RefusalSummary) => void;
}

interface Window {
  start: number;
  recorded: number;
  suppressed: number;
  outcomes: Record<string, number>;
}

/**
 * Bounds what a flood of refused admin requests can write to the audit ledger: per source and
 * window, the first `perWindow` refusals are recorded one by one, the rest only counted and stated
 * in one summary record when the window ends. Every refusal is still counted and audited (in
 * aggregate), and the replies do not change.
 */
export class RefusalLimiter {
  readonly #o: RefusalLimiterOptions;
  readonly #windows = new Map<string, Window>();
  /** Refusals recorded one by one in the current global window. */
  #global = { start: 0, recorded: 0 };

  constructor(o: RefusalLimiterOptions) {
    this.#o = o;
  }

  /** True when this refusal is to be recorded on its own; false when it was counted instead. */
  admit(source: string, outcome: string): boolean {
    const now = this.#o.now();
    let key = source;
    if (!this.#windows.has(key) && this.#windows.size >= this.#o.maxSources) key = '*';
    let w = this.#window(key, now);
    if (now - this.#global.start >= this.#o.windowMs) this.#global = { start: now, recorded: 0 };
    const total = this.#o.total ?? this.#o.perWindow * 10;
    if (w.recorded < this.#o.perWindow) {
      if (this.#global.recorded < total) {
        w.recorded += 1;
        this.#global.recorded += 1;
        return true;
      }
      // The global budget is spent: counted in the one summary shared by every source.
      w = this.#window('*', now);
    }
    w.suppressed += 1;
    w.outcomes[outcome] = (w.outcomes[outcome] ?? 0) + 1;
    return false;
  }

  #window(key: string, now: number): Window {
    let w = this.#windows.get(key);
    if (w && now - w.start >= this.#o.windowMs) {
      this.#end(key, w, now);
      w = undefined;
    }
    if (!w) {
      w = { start: now, recorded: 0, suppressed: 0, outcomes: {} };
      this.#windows.set(key, w);
    }
    return w;
  }

  /** Ends the windows that are over (a timer calls it). */
  sweep(): void {
    const now = this.#o.now();
    for (const [key, w] of this.#windows)
      if (now - w.start >= this.#o.windowMs) this.#end(key, w, now);
  }

  /** Ends every window now (shutdown): nothing counted goes unstated. */
  flush(): void {
    const now = this.#o.now();
    for (const [key, w] of this.#windows) this.#end(key, w, now);
  }

  #end(key: string, w: Window, now: number): void {
    this.#windows.delete(key);
    if (w.suppressed === 0) return;
    this.#o.onSummary({
      source: key,
      from: w.start,
      to: Math.min(now, w.start + this.#o.windowMs),
      recorded: w.recorded,
      suppressed: w.suppressed,
      outcomes: w.outcomes,
    });
  }
}
