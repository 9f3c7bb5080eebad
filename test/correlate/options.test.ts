import { describe, expect, it } from 'vitest';
import { resolveCorrelatorOptions } from '../../src/correlate/options.js';
import { ConfigError } from '../../src/errors.js';

describe('resolveCorrelatorOptions', () => {
  it('fills documented defaults', () => {
    const o = resolveCorrelatorOptions();
    expect(o.revocationSlaSeconds).toBe(5);
    expect(o.attributionWindowSeconds).toBe(30);
    expect(o.revocationMemorySeconds).toBe(3600);
    expect(o.evictionBurstGapSeconds).toBe(10);
    expect(o.limits.maxTrackedTokens).toBe(2_000_000);
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

  it('rejects bad values naming every offending key', () => {
    let err: unknown;
    try {
      resolveCorrelatorOptions({
        revocationSlaSeconds: -1,
        kinds: [{ kind: 'a' }, { kind: 'a', maxTtlSeconds: 0 }],
        limits: { maxTrackedTokens: 1.5 },
        // @ts-expect-error removed option (EWMA) still named by old configs
        churn: { alpha: 2, warmupBuckets: 700, carryBuckets: 61 },
        // @ts-expect-error unknown provider event type from YAML
        revocationEventTypes: ['nope'],
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const ce = err as ConfigError;
    expect(ce.code).toBe('ERR_CONFIG_INVALID');
    expect(ce.issues.map((i) => i.path).sort()).toEqual([
      'correlate.churn.alpha',
      'correlate.churn.carryBuckets',
      'correlate.churn.warmupBuckets',
      'correlate.kinds[1].kind',
      'correlate.kinds[1].maxTtlSeconds',
      'correlate.limits.maxTrackedTokens',
      'correlate.revocationEventTypes',
      'correlate.revocationSlaSeconds',
    ]);
  });
});
