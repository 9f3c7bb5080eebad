import type { Logger } from 'pino';
import { heapGrowthFlag } from './heap-growth.js';

/** A backlog is over once the waiting work stayed under a tenth of `liftAbove` this long. */
const QUIET_MS = 2000;
const CLEAR_SHARE = 0.1;

export interface BacklogHeapGrowthOptions {
  /** The bound at rest, `runtime.heapGrowthPercent` (src/runtime/heap-growth.ts). */
  percent: number;
  /** Work waiting (the app: keyspace notifications received, not applied) that lifts it. */
  liftAbove: number;
  /** Sets a V8 flag: `v8.setFlagsFromString`, process-wide (serve and the benchmark only). */
  setFlag: (flag: string) => void;
  /**
   * Runs once the bound is back: what the backlog let the heap grow to stays mapped until a
   * memory-reducing GC hands it back (src/runtime/memory-release.ts), which this schedules.
   */
  afterBacklog?: () => void;
  logger: Logger;
}

/**
 * Lifts the heap growth bound while a backlog drains, and puts it back once it has.
 *
 * Why: `--heap-growing-percent` (50 by default) keeps RSS close to the live data at rest, at the
 * price of a full collection every time the heap grew by half. Draining a backlog, the live
 * heap is the backlog itself and everything allocated per event; the bound then costs a full
 * (mostly concurrent) marking of the whole heap every few tens of thousands of events: in the
 * drain of issue #19 (300 000 SET EX, `node dist/bench/drain-main.js --sides tokenwatch`), V8's
 * helper threads spent 12.4 µs per event at 50 against 7.3 µs with V8's own heuristic, 8 % of
 * the process's CPU, and the rate rose 6-7 % (docs/benchmarks-notes.md). V8 reads the flag at
 * every heap-limit computation (0: its own heuristic), so lifting it takes effect at the next
 * full collection.
 *
 * The trade: while a backlog drains the heap may grow to what V8 chooses (2-4x the live data,
 * within `--max-old-space-size`); once the work waiting stayed under a tenth of `liftAbove` for
 * QUIET_MS the bound is back and `afterBacklog` (one memory-reducing GC) hands the pages back.
 *
 * Sample-driven (`sample`), so the rule is testable without V8; the app samples it on a timer.
 */
export class BacklogHeapGrowth {
  readonly #o: BacklogHeapGrowthOptions;
  /** The flag that puts the bound back (heapGrowthFlag of `percent`). */
  readonly #boundFlag: string;
  readonly #clearBelow: number;
  #lifted = false;
  #quietSince: number | undefined;
  #lifts = 0;

  constructor(options: BacklogHeapGrowthOptions) {
    const { percent, liftAbove } = options;
    this.#boundFlag = heapGrowthFlag(percent);
    if (!Number.isInteger(liftAbove) || liftAbove < 1) {
      throw new RangeError(`liftAbove must be a positive integer, not ${liftAbove}`);
    }
    this.#o = options;
    this.#clearBelow = Math.max(1, Math.floor(liftAbove * CLEAR_SHARE));
  }

  /** Whether the bound is lifted now. */
  get lifted(): boolean {
    return this.#lifted;
  }

  /** How many backlogs lifted it so far. */
  get lifts(): number {
    return this.#lifts;
  }

  /** `waiting`: work waiting now (notifications + records); `now`: ms, monotonic or wall. */
  sample(waiting: number, now: number): void {
    if (!this.#lifted) {
      if (waiting < this.#o.liftAbove) return;
      this.#o.setFlag('--heap-growing-percent=0');
      this.#lifted = true;
      this.#quietSince = undefined;
      this.#lifts += 1;
      this.#o.logger.info(
        { waiting, liftAbove: this.#o.liftAbove },
        'backlog: heap growth bound lifted while it drains (runtime.heapGrowthLiftAbove)',
      );
      return;
    }
    if (waiting >= this.#clearBelow) {
      this.#quietSince = undefined;
      return;
    }
    this.#quietSince ??= now;
    if (now - this.#quietSince >= QUIET_MS) this.#bound('drained');
  }

  /** Puts the bound back if it is lifted (the app stops: the process keeps the flag). */
  close(): void {
    if (this.#lifted) this.#bound('stopped');
  }

  #bound(why: 'drained' | 'stopped'): void {
    this.#o.setFlag(this.#boundFlag);
    this.#lifted = false;
    this.#quietSince = undefined;
    this.#o.logger.info(
      { percent: this.#o.percent, why },
      'backlog over: heap growth bound back (runtime.heapGrowthPercent)',
    );
    if (why === 'drained') this.#o.afterBacklog?.();
  }
}
