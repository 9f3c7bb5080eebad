import type { Finding } from '../../domain/finding.js';
import type { TokenEvent, TokenEventType } from '../../domain/token-event.js';
import { BoundedMap } from '../bounded-map.js';
import { EwmaBaseline } from '../churn-detector.js';
import type { FindingBook } from '../finding-book.js';
import type { ResolvedCorrelatorOptions } from '../options.js';

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
}

interface KindChurn {
  kind: string;
  baseline: EwmaBaseline;
  /** First second (unix s) not yet closed. */
  next: number;
  buckets: Map<number, Bucket>;
  spike: Spike | undefined;
}

const round = (x: number): number => Math.round(x * 100) / 100;

/**
 * `churn_spike` (CC7.2): per kind, token churn per 1 s bucket against an EWMA baseline. Opens
 * when a closed bucket exceeds mean + openSigmas·σ and the volume floor (after warm-up); while
 * open the baseline is frozen (or slowed) so it cannot learn the spike; resolves after
 * `resolveAfterBuckets` consecutive seconds at or below mean + resolveSigmas·σ. One spike, one
 * finding.
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
    if (!CHURN_TYPES.has(ev.type)) return;
    const second = Math.floor(ev.observedAt / 1000);
    let st = this.#kinds.get(ev.kind);
    if (!st) {
      st = {
        kind: ev.kind,
        baseline: new EwmaBaseline(this.#opts.churn.alpha),
        next: second,
        buckets: new Map(),
        spike: undefined,
      };
      this.#kinds.set(ev.kind, st);
    }
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
        const f = this.#judge(st, b?.n ?? 0, b?.seqs ?? [], (st.next + 1) * 1000, now);
        if (f) out.push(f);
      }
    }
    return out;
  }

  #judge(
    st: KindChurn,
    rate: number,
    seqs: (number | undefined)[],
    bucketEnd: number,
    now: number,
  ): Finding | undefined {
    const c = this.#opts.churn;
    const base = st.baseline;
    const threshold = base.mean + c.openSigmas * base.sigma;
    const spike = st.spike;
    if (!spike) {
      if (base.samples >= c.warmupBuckets && rate >= c.minRatePerSecond && rate > threshold) {
        const f = this.#book.open(
          {
            rule: 'churn_spike',
            key: st.kind,
            kind: st.kind,
            summary: `Churn of ${st.kind} tokens is ${rate}/s, far above its baseline of ${round(base.mean)}/s (threshold ${round(threshold)}/s).`,
            evidence: seqs,
            attributes: {
              ratePerSecond: rate,
              baselineMean: round(base.mean),
              baselineStdDev: round(base.stdDev),
              threshold: round(threshold),
              openSigmas: c.openSigmas,
              bucketEnd,
            },
          },
          now,
        );
        // Disabled or capped: keep learning as if nothing happened.
        if (!f) base.update(rate);
        else
          st.spike = {
            findingId: f.id,
            openedAt: now,
            peak: rate,
            events: rate,
            buckets: 1,
            calm: 0,
          };
        return f;
      }
      base.update(rate);
      return undefined;
    }
    spike.peak = Math.max(spike.peak, rate);
    spike.events += rate;
    spike.buckets++;
    spike.calm = rate <= base.mean + c.resolveSigmas * base.sigma ? spike.calm + 1 : 0;
    base.update(rate, c.learnWhileOpen);
    this.#book.update(
      spike.findingId,
      { peakRatePerSecond: spike.peak, spikeEvents: spike.events },
      spike.calm === 0 ? seqs : [],
    );
    if (spike.calm < c.resolveAfterBuckets) return undefined;
    st.spike = undefined;
    return this.#book.resolve(
      spike.findingId,
      now,
      `Churn of ${st.kind} tokens is back near its baseline of ${round(base.mean)}/s after peaking at ${spike.peak}/s.`,
      {
        resolution: 'calmed',
        peakRatePerSecond: spike.peak,
        spikeEvents: spike.events,
        durationSeconds: spike.buckets - spike.calm,
        baselineMean: round(base.mean),
      },
    );
  }
}
