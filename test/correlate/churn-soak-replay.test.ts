import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../src/domain/finding.js';
import { FindingBook } from '../../src/correlate/finding-book.js';
import { resolveCorrelatorOptions } from '../../src/correlate/options.js';
import type { ChurnOptions } from '../../src/correlate/options.js';
import { ChurnSpikeRule } from '../../src/correlate/rules/churn-spike.js';
import type { TokenEvent } from '../../src/domain/token-event.js';
import { T0 } from './helpers.js';

interface Recording {
  bursts: number[];
  burstSeconds: number;
  burstKinds: string[];
  stalls: number[];
  segments: { start: number; counts: Record<string, number[]> }[];
}

/**
 * Issue #16: per-second churn counts per kind recorded from a soak drill's ledger: a burst in the
 * warm-up, bursts after it, a restart, and two event-loop stalls (a large correlator snapshot)
 * that left a hole and a clump in every kind (see the fixture's description).
 */
const soak = JSON.parse(
  readFileSync(new URL('../fixtures/churn/soak-stall-recorded.json', import.meta.url), 'utf8'),
) as Recording;

const event = (kind: string, observedAt: number): TokenEvent => ({
  type: 'written',
  kind,
  fingerprint: 'hmac-sha256:k1:00',
  keyAttrs: {},
  node: 'redis-a:6379',
  db: 0,
  observedAt,
  redisEvent: 'set',
});

interface Found {
  /** The recording's second whose bucket the finding was judged on. */
  s: number;
  f: Finding;
}

/** The churn rule alone on the recording's clock: second s is T0 + s·1000. */
class Replay {
  readonly book: FindingBook;
  readonly rule: ChurnSpikeRule;
  readonly found: Found[] = [];

  constructor(churn: ChurnOptions = {}) {
    const opts = resolveCorrelatorOptions({ churn });
    this.book = new FindingBook(opts);
    this.rule = new ChurnSpikeRule(opts, this.book);
  }

  feed(start: number, counts: Record<string, number[]>): void {
    const kinds = Object.keys(counts).sort();
    const seconds = Math.max(...kinds.map((k) => counts[k]?.length ?? 0));
    for (let i = 0; i < seconds; i++) {
      const s = start + i;
      for (const k of kinds) {
        const n = counts[k]?.[i] ?? 0;
        for (let j = 0; j < n; j++) this.rule.record(event(k, T0 + s * 1000 + (j % 1000)), j);
      }
      for (const f of this.rule.tick(T0 + (s + 1) * 1000)) this.found.push({ s, f });
    }
  }

  /** The whole recording, with a restart (snapshot restored, downtime skipped) between segments. */
  static run(churn: ChurnOptions = {}): Replay {
    let r = new Replay(churn);
    soak.segments.forEach((seg, i) => {
      if (i > 0) {
        const saved = JSON.parse(JSON.stringify(r.rule.snapshot())) as unknown;
        const next = new Replay(churn);
        next.found.push(...r.found);
        // Findings open at shutdown are restored with the snapshot.
        for (const x of opened(r.found)) if (!resolved(r.found, x.f.id)) next.book.adopt(x.f);
        next.rule.restore(saved, 'churn');
        next.rule.resume(T0 + seg.start * 1000);
        r = next;
      }
      r.feed(seg.start, seg.counts);
    });
    return r;
  }
}

const resolved = (found: Found[], id: string): boolean =>
  found.some((x) => x.f.id === id && x.f.state === 'resolved');

const opened = (found: Found[]) => found.filter((x) => x.f.state === 'opened');

const inBurst = (s: number): boolean =>
  soak.bursts.some((b) => s >= b && s < b + soak.burstSeconds);

describe('churn_spike on a recorded soak (issue #16)', () => {
  it('the recording holds what the drill did: bursts of 10x and stall holes in every kind', () => {
    const [first] = soak.segments;
    for (const k of soak.burstKinds) {
      const c = first?.counts[k] ?? [];
      expect(c[102]! / c[98]!).toBeGreaterThan(5);
    }
    for (const k of Object.keys(first?.counts ?? {})) {
      const c = first?.counts[k] ?? [];
      expect(c[113]).toBe(0);
      expect(c[114]! / c[112]!).toBeGreaterThan(1.7);
    }
  });

  it('opens churn_spike for each burst after warm-up, in the burst kinds only, and nothing else', () => {
    const r = Replay.run();
    const byKind = (k: string) => opened(r.found).filter((x) => x.f.kind === k);
    for (const k of soak.burstKinds) {
      expect(byKind(k).map((x) => soak.bursts.find((b) => x.s >= b && x.s < b + 2))).toEqual(
        soak.bursts.slice(1),
      );
    }
    // Sessions never burst: the stall's clump (second 114, twice the rate after an empty second)
    // is late events, not churn.
    expect(byKind('session')).toEqual([]);
    expect(opened(r.found).filter((x) => !inBurst(x.s))).toEqual([]);
  });

  it('resolves every opening before the next burst', () => {
    const r = Replay.run();
    for (const o of opened(r.found)) {
      const res = r.found.find((x) => x.f.id === o.f.id && x.f.state === 'resolved');
      expect(res, o.f.id).toBeDefined();
      expect(res!.s).toBeLessThan(soak.bursts.find((b) => b > o.s) ?? Infinity);
    }
  });

  it('without crediting late events the stall clump opens churn_spike (the soak failure)', () => {
    const r = Replay.run({ carryBuckets: 0 });
    const stray = opened(r.found).filter((x) => !inBurst(x.s));
    expect(stray.map((x) => [x.s, x.f.kind])).toContainEqual([114, 'session']);
  });

  it('issue #16.1 on recorded counts: restarted without a baseline, the warm-up burst does not blind it', () => {
    // The snapshot rejected or absent: the restarted detector warms up again, with the burst at
    // second 160 inside its warm-up; the burst at 220 must still open.
    const seg = soak.segments[1]!;
    const r = new Replay();
    r.feed(seg.start, seg.counts);
    for (const k of soak.burstKinds) {
      const mine = opened(r.found).filter((x) => x.f.kind === k);
      expect(mine.map((x) => x.s >= 220 && x.s < 222)).toEqual([true]);
    }
    expect(opened(r.found).filter((x) => !inBurst(x.s))).toEqual([]);
  });

  it('the warm-up burst is not learned: the median stays at the background rate', () => {
    const r = new Replay();
    const [first] = soak.segments;
    r.feed(first!.start, first!.counts);
    for (const st of r.rule.snapshot()) {
      const sorted = [...st.window].sort((a, b) => a - b);
      const median = sorted[sorted.length >> 1] ?? 0;
      const background = [...(first!.counts[st.kind] ?? [])].slice(60, 95).sort((a, b) => a - b);
      const bg = background[background.length >> 1]!;
      expect(Math.abs(median - bg) / bg).toBeLessThan(0.1);
      expect(Math.max(...st.window)).toBeLessThan(2 * median);
    }
  });
});
