import { describe, expect, it } from 'vitest';
import { resolveCorrelatorOptions } from '../../src/correlate/options.js';

describe('resolveCorrelatorOptions', () => {
  it('fills documented defaults', () => {
    const o = resolveCorrelatorOptions();
    expect(o.revocationSlaSeconds).toBe(5);
    expect(o.attributionWindowSeconds).toBe(30);
    expect(o.revocationMemorySeconds).toBe(3600);
    expect(o.evictionBurstGapSeconds).toBe(10);
    expect(o.limits.maxTrackedTokens).toBe(200_000);
    expect(o.churn).toMatchObject({
      warmupBuckets: 60,
      minRatePerSecond: 50,
      openSigmas: 6,
      carryBuckets: 5,
    });
    expect(o.rules.churn_spike).toEqual({ enabled: true, severity: 'high', criteria: ['CC7.2'] });
    expect([...o.revocationEventTypes]).toContain('account_disabled');
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('applies per-rule severity and criteria overrides', () => {
    const o = resolveCorrelatorOptions({
      rules: { tokens_evicted: { severity: 'medium', criteria: ['A1.2', 'CC7.2'] } },
    });
    expect(o.rules.tokens_evicted).toEqual({
      enabled: true,
      severity: 'medium',
      criteria: ['A1.2', 'CC7.2'],
    });
  });

  it('keeps every default when a section is given in part', () => {
    const o = resolveCorrelatorOptions({
      churn: { openSigmas: 8 },
      limits: { maxKinds: 10, maxEndedTokens: undefined },
    });
    expect(o.churn).toMatchObject({ openSigmas: 8, resolveSigmas: 3, baselineBuckets: 600 });
    expect(o.limits).toMatchObject({ maxKinds: 10, maxEndedTokens: 200_000 });
  });
});
