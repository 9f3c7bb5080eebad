import type { Finding } from '../domain/finding.js';
import type { TokenEvent } from '../domain/token-event.js';
import { BoundedMap } from './bounded-map.js';
import type { FindingBook } from './finding-book.js';
import { plural, secs } from './format.js';
import type { ResolvedCorrelatorOptions } from './options.js';
import { arr, bool, int, num, obj, optStr, str } from './snapshot-read.js';

interface Burst {
  kind: string;
  count: number;
  firstAt: number;
  lastAt: number;
  seqs: (number | undefined)[];
  findingId: string | undefined;
  /** An open was attempted (rule disabled or at cap): do not retry on every eviction. */
  attempted: boolean;
}

/**
 * `tokens_evicted` (A1.2): Redis evicting tokens under maxmemory silently logs users out. One
 * finding per burst per kind (evictions less than `evictionBurstGapSeconds` apart), updated
 * with counts while it lasts and resolved once the kind has been quiet for the gap.
 */
export class EvictionBursts {
  readonly #opts: ResolvedCorrelatorOptions;
  readonly #book: FindingBook;
  readonly #bursts: BoundedMap<string, Burst>;
  #spill: Finding[] = [];
  #now = 0;

  constructor(opts: ResolvedCorrelatorOptions, book: FindingBook) {
    this.#opts = opts;
    this.#book = book;
    this.#bursts = new BoundedMap(opts.limits.maxKinds, (_k, b) => {
      const f = this.#end(b, this.#now);
      if (f) this.#spill.push(f);
    });
  }

  get size(): number {
    return this.#bursts.size;
  }

  get evictions(): number {
    return this.#bursts.evictions;
  }

  snapshot(): unknown[] {
    return [...this.#bursts.values()].map((b) => ({
      ...b,
      seqs: b.seqs.filter((s) => s !== undefined),
    }));
  }

  /** @throws TokenwatchError ERR_SNAPSHOT_INVALID */
  restore(raw: unknown, path: string): void {
    for (const [i, v] of arr(raw, path, this.#bursts.capacity).entries()) {
      const p = `${path}[${i}]`;
      const o = obj(v, p);
      const b: Burst = {
        kind: str(o.kind, `${p}.kind`),
        count: int(o.count, `${p}.count`),
        firstAt: num(o.firstAt, `${p}.firstAt`),
        lastAt: num(o.lastAt, `${p}.lastAt`),
        seqs: arr(o.seqs, `${p}.seqs`, this.#opts.limits.maxEvidenceSeqs).map((s, j) =>
          int(s, `${p}.seqs[${j}]`, 1),
        ),
        findingId: optStr(o.findingId, `${p}.findingId`),
        attempted: bool(o.attempted, `${p}.attempted`),
      };
      this.#bursts.set(b.kind, b);
    }
  }

  record(ev: TokenEvent, seq: number | undefined, now: number): Finding[] {
    this.#now = now;
    const out: Finding[] = [];
    let b = this.#bursts.get(ev.kind);
    if (b && ev.observedAt - b.lastAt >= this.#gapMs()) {
      // The previous burst ended before this eviction (tick has not run since).
      const f = this.#end(b, now);
      if (f) out.push(f);
      this.#bursts.delete(ev.kind);
      b = undefined;
    }
    if (!b) {
      b = {
        kind: ev.kind,
        count: 0,
        firstAt: ev.observedAt,
        lastAt: ev.observedAt,
        seqs: [],
        findingId: undefined,
        attempted: false,
      };
      this.#bursts.set(ev.kind, b);
    }
    b.count++;
    b.lastAt = Math.max(b.lastAt, ev.observedAt);
    if (b.findingId !== undefined) this.#book.update(b.findingId, this.#attrs(b), [seq]);
    else {
      if (b.seqs.length < this.#opts.limits.maxEvidenceSeqs) b.seqs.push(seq);
      if (!b.attempted && b.count >= this.#opts.evictionBurstMinCount) {
        b.attempted = true;
        const f = this.#book.open(
          {
            rule: 'tokens_evicted',
            key: b.kind,
            kind: b.kind,
            summary: `Redis is evicting ${b.kind} tokens under memory pressure (${plural(b.count, 'eviction')} so far).`,
            evidence: b.seqs,
            attributes: this.#attrs(b),
          },
          now,
        );
        b.findingId = f?.id;
        if (f) out.push(f);
      }
    }
    return [...this.#drainSpill(), ...out];
  }

  tick(now: number): Finding[] {
    this.#now = now;
    const out = this.#drainSpill();
    for (const [kind, b] of [...this.#bursts.entries()]) {
      if (now - b.lastAt < this.#gapMs()) continue;
      this.#bursts.delete(kind);
      const f = this.#end(b, now);
      if (f) out.push(f);
    }
    return out;
  }

  #end(b: Burst, now: number): Finding | undefined {
    return this.#book.resolve(
      b.findingId,
      now,
      `Eviction burst of ${b.kind} tokens ended: ${plural(b.count, 'token')} evicted over ${secs(b.lastAt - b.firstAt)} s.`,
      { ...this.#attrs(b), resolution: 'quiet' },
    );
  }

  #attrs(b: Burst): Finding['attributes'] {
    return {
      evicted: b.count,
      firstEvictionAt: b.firstAt,
      lastEvictionAt: b.lastAt,
      burstSeconds: secs(b.lastAt - b.firstAt),
      gapSeconds: this.#opts.evictionBurstGapSeconds,
    };
  }

  #gapMs(): number {
    return this.#opts.evictionBurstGapSeconds * 1000;
  }

  #drainSpill(): Finding[] {
    const out = this.#spill;
    this.#spill = [];
    return out;
  }
}
