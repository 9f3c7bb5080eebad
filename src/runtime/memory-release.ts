import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Logger } from 'pino';

/** One memory-reducing full collection of this isolate's heap (blocks the event loop). */
export type ReducingGc = () => void;

/** The options V8's `gc` extension takes (`--expose-gc`). */
interface GcOptions {
  type: 'major' | 'minor';
  execution: 'sync' | 'async';
  flavor: 'regular' | 'last-resort';
}

/**
 * V8's `gc()` as `--expose-gc` gives it, obtained at run time: the flag applies to contexts made
 * after it is set, so a fresh vm context has `gc`. Called with the `last-resort` flavour: the
 * collection V8 itself runs under memory pressure, which compacts and also hands the pages it
 * pooled back to the OS (a regular full GC keeps them mapped and resident).
 *
 * Process-wide (it sets a V8 flag): only `tokenwatch serve` and the benchmark that measures what
 * serve does call this, never code that a test imports.
 */
export function memoryReducingGc(): ReducingGc {
  setFlagsFromString('--expose-gc');
  const gc = exposedReducingGc();
  if (!gc) throw new Error('V8 gave no gc() after --expose-gc');
  return gc;
}

/**
 * The same collection where `--expose-gc` is already set (by memoryReducingGc, process-wide: the
 * ledger's writer thread uses it this way); undefined where it is not. Sets no flag.
 */
export function exposedReducingGc(): ReducingGc | undefined {
  const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
  if (typeof gc !== 'function') return undefined;
  const collect = gc as (options: GcOptions) => void;
  return () => collect({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

export interface MemoryReleaseOptions {
  /** A reconciliation that SCANned at least this many keys asks for a release. */
  minScanned: number;
  gc: ReducingGc;
  logger: Logger;
  /** Quiet time after the last such reconciliation before the collection runs (ms). */
  delayMs?: number;
  /** Asks the other threads to do the same (the ledger's writer thread). */
  others?: () => void;
}

/** What one release did. */
export interface Released {
  ms: number;
  rssBefore: number;
  rssAfter: number;
  heapBefore: number;
  heapAfter: number;
}

/**
 * Hands the memory of a large SCAN back to the OS once it is over.
 *
 * Why: a baseline of a million keys leaves ~130 MB of garbage in the V8 heap, and the heap's
 * pages stay resident however long the service then stays quiet: V8's memory reducer, which
 * would compact an idle heap, judges idleness by the allocation rate measured at the last
 * collections, which were all during the SCAN, so it keeps waiting ("high alloc") for as long as
 * no collection runs. Measured at 1 000 000 tokens: RSS 415 MB 30 s after the baseline; 390 MB
 * after a regular forced `gc()`; 241 MB after this collection (docs/benchmarks.md, scenario 4).
 *
 * One memory-reducing collection after each large reconciliation (baseline or gap, several
 * nodes' in a row count once), `delayMs` after the last one: a single pause of tens of ms on a
 * heap of tens of MB live, against a SCAN that took seconds. Notifications that arrive meanwhile
 * wait in the socket; nothing is lost. The ledger's writer thread, which deserialized the
 * baseline's records, is asked to do the same for its own heap (`others`): ~10 MB more.
 */
export class MemoryRelease {
  readonly #o: MemoryReleaseOptions;
  #timer: NodeJS.Timeout | undefined;
  #count = 0;
  #last: Released | undefined;

  constructor(options: MemoryReleaseOptions) {
    this.#o = options;
  }

  /** Releases run so far. */
  get count(): number {
    return this.#count;
  }

  /** What the last release did. */
  get last(): Released | undefined {
    return this.#last;
  }

  /** A reconciliation SCANned `scanned` keys. */
  afterScan(scanned: number): void {
    if (scanned >= this.#o.minScanned) this.schedule();
  }

  /**
   * A release `delayMs` from now; a release already scheduled moves there (one collection for
   * several reasons in a row: a baseline that was also a backlog, src/runtime/backlog-heap-growth.ts).
   */
  schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.release(), this.#o.delayMs ?? 2000);
    this.#timer.unref();
  }

  /** Runs the collection now. */
  release(): Released {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const before = process.memoryUsage();
    const t0 = performance.now();
    this.#o.gc();
    const ms = performance.now() - t0;
    this.#o.others?.();
    const after = process.memoryUsage();
    const r: Released = {
      ms,
      rssBefore: before.rss,
      rssAfter: after.rss,
      heapBefore: before.heapUsed,
      heapAfter: after.heapUsed,
    };
    this.#count += 1;
    this.#last = r;
    const mb = (n: number) => Math.round(n / 1e6);
    this.#o.logger.info(
      {
        ms: Math.round(ms),
        rssMB: [mb(r.rssBefore), mb(r.rssAfter)],
        heapMB: [mb(r.heapBefore), mb(r.heapAfter)],
      },
      'released the memory of a large reconciliation (one memory-reducing GC)',
    );
    return r;
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
