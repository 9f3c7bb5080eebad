import { describe, expect, it } from 'vitest';
import type { Finding } from '../../src/domain/finding.js';
import type { CorrelatorOptions } from '../../src/correlate/options.js';
import { T0, World, session } from './helpers.js';

/** A small detector: 5 s warm-up, 20 s window, floor of 5/s, resolved after 3 calm seconds. */
const SMALL: CorrelatorOptions['churn'] = {
  warmupBuckets: 5,
  baselineBuckets: 20,
  minRatePerSecond: 5,
  resolveAfterBuckets: 3,
  carryBuckets: 0,
};

/** `rates[i]` writes of new sessions in second i, each second ticked. */
function run(w: World, rates: readonly number[], extra = {}): Finding[] {
  const out: Finding[] = [];
  for (const rate of rates) {
    for (let i = 0; i < rate; i++) w.token('written', session(`t${w.seq}`), extra);
    out.push(...w.advance(1000).filter((f) => f.rule === 'churn_spike'));
  }
  return out;
}

const world = (churn: CorrelatorOptions['churn'] = {}, more: CorrelatorOptions = {}) =>
  new World({ churn: { ...SMALL, ...churn }, ...more });

describe('churn_spike: what it records', () => {
  it('opens with its figures, updates them while open, and resolves with its duration', () => {
    const w = world();
    expect(run(w, [10, 10, 10, 10, 10, 10])).toEqual([]);
    const [opened] = run(w, [100]);
    expect(opened).toMatchObject({
      rule: 'churn_spike',
      kind: 'session',
      summary:
        'Churn of session tokens is 100/s, far above its baseline median of 10/s (threshold 28.97/s).',
      attributes: {
        ratePerSecond: 100,
        baselineMedian: 10,
        baselineSpread: 3.16,
        threshold: 28.97,
        openSigmas: 6,
        baselineBuckets: 6,
        bucketEnd: T0 + 7000,
      },
    });
    expect(opened?.attributes).not.toHaveProperty('lateCredited');
    expect(opened?.evidenceSeqs).toHaveLength(50); // capped at maxEvidenceSeqs
    expect(run(w, [120, 10])).toEqual([]);
    expect(w.c.openFindings()[0]?.attributes).toMatchObject({
      peakRatePerSecond: 120,
      spikeEvents: 230,
    });
    const [resolved] = run(w, [10, 10]);
    expect(resolved).toMatchObject({
      id: opened?.id,
      state: 'resolved',
      summary:
        'Churn of session tokens is back near its baseline median of 10/s after peaking at 120/s.',
      attributes: {
        resolution: 'calmed',
        peakRatePerSecond: 120,
        spikeEvents: 250,
        durationSeconds: 2,
        baselineMedian: 10,
      },
    });
  });

  it('caps the evidence of a second at maxEvidenceSeqs', () => {
    const w = world({}, { limits: { maxEvidenceSeqs: 3 } });
    run(w, [10, 10, 10, 10, 10, 10]);
    const [opened] = run(w, [100]);
    expect(opened?.evidenceSeqs).toEqual([61, 62, 63]);
  });

  it('opens just above the threshold, not at it', () => {
    // Median 10, spread √10: threshold 10 + 6·3.162 = 28.97.
    const at = world({ openSigmas: 6 });
    run(at, [10, 10, 10, 10, 10, 10]);
    expect(run(at, [28])).toEqual([]);
    const above = world({ openSigmas: 6 });
    run(above, [10, 10, 10, 10, 10, 10]);
    expect(run(above, [29]).map((f) => f.state)).toEqual(['opened']);
  });

  it('opens above a whole-number threshold, not at it', () => {
    // Sixteen a second: median 16, spread √16 = 4, threshold 16 + 6·4 = 40.
    const at = world();
    run(at, [16, 16, 16, 16, 16, 16]);
    expect(run(at, [40])).toEqual([]);
    const above = world();
    run(above, [16, 16, 16, 16, 16, 16]);
    expect(run(above, [41]).map((f) => f.state)).toEqual(['opened']);
  });

  it('adds the evidence of spike seconds, not of calm ones', () => {
    const w = world({}, { limits: { maxEvidenceSeqs: 500 } });
    run(w, [10, 10, 10, 10, 10, 10]);
    const [opened] = run(w, [100]);
    expect(opened?.evidenceSeqs).toHaveLength(100);
    run(w, [10]);
    expect(w.c.openFindings()[0]?.evidenceSeqs).toHaveLength(100);
    run(w, [30]);
    expect(w.c.openFindings()[0]?.evidenceSeqs).toHaveLength(130);
  });

  it('opens at the volume floor itself', () => {
    const w = world({ minRatePerSecond: 30 });
    run(w, [10, 10, 10, 10, 10, 10]);
    expect(run(w, [30]).map((f) => f.state)).toEqual(['opened']);
  });

  it('needs warmupBuckets learned seconds, not one fewer', () => {
    const early = world();
    run(early, [10, 10, 10, 10]);
    expect(run(early, [100])).toEqual([]);
    const ready = world();
    run(ready, [10, 10, 10, 10, 10]);
    expect(run(ready, [100]).map((f) => f.state)).toEqual(['opened']);
  });

  it('a spike whose finding was dropped elsewhere ends quietly, and the next one opens anew', () => {
    const w = world();
    run(w, [10, 10, 10, 10, 10, 10]);
    const [opened] = run(w, [100]);
    w.c.findings.forget(opened?.id as string);
    expect(run(w, [100, 10, 10, 10, 10])).toEqual([]);
    expect(run(w, [100]).map((f) => f.state)).toEqual(['opened']);
  });

  it('with the rule disabled opens nothing, and still learns the outlier only clipped', () => {
    const w = world({}, { rules: { churn_spike: { enabled: false } } });
    run(w, [10, 10, 10, 10, 10, 10]);
    expect(run(w, [100, 100, 100, 100, 100, 100, 100, 100, 100, 100])).toEqual([]);
    // Each outlier is learned clipped at the calm threshold of the moment (10 + 3·√10 first).
    const window = w.c.snapshot().churn[0]?.window ?? [];
    expect(window[6]).toBeCloseTo(10 + 3 * Math.sqrt(10), 9);
    expect(Math.max(...window)).toBeLessThan(100);
  });
});

describe('churn_spike: what counts as churn', () => {
  it('counts writes and departures, not reconciliation, backlog expiry or appeared tokens', () => {
    const counted = (type: 'written' | 'appeared' | 'expired', extra = {}) => {
      const w = world();
      w.token(type, session('x'), extra);
      w.advance(1000);
      return w.c.snapshot().churn[0]?.window ?? [];
    };
    expect(counted('written')).toEqual([1]);
    expect(counted('expired')).toEqual([1]);
    expect(counted('evicted' as 'expired')).toEqual([1]);
    expect(counted('vanished' as 'expired')).toEqual([1]);
    expect(counted('deleted' as 'expired')).toEqual([1]);
    expect(counted('written', { redisEvent: 'reconcile' })).toEqual([]);
    expect(counted('expired', { backlog: true })).toEqual([]);
    expect(counted('appeared')).toEqual([]);
  });

  it('after a stall longer than an hour replays only the last hour of seconds', () => {
    const w = world({ baselineBuckets: 5000 });
    run(w, [3]);
    w.clock.t += 7_200_000;
    w.tick();
    const window = w.c.snapshot().churn[0]?.window ?? [];
    expect(window.length).toBe(1 + 3600);
    expect(w.c.snapshot().churn[0]?.next).toBe(Math.floor(w.clock.t / 1000));
  });

  it('a late event lands in the oldest open second, not a judged one', () => {
    const w = world();
    run(w, [2, 2]);
    w.token('written', session('late'), { observedAt: T0 });
    w.advance(1000);
    expect(w.c.snapshot().churn[0]?.window).toEqual([2, 2, 1]);
  });
});

describe('churn_spike: learning and crediting, second by second', () => {
  const windowOf = (w: World) => w.c.snapshot().churn[0]?.window ?? [];

  it('credits shortfall only once five seconds are learned', () => {
    const w = world({ carryBuckets: 5, warmupBuckets: 100 });
    run(w, [10, 10, 0, 20]);
    expect(windowOf(w)).toEqual([10, 10, 0, 20]);
    // From the fifth learned second on, a short second is owed to the next.
    const v = world({ carryBuckets: 5, warmupBuckets: 100 });
    run(v, [10, 10, 10, 10, 10, 0, 15]);
    expect(windowOf(v)).toEqual([10, 10, 10, 10, 10, 0, 10]);
  });

  it('credits exactly the last carryBuckets seconds of shortfall', () => {
    const w = world({ carryBuckets: 2, warmupBuckets: 100 });
    run(w, [10, 10, 10, 10, 10, 0, 0, 0, 30]);
    // Two seconds of 10 owed: the 30 is learned as 10.
    expect(windowOf(w).at(-1)).toBe(10);
  });

  it('clips what it learns from the fifth learned second on', () => {
    const w = world({ warmupBuckets: 100 });
    run(w, [10, 10, 10, 10, 100]);
    expect(windowOf(w).at(-1)).toBe(100);
    run(w, [100]);
    expect(windowOf(w).at(-1)).toBeLessThan(100);
  });

  it('counts a second at the calm threshold as calm', () => {
    // Sixteen a second: median 16, spread 4, calm threshold 16 + 3·4 = 28.
    const w = world();
    run(w, [16, 16, 16, 16, 16, 16]);
    expect(run(w, [100]).map((f) => f.state)).toEqual(['opened']);
    expect(run(w, [28, 28, 28]).map((f) => f.state)).toEqual(['resolved']);
    const v = world();
    run(v, [16, 16, 16, 16, 16, 16]);
    run(v, [100]);
    expect(run(v, [29, 29, 29])).toEqual([]);
  });

  it('learns every second spike second with learnWhileOpen 0.5, unclipped', () => {
    const w = world({ learnWhileOpen: 0.5 });
    run(w, [10, 10, 10, 10, 10, 10]);
    run(w, [100, 90, 80, 70, 60]);
    // The opening second is not learned; of the next four, the second and the fourth are.
    expect(windowOf(w)).toEqual([10, 10, 10, 10, 10, 10, 80, 60]);
  });

  it('keeps the shortfall and the open seconds when resumed without downtime', () => {
    const w = world({ carryBuckets: 5, warmupBuckets: 100 });
    run(w, [10, 10, 10, 10, 10, 0]);
    w.token('written', session('pending'));
    const before = w.c.snapshot().churn[0];
    expect(before?.shortfall).toEqual([10]);
    expect(before?.pending).toHaveLength(1);
    w.c.resume();
    expect(w.c.snapshot().churn[0]).toEqual(before);
  });

  it('after downtime drops the seconds before the restart, keeps those since, and the shortfall', () => {
    const w = world({ carryBuckets: 5, warmupBuckets: 100 });
    run(w, [10, 10, 10, 10, 10, 0]);
    w.token('written', session('before'));
    const snap = JSON.parse(JSON.stringify(w.c.snapshot())) as unknown;
    const r = new World(
      { churn: { ...SMALL, carryBuckets: 5, warmupBuckets: 100 } },
      {
        snapshot: snap,
        at: w.clock.t + 60_000,
        seq: w.seq,
      },
    );
    r.token('written', session('after'));
    r.c.resume();
    expect(r.c.snapshot().churn[0]).toMatchObject({
      next: (w.clock.t + 60_000) / 1000,
      pending: [[(w.clock.t + 60_000) / 1000, 1]],
      shortfall: [],
    });
  });

  it('restores a snapshot without shortfall (older versions), and keeps the last carryBuckets of one', () => {
    const w = world({ carryBuckets: 3 });
    run(w, [10]);
    const snap = JSON.parse(JSON.stringify(w.c.snapshot())) as { churn: Record<string, unknown>[] };
    const kind = snap.churn[0] as Record<string, unknown>;
    const restore = (over: Record<string, unknown>) =>
      new World(
        { churn: { ...SMALL, carryBuckets: 3 } },
        {
          snapshot: { ...snap, churn: [{ ...kind, ...over }] },
          at: w.clock.t,
          seq: w.seq,
        },
      ).c.snapshot().churn[0];
    const old = { ...kind };
    delete old.shortfall;
    expect(
      new World(
        { churn: SMALL },
        { snapshot: { ...snap, churn: [old] }, at: w.clock.t, seq: w.seq },
      ).c.snapshot().churn[0]?.shortfall,
    ).toEqual([]);
    expect(restore({ shortfall: [1, 2, 3, 4, 5] })?.shortfall).toEqual([3, 4, 5]);
    expect(restore({ shortfall: [1, 2] })?.shortfall).toEqual([1, 2]);
    const spike = { findingId: 'f', openedAt: 1, peak: 2, events: 3, buckets: 1, calm: 0 };
    expect(restore({ spike: { ...spike, learnCredit: 0.5 } })?.spike?.learnCredit).toBe(0.5);
    expect(restore({ spike })?.spike?.learnCredit).toBe(0);
  });

  it('counts kinds pushed out by maxKinds', () => {
    const w = world({}, { limits: { maxKinds: 1 } });
    w.token('written', session('a'));
    w.token('written', { ...session('b'), kind: 'access_token' });
    expect(w.c.stats()).toMatchObject({ sizes: { churnKinds: 1 }, evictions: { churnKinds: 1 } });
  });

  it('a second counted before a restart is judged after it, without evidence it no longer has', () => {
    const w = world();
    run(w, [10, 10, 10, 10, 10, 10]);
    const snap = JSON.parse(JSON.stringify(w.c.snapshot())) as { churn: Record<string, unknown>[] };
    const kind = snap.churn[0] as Record<string, unknown>;
    const second = Number(kind.next);
    const r = new World(
      { churn: SMALL },
      {
        snapshot: { ...snap, churn: [{ ...kind, pending: [[second, 100]] }] },
        at: w.clock.t,
        seq: w.seq,
      },
    );
    const opened = r.advance(1000).filter((f) => f.rule === 'churn_spike');
    expect(opened).toMatchObject([{ state: 'opened', attributes: { ratePerSecond: 100 } }]);
    expect(opened[0]?.evidenceSeqs).toEqual([]);
  });
});
