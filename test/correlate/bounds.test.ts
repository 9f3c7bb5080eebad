import { describe, expect, it } from 'vitest';
import type { KindRule } from '../../src/correlate/options.js';
import { KINDS, World, access, fp, session } from './helpers.js';

const N = 100_000;
const limits = {
  maxTrackedTokens: 1000,
  maxEndedTokens: 1000,
  maxRevocationMemory: 500,
  maxRecentIssuances: 500,
  maxPendingAttributions: 300,
  maxSeenProviderEvents: 2000,
  maxPendingObligations: 100,
};

describe('bounded state', { timeout: 60_000 }, () => {
  it('keeps the live view and its indices at their cap under a flood of unique subjects', () => {
    const w = new World({ limits });
    for (let i = 0; i < N; i++) w.token('written', access(`j${i}`, `user${i}`, `client${i % 7}`));
    const { sizes, evictions } = w.c.stats();
    expect(sizes.liveTokens).toBe(1000);
    expect(sizes.subjectIndex).toBe(1000);
    expect(sizes.subjectClientIndex).toBe(1000);
    expect(sizes.tokenIdIndex).toBe(1000);
    expect(evictions.liveTokens).toBe(N - 1000);
    // LRU: the newest survive.
    w.provider('token_revoked', { tokenIds: [fp(`j${N - 1}`)] });
    expect(w.c.stats().sizes.pendingObligations).toBe(1);
  });

  it('bounds revocation memory, obligations, dedup keys and observations under a flood of revocations', () => {
    const w = new World({ limits: { ...limits, maxBufferedObservations: 50 } });
    for (let i = 0; i < 1000; i++) w.token('written', session(`s${i}`, `user${i}`));
    for (let i = 0; i < N; i++) {
      w.provider('account_disabled', { subject: `user${i}`, sessionId: fp(`s${i}`) });
      w.provider('session_ended', { sessionId: fp(`s${i}`) });
    }
    const { sizes, evictions } = w.c.stats();
    expect(sizes.revokedSubjects).toBe(500);
    expect(sizes.revokedSessions).toBe(500);
    expect(sizes.seenProviderEvents).toBe(2000);
    expect(sizes.pendingObligations).toBeLessThanOrEqual(100);
    expect(evictions.pendingObligations).toBe(2000 - 100);
    expect(sizes.bufferedObservations).toBe(50);
    // An obligation evicted by the cap is reported with unknown latency, never as met.
    const obs = w.c.drainObservations().revocations;
    expect(obs.every((o) => o.latencySeconds === null && o.metSla === null)).toBe(true);
  });

  it('bounds issuance memory and pending attributions', () => {
    const kinds: KindRule[] = KINDS.map((k) => ({ ...k, requireProviderEvent: true }));
    const w = new World({ kinds, limits });
    for (let i = 0; i < N; i++) {
      w.provider('token_issued', { subject: `user${i}`, clientId: 'web', tokenIds: [fp(`x${i}`)] });
      w.token('written', access(`j${i}`, `other${i}`));
    }
    const { sizes, evictions } = w.c.stats();
    expect(sizes.recentIssuances).toBe(500);
    expect(sizes.pendingAttributions).toBe(300);
    expect(evictions.pendingAttributions).toBe(N - 300);
  });

  it('returns to the live count under churn once the ended tokens pass the lookback', () => {
    const w = new World({ revocationLookbackSeconds: 300 });
    const live = 2000;
    for (let i = 0; i < live; i++) w.token('written', access(`j${i}`, `user${i % 50}`));
    // Ten rounds replacing every live token: delete the oldest, write a new one.
    for (let i = 0; i < 10 * live; i++) {
      w.token('deleted', access(`j${i}`, `user${i % 50}`));
      w.token('written', access(`j${live + i}`, `user${i % 50}`));
    }
    let sizes = w.c.stats().sizes;
    expect(sizes.liveTokens).toBe(live);
    expect(sizes.tokenIdIndex).toBe(live);
    expect(sizes.subjectIndex).toBe(50);
    expect(sizes.endedTokens).toBe(10 * live);
    // A late revocation still finds a token that left Redis within the lookback...
    w.provider('token_revoked', { tokenIds: [fp('j5')] });
    expect(w.c.stats().sizes.pendingObligations + w.c.drainObservations().revocations.length).toBe(
      1,
    );
    w.advance(301_000);
    sizes = w.c.stats().sizes;
    // ... and none is kept after it.
    expect(sizes.endedTokens).toBe(0);
    expect(sizes.liveTokens).toBe(live);
    expect(sizes.tokenIdIndex).toBe(live);
  });

  it('resolves findings of tokens dropped from the view instead of leaking them', () => {
    const w = new World({ limits: { maxTrackedTokens: 10 } });
    const out = [];
    for (let i = 0; i < 1000; i++)
      out.push(...w.token('written', session(`s${i}`), { dueAt: null }));
    expect(w.c.openFindings()).toHaveLength(10);
    const resolved = out.filter((f) => f.state === 'resolved');
    expect(resolved).toHaveLength(990);
    expect(resolved[0]?.attributes.resolution).toBe('tracking_lost');
  });

  it('caps open findings per rule and counts the suppressed ones', () => {
    const w = new World({ limits: { maxOpenFindingsPerRule: 5 } });
    for (let i = 0; i < 8; i++) w.token('written', session(`s${i}`), { dueAt: null });
    expect(w.c.openFindings()).toHaveLength(5);
    expect(w.c.stats().suppressedFindings).toBe(3);
  });
});
