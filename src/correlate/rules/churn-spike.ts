import type { Finding } from '../../domain/finding.js';
import type { TokenEvent, TokenEventType } from '../../domain/token-event.js';
import { BoundedMap } from '../bounded-map.js';
import { RobustBaseline } from '../churn-detector.js';
import type { FindingBook } from '../finding-book.js';
import type { ResolvedCorrelatorOptions } from '../options.js';
import { arr, int, num, obj, optNum, str } from '../snapshot-read.js';

/** Events that count as churn: tokens entering or leaving the cache. */
const CHURN_TYPES: ReadonlySet<TokenEventType> = new Set([
  'written',
  'expired',
  'deleted',
  'evicted',
  'vanished',
]);

/** After a long stall (clock jump, paused process) only this many empty buckets are replayed. */
const MAX_CATCH_UP_BUCKETS = 3600;

/** Below this many learned buckets nothing is clipped: there is no baseline to clip against. */
const MIN_SAMPLES_TO_CLIP = 5;

interface Bucket {
  n: number;
  seqs: (number | undefined)[];
}

interface Spike {
  findingId: string;
  openedAt: number;
  peak: number;
  events: number;
  buckets: number;
  calm: number;
  /** Accumulates `learnWhileOpen` per bucket; a whole unit lets one spike bucket be learned. */
  learnCredit: number;
}

interface KindChurn {
  kind: string;
  baseline: RobustBaseline;
  /** First second (unix s) not yet closed. */
  next: number;
  buckets: Map<number, Bucket>;
  spike: Spike | undefined;
  /** Shortfall below the median of the last `carryBuckets` judged seconds not yet credited. */
  shortfall: number[];
}

/** Plain-data state of one kind's detector (see Correlator.snapshot). */
export interface ChurnKindSnapshot {
  kind: string;
  next: number;
  /** Learned per-second rates, oldest first. */
  window: number[];
  /** Open (not yet judged) buckets: [unix second, count]. */
  pending: [number, number][];
  spike: Spike | null;
  /** Uncredited shortfall of the last judged seconds, oldest first (absent in older snapshots). */
  shortfall?: number[];
}

const round = (x: number): number => Math.round(x * 100) / 100;

/**
 * Whether an event is churn. Reconciliation results (`redisEvent: 'reconcile'`) happened at some
 * unknown time during a blind spot, so they cannot be put in a one-second bucket; expirations
 * Redis delivers long past their due time (`backlog`: its lazy expiry catching up, typically
 * because a SCAN touched the keys) are a cleanup of old state, not tokens leaving now (issue #16.3).
 */
export function isChurn(ev: TokenEvent): boolean {
  return CHURN_TYPES.has(ev.type) && ev.redisEvent !== 'reconcile' && ev.backlog !== true;
}

/**
 * `churn_spike` (CC7.2): per kind, token churn per 1 s bucket against a robust baseline, the
 * median and MAD of the last `baselineBuckets` learned seconds (RobustBaseline).
 *
 * - Opens when a closed bucket exceeds median + openSigmas·σ and the volume floor, once
 *   `warmupBuckets` seconds are learned.
 * - Hysteresis: stays open until `resolveAfterBuckets` consecutive seconds are at or below
 *   median + resolveSigmas·σ (resolveSigmas ≤ openSigmas); one spike, one finding.
 * - Learning cannot be poisoned: a bucket is learned clipped to the resolve threshold (warm-up
 *   included, after a few samples), so a burst that is not (or not yet) flagged adds at most a
 *   "calm" value, and a median ignores a minority of those anyway. While a spike is open only a
 *   `learnWhileOpen` fraction of its buckets is learned, unclipped: 0 freezes the baseline, 1
 *   lets a lasting level shift become the new normal after about half the window.
 * - Late is not extra: a second's excess over the median is judged net of the shortfall of
 *   the `carryBuckets` seconds before it. Events are bucketed by when tokenwatch read them, so
 *   a stall (a large snapshot blocking the event loop, GC, a slow commit) or the writers' own
 *   pause leaves one second short and the next one over by as much; the soak's 1.4 s snapshot
 *   stall made a session "spike" of twice the rate after an empty second (issue #16). A burst
 *   is far more than a few seconds' shortfall and still opens.
 * - The window survives restarts through snapshot()/restore(); the downtime itself is not
 *   learned as silence (`resume`), nor credited as shortfall.
 */
export class ChurnSpikeRule {
  readonly #opts: ResolvedCorrelatorOptions;
  readonly #book: FindingBook;
  readonly #kinds: BoundedMap<string, KindChurn>;

  constructor(opts: ResolvedCorrelatorOptions, book: FindingBook) {
    this.#opts = opts;
    this.#book = book;
    this.#kinds = new BoundedMap(opts.limits.maxKinds);
  }

  get size(): number {
    return this.#kinds.size;
  }

  get evictions(): number {
    return this.#kinds.evictions;
  }

  record(ev: TokenEvent, seq: number | undefined): void {
    if (!isChurn(ev)) return;
    const second = Math.floor(ev.observedAt / 1000);
    const st = this.#kind(ev.kind, second);
    // A late event lands in the oldest open bucket rather than rewriting a judged one.
    const at = Math.max(second, st.next);
    let b = st.buckets.get(at);
    if (!b) {
      b = { n: 0, seqs: [] };
      st.buckets.set(at, b);
    }
    b.n++;
    if (seq !== undefined && b.seqs.length < this.#opts.limits.maxEvidenceSeqs) b.seqs.push(seq);
  }

  /** Closes every bucket before the current second and judges it. */
  tick(now: number): Finding[] {
    const current = Math.floor(now / 1000);
    const out: Finding[] = [];
    for (const st of this.#kinds.values()) {
      if (current - st.next > MAX_CATCH_UP_BUCKETS) {
        for (const s of st.buckets.keys())
          if (s < current - MAX_CATCH_UP_BUCKETS) st.buckets.delete(s);
        st.next = current - MAX_CATCH_UP_BUCKETS;
      }
      for (; st.next < current; st.next++) {
        const b = st.buckets.get(st.next);
        st.buckets.delete(st.next);
        const n = b?.n ?? 0;
        const f = this.#judge(st, n, this.#credit(st, n), b?.seqs ?? [], (st.next + 1) * 1000, now);
        if (f) out.push(f);
      }
    }
    return out;
  }

  /**
   * After a restart: the seconds tokenwatch was down were not observed, so they are skipped,
   * not judged as zero churn (which would drag the median down and make the next ordinary
   * second look like a spike). Buckets of those seconds are dropped unjudged.
   */
  resume(now: number): void {
    const current = Math.floor(now / 1000);
    for (const st of this.#kinds.values()) {
      if (st.next >= current) continue;
      for (const s of [...st.buckets.keys()]) if (s < current) st.buckets.delete(s);
      st.next = current;
      st.shortfall = [];
    }
  }

  snapshot(): ChurnKindSnapshot[] {
    return [...this.#kinds.values()].map((st) => ({
      kind: st.kind,
      next: st.next,
      window: st.baseline.values(),
      pending: [...st.buckets.entries()].map(([s, b]): [number, number] => [s, b.n]),
      spike: st.spike ? { ...st.spike } : null,
      shortfall: [...st.shortfall],
    }));
  }

  /** @throws TokenwatchError ERR_SNAPSHOT_INVALID */
  restore(raw: unknown, path: string): void {
    const cap = this.#opts.churn.baselineBuckets;
    for (const [i, v] of arr(raw, path, this.#opts.limits.maxKinds).entries()) {
      const p = `${path}[${i}]`;
      const o = obj(v, p);
      const kind = str(o.kind, `${p}.kind`);
      const next = int(o.next, `${p}.next`);
      const window = arr(o.window, `${p}.window`, cap).map((x, j) => num(x, `${p}.window[${j}]`));
      const st: KindChurn = {
        kind,
        baseline: new RobustBaseline(cap, window),
        next,
        buckets: new Map(),
        spike: undefined,
        shortfall: [],
      };
      if (o.shortfall !== undefined) {
        const sf = arr(o.shortfall, `${p}.shortfall`, 60).map((x, j) =>
          num(x, `${p}.shortfall[${j}]`),
        );
        st.shortfall = sf.slice(Math.max(0, sf.length - this.#opts.churn.carryBuckets));
      }
      for (const [j, e] of arr(o.pending, `${p}.pending`, MAX_CATCH_UP_BUCKETS).entries()) {
        const pair = arr(e, `${p}.pending[${j}]`, 2);
        st.buckets.set(int(pair[0], `${p}.pending[${j}][0]`), {
          n: int(pair[1], `${p}.pending[${j}][1]`),
          seqs: [],
        });
      }
      if (o.spike !== null && o.spike !== undefined) {
        const s = obj(o.spike, `${p}.spike`);
        st.spike = {
          findingId: str(s.findingId, `${p}.spike.findingId`),
          openedAt: num(s.openedAt, `${p}.spike.openedAt`),
          peak: num(s.peak, `${p}.spike.peak`),
          events: num(s.events, `${p}.spike.events`),
          buckets: int(s.buckets, `${p}.spike.buckets`),
          calm: int(s.calm, `${p}.spike.calm`),
          learnCredit: optNum(s.learnCredit, `${p}.spike.learnCredit`) ?? 0,
        };
      }
      this.#kinds.set(kind, st);
    }
  }

  #kind(kind: string, second: number): KindChurn {
    let st = this.#kinds.get(kind);
    if (!st) {
      st = {
        kind,
        baseline: new RobustBaseline(this.#opts.churn.baselineBuckets),
        next: second,
        buckets: new Map(),
        spike: undefined,
        shortfall: [],
      };
      this.#kinds.set(kind, st);
    }
    return st;
  }

  /**
   * The part of a second's excess over the median that the uncredited shortfall of the seconds
   * before it explains (consumed oldest first); records this second's own shortfall. Nothing is
   * credited before there is a baseline to measure shortfall against.
   */
  #credit(st: KindChurn, n: number): number {
    const k = this.#opts.churn.carryBuckets;
    const base = st.baseline;
    if (k === 0 || base.samples < MIN_SAMPLES_TO_CLIP) return 0;
    const m = base.median;
    let excess = Math.max(0, n - m);
    let credit = 0;
    const sf = st.shortfall;
    for (let i = 0; i < sf.length && excess > 0; i++) {
      const use = Math.min(sf[i] as number, excess);
      sf[i] = (sf[i] as number) - use;
      excess -= use;
      credit += use;
    }
    sf.push(Math.max(0, m - n));
    while (sf.length > k) sf.shift();
    return credit;
  }

  /** Learns a bucket outside a spike, clipped to the calm threshold (see the class comment). */
  #learn(base: RobustBaseline, rate: number): void {
    const clipped =
      base.samples >= MIN_SAMPLES_TO_CLIP
        ? Math.min(rate, base.threshold(this.#opts.churn.resolveSigmas))
        : rate;
    base.push(clipped);
  }

  /**
   * `count` events were bucketed in the second; `credit` of them are late (see #credit): the
   * second is judged and learned at `count - credit`, reported at what was counted.
   */
  #judge(
    st: KindChurn,
    count: number,
    credit: number,
    seqs: (number | undefined)[],
    bucketEnd: number,
    now: number,
  ): Finding | undefined {
    const c = this.#opts.churn;
    const base = st.baseline;
    const spike = st.spike;
    const rate = count - credit;
    if (!spike) {
      const threshold = base.threshold(c.openSigmas);
      if (base.samples >= c.warmupBuckets && rate >= c.minRatePerSecond && rate > threshold) {
        const f = this.#book.open(
          {
            rule: 'churn_spike',
            key: st.kind,
            kind: st.kind,
            summary: `Churn of ${st.kind} tokens is ${count}/s, far above its baseline median of ${round(base.median)}/s (threshold ${round(threshold)}/s).`,
            evidence: seqs,
            attributes: {
              ratePerSecond: count,
              // Late events credited (see #credit): reported only where some were.
              ...(credit > 0 ? { lateCredited: round(credit) } : {}),
              baselineMedian: round(base.median),
              baselineSpread: round(base.spread),
              threshold: round(threshold),
              openSigmas: c.openSigmas,
              baselineBuckets: base.samples,
              bucketEnd,
            },
          },
          now,
        );
        if (f)
          st.spike = {
            findingId: f.id,
            openedAt: now,
            peak: count,
            events: count,
            buckets: 1,
            calm: 0,
            learnCredit: 0,
          };
        // Disabled or capped: the bucket is still an outlier, learned clipped like any other.
        else this.#learn(base, rate);
        return f;
      }
      this.#learn(base, rate);
      return undefined;
    }
    spike.peak = Math.max(spike.peak, count);
    spike.events += count;
    spike.buckets++;
    spike.calm = rate <= base.threshold(c.resolveSigmas) ? spike.calm + 1 : 0;
    spike.learnCredit += c.learnWhileOpen;
    if (spike.learnCredit >= 1) {
      spike.learnCredit -= 1;
      base.push(rate);
    }
    this.#book.update(
      spike.findingId,
      { peakRatePerSecond: spike.peak, spikeEvents: spike.events },
      spike.calm === 0 ? seqs : [],
    );
    // The finding was closed elsewhere (not restored): the spike has nothing left to resolve.
    if (!this.#book.isOpen(spike.findingId)) {
      st.spike = undefined;
      return undefined;
    }
    if (spike.calm < c.resolveAfterBuckets) return undefined;
    st.spike = undefined;
    return this.#book.resolve(
      spike.findingId,
      now,
      `Churn of ${st.kind} tokens is back near its baseline median of ${round(base.median)}/s after peaking at ${spike.peak}/s.`,
      {
        resolution: 'calmed',
        peakRatePerSecond: spike.peak,
        spikeEvents: spike.events,
        durationSeconds: spike.buckets - spike.calm,
        baselineMedian: round(base.median),
      },
    );
  }
}
