import { describe, expect, it } from 'vitest';
import type { Finding } from '../../src/domain/finding.js';
import type { CorrelatorOptions } from '../../src/correlate/options.js';
import { World, session } from './helpers.js';

/** Drives one kind's churn second by second: `rates[i]` events in second i, then a tick. */
function run(w: World, rates: readonly number[]): Finding[] {
  const out: Finding[] = [];
  for (const rate of rates) {
    for (let i = 0; i < rate; i++) {
      // Half writes, half deletes of what was just written: churn without growing the view.
      const ref = session(`t${w.seq}`);
      w.token(i % 2 === 0 ? 'written' : 'deleted', i % 2 === 0 ? ref : session(`t${w.seq - 1}`));
    }
    out.push(...w.advance(1000).filter((f) => f.rule === 'churn_spike'));
  }
  return out;
}

/** ~100/s with deterministic jitter of ±5. */
const steady = (seconds: number, base = 100): number[] =>
  Array.from({ length: seconds }, (_, s) => base + ((s * 7) % 11) - 5);

const world = (churn: CorrelatorOptions['churn'] = {}) => new World({ churn });

describe('churn_spike', { timeout: 30_000 }, () => {
  it('opens exactly one finding for a spike after warm-up and resolves it once calm', () => {
    const w = world();
    expect(run(w, steady(70))).toEqual([]);

    const spike = run(w, [1000, 1200, 900, 1100, 1000]);
    expect(spike).toHaveLength(1);
    expect(spike[0]).toMatchObject({
      rule: 'churn_spike',
      state: 'opened',
      severity: 'high',
      criteria: ['CC7.2'],
      kind: 'session',
      attributes: { ratePerSecond: 1000 },
    });
    expect(spike[0]?.evidenceSeqs).toHaveLength(50);
    expect(Number(spike[0]?.attributes.baselineMedian)).toBeCloseTo(100, -1);

    const calm = run(w, steady(9));
    expect(calm).toEqual([]);
    const [resolved, ...more] = run(w, steady(20));
    expect(more).toEqual([]);
    expect(resolved).toMatchObject({
      id: spike[0]?.id,
      state: 'resolved',
      attributes: { resolution: 'calmed', peakRatePerSecond: 1200, durationSeconds: 5 },
    });
    // The baseline did not learn the spike.
    expect(Number(resolved?.attributes.baselineMedian)).toBeLessThan(110);
  });

  it('keeps one finding through dips that are still above the resolve threshold', () => {
    const w = world();
    run(w, steady(70));
    const out = run(w, [1000, 160, 1000, 170, 1000, 165, ...steady(10)]);
    expect(out.map((f) => f.state)).toEqual(['opened', 'resolved']);
  });

  it('does not learn a long spike while it is open', () => {
    const w = world();
    run(w, steady(70));
    const out = run(
      w,
      Array.from({ length: 120 }, () => 400),
    );
    expect(out.map((f) => f.state)).toEqual(['opened']);
    expect(run(w, steady(10)).map((f) => f.state)).toEqual(['resolved']);
  });

  it('lets a lasting level shift become the baseline when learnWhileOpen > 0', () => {
    const w = world({ learnWhileOpen: 1, baselineBuckets: 120 });
    run(w, steady(70));
    const out = run(
      w,
      Array.from({ length: 120 }, () => 400),
    );
    expect(out.map((f) => f.state)).toEqual(['opened', 'resolved']);
  });

  it('stays silent during warm-up', () => {
    const w = world();
    expect(run(w, [...steady(10), 1000, 1000, 1000, ...steady(10)])).toEqual([]);
  });

  it('stays silent under the volume floor, and only because of it', () => {
    const quiet = [...Array.from({ length: 70 }, () => 2), 40, 40, 40];
    expect(run(world(), quiet)).toEqual([]);
    expect(run(world({ minRatePerSecond: 10 }), quiet).map((f) => f.state)).toEqual(['opened']);
  });

  it('credits a stall: a short second and a long one after it are late events, not a spike', () => {
    const w = world();
    run(w, steady(70));
    // Events read late (tokenwatch stalled 1-3 s) are stamped into the second after the stall.
    expect(run(w, [0, 200, ...steady(5)])).toEqual([]);
    expect(run(w, [30, 170, ...steady(5)])).toEqual([]);
    expect(run(w, [40, 0, 0, 360, ...steady(5)])).toEqual([]);
    // Without the credit the same clump is a "spike".
    const bare = world({ carryBuckets: 0 });
    run(bare, steady(70));
    expect(run(bare, [0, 200]).map((f) => f.state)).toEqual(['opened']);
  });

  it('still opens for a burst after a short second, net of the shortfall', () => {
    const w = world();
    run(w, steady(70));
    const [opened, ...more] = run(w, [0, 1000, 1000]);
    expect(more).toEqual([]);
    expect(opened).toMatchObject({ state: 'opened', attributes: { ratePerSecond: 1000 } });
    expect(Number(opened?.attributes.lateCredited)).toBeCloseTo(100, -1);
  });

  it('credits only the last carryBuckets seconds of shortfall', () => {
    const w = world({ carryBuckets: 2 });
    run(w, steady(70));
    // Three empty seconds: only two seconds' worth (~200) is credited against the 400.
    expect(run(w, [0, 0, 0, 400]).map((f) => f.state)).toEqual(['opened']);
  });

  it('treats seconds without events as zero churn', () => {
    const w = world();
    run(w, steady(70));
    w.advance(30_000);
    expect(run(w, [1000]).map((f) => f.state)).toEqual(['opened']);
  });
});
