import { describe, expect, it } from 'vitest';
import { resolveCorrelatorOptions } from '../../src/correlate/options.js';
import type { CorrelatorOptions } from '../../src/correlate/options.js';

/** The documented defaults (config/, docs/), every one of them, and every override applied. */
describe('resolveCorrelatorOptions: every default and every override', () => {
  it('resolves no input to the documented defaults', () => {
    const o = resolveCorrelatorOptions();
    expect({
      ...o,
      kinds: [...o.kinds],
      revocationEventTypes: [...o.revocationEventTypes],
    }).toEqual({
      kinds: [],
      rules: {
        revocation_not_propagated: { enabled: true, severity: 'high', criteria: ['CC6.2'] },
        token_without_expiry: { enabled: true, severity: 'medium', criteria: ['CC6.1'] },
        ttl_exceeds_policy: { enabled: true, severity: 'medium', criteria: ['CC6.1'] },
        unattributed_token: { enabled: true, severity: 'medium', criteria: ['CC6.2', 'CC7.2'] },
        write_after_revocation: { enabled: true, severity: 'high', criteria: ['CC7.2'] },
        refresh_reuse_detected: { enabled: true, severity: 'critical', criteria: ['CC7.2'] },
        tokens_evicted: { enabled: true, severity: 'high', criteria: ['A1.2'] },
        rotation_incomplete: { enabled: true, severity: 'medium', criteria: ['CC6.1'] },
        churn_spike: { enabled: true, severity: 'high', criteria: ['CC7.2'] },
        orphaned_index_entries: { enabled: true, severity: 'medium', criteria: ['CC6.2'] },
      },
      revocationSlaSeconds: 5,
      revocationEventTypes: [
        'token_revoked',
        'session_ended',
        'session_revoked',
        'credential_changed',
        'account_disabled',
      ],
      revocationLookbackSeconds: 300,
      revocationGraceSeconds: 2,
      revocationMemorySeconds: 3600,
      writeAfterRevocationSubjectTypes: new Set(['account_disabled']),
      attributionWindowSeconds: 30,
      ttlToleranceSeconds: 2,
      refreshReuseSlaSeconds: 5,
      rotationSlaSeconds: 5,
      rotationRequireSuccessor: false,
      evictionBurstGapSeconds: 10,
      evictionBurstMinCount: 1,
      churn: {
        warmupBuckets: 60,
        baselineBuckets: 600,
        minRatePerSecond: 50,
        openSigmas: 6,
        resolveSigmas: 3,
        resolveAfterBuckets: 10,
        learnWhileOpen: 0,
        carryBuckets: 5,
      },
      limits: {
        maxTrackedTokens: 200_000,
        maxEndedTokens: 200_000,
        maxPendingObligations: 50_000,
        maxRevocationMemory: 100_000,
        maxRecentIssuances: 100_000,
        maxPendingAttributions: 200_000,
        maxSeenProviderEvents: 100_000,
        maxRotationFamilies: 100_000,
        maxKinds: 1_000,
        maxOpenFindingsPerRule: 10_000,
        maxEvidenceSeqs: 50,
        maxBufferedObservations: 10_000,
        maxSnapshotEntries: 20_000,
      },
      snapshotIntervalSeconds: 60,
    });
  });

  it('takes every scalar, list and section given', () => {
    const input: CorrelatorOptions = {
      revocationSlaSeconds: 11,
      revocationEventTypes: ['session_ended'],
      revocationLookbackSeconds: 12,
      revocationGraceSeconds: 13,
      revocationMemorySeconds: 14,
      writeAfterRevocationSubjectTypes: ['credential_changed'],
      attributionWindowSeconds: 15,
      ttlToleranceSeconds: 16,
      refreshReuseSlaSeconds: 17,
      rotationSlaSeconds: 18,
      rotationRequireSuccessor: true,
      evictionBurstGapSeconds: 19,
      evictionBurstMinCount: 20,
      snapshotIntervalSeconds: 21,
    };
    const o = resolveCorrelatorOptions(input);
    const { revocationEventTypes, writeAfterRevocationSubjectTypes, ...scalars } = input;
    expect(o).toMatchObject(scalars);
    expect([...o.revocationEventTypes]).toEqual(revocationEventTypes);
    expect([...o.writeAfterRevocationSubjectTypes]).toEqual(writeAfterRevocationSubjectTypes);
  });

  it('overrides a rule in part, keeping the rest of its defaults', () => {
    const o = resolveCorrelatorOptions({
      rules: { churn_spike: { enabled: false }, tokens_evicted: { criteria: ['CC7.3'] } },
    });
    expect(o.rules.churn_spike).toEqual({ enabled: false, severity: 'high', criteria: ['CC7.2'] });
    expect(o.rules.tokens_evicted).toEqual({
      enabled: true,
      severity: 'high',
      criteria: ['CC7.3'],
    });
  });

  it('resolves kinds: the first of a name wins, a single tokenId becomes a list', () => {
    const ids = ['jti', 'token'];
    const o = resolveCorrelatorOptions({
      kinds: [
        {
          kind: 'a',
          joins: { tokenId: 'jti', sessionId: 's', subject: 'u', clientId: 'c', familyId: 'f' },
        },
        {
          kind: 'b',
          joins: { tokenId: ids },
          fingerprintIsTokenId: false,
          maxTtlSeconds: 9,
          requireProviderEvent: true,
        },
        { kind: 'c' },
        { kind: 'a', joins: { tokenId: 'other' } },
      ],
    });
    expect([...o.kinds.keys()]).toEqual(['a', 'b', 'c']);
    expect(o.kinds.get('a')).toEqual({
      kind: 'a',
      joins: { tokenId: ['jti'], sessionId: 's', subject: 'u', clientId: 'c', familyId: 'f' },
      fingerprintIsTokenId: true,
      maxTtlSeconds: undefined,
      requireProviderEvent: false,
    });
    expect(o.kinds.get('b')).toMatchObject({
      joins: { tokenId: ['jti', 'token'] },
      fingerprintIsTokenId: false,
      maxTtlSeconds: 9,
      requireProviderEvent: true,
    });
    expect(o.kinds.get('b')?.joins.tokenId).not.toBe(ids); // a copy
    expect(o.kinds.get('c')?.joins).toEqual({
      tokenId: undefined,
      sessionId: undefined,
      subject: undefined,
      clientId: undefined,
      familyId: undefined,
    });
  });

  it('freezes what it returns, section by section', () => {
    const o = resolveCorrelatorOptions({ rules: { churn_spike: { criteria: ['CC7.2'] } } });
    expect(Object.isFrozen(o.rules)).toBe(true);
    expect(Object.isFrozen(o.rules.churn_spike)).toBe(true);
    expect(Object.isFrozen(o.rules.churn_spike.criteria)).toBe(true);
    expect(Object.isFrozen(o.churn)).toBe(true);
    expect(Object.isFrozen(o.limits)).toBe(true);
  });
});
