import { describe, expect, it } from 'vitest';
import type { Finding } from '../../src/domain/finding.js';
import { T0, World, access, fp, refresh, rules, session } from './helpers.js';

/** A token without TTL: opens token_without_expiry, a per-token finding. */
const persisted = (w: World, ref = access('j1')): Finding => {
  w.token('written', ref);
  const [f] = w.token('persisted', ref);
  if (!f) throw new Error('token_without_expiry did not open');
  return f;
};

describe('Correlator: per-token findings and the token leaving', () => {
  it('resolves a per-token finding when its token leaves, citing how and the delete', () => {
    const w = new World();
    const opened = persisted(w);
    const [resolved, ...more] = w.token('deleted', access('j1'));
    expect(more).toEqual([]);
    expect(resolved).toMatchObject({
      id: opened.id,
      state: 'resolved',
      summary: `${opened.summary} Resolved: the token left Redis (deleted).`,
      attributes: { resolution: 'left_redis', endType: 'deleted' },
      evidenceSeqs: [2, 3],
    });
  });

  it('resolves it as tracking_lost when the live view drops the token at its cap', () => {
    const w = new World({ limits: { maxTrackedTokens: 1 } });
    const opened = persisted(w);
    const [lost] = w.token('written', access('j2'));
    expect(lost).toMatchObject({
      id: opened.id,
      state: 'resolved',
      summary: `${opened.summary} Resolved: tokenwatch stopped tracking the token (live-view cap reached).`,
      attributes: { resolution: 'tracking_lost', endType: null },
    });
    // Dropped, not deleted: a later delete of it finds nothing to resolve.
    expect(w.token('deleted', access('j1'))).toEqual([]);
  });

  it('a finding dropped from the book resolves nothing when its token leaves', () => {
    const w = new World();
    const opened = persisted(w);
    expect(w.c.findings.forget(opened.id)).toBe(true);
    expect(w.c.findings.forget(opened.id)).toBe(false);
    expect(w.c.openFindings()).toEqual([]);
    expect(w.token('deleted', access('j1'))).toEqual([]);
  });
});

describe('Correlator.findings.adopt (replay)', () => {
  const recorded = (): Finding => {
    const w = new World();
    return persisted(w);
  };

  it('ties an adopted per-token finding to its live token, whose leaving resolves it', () => {
    const f = recorded();
    const w = new World();
    w.token('written', access('j1'));
    w.c.findings.adopt(f);
    expect(w.c.openFindings()).toEqual([f]);
    expect(w.token('deleted', access('j1'))).toMatchObject([{ id: f.id, state: 'resolved' }]);
  });

  it('ties write_after_revocation findings too', () => {
    const w = new World();
    w.token('written', access('j1'));
    w.c.findings.adopt({ ...recorded(), id: 'w1', rule: 'write_after_revocation' });
    expect(w.token('deleted', access('j1'))).toMatchObject([{ id: 'w1', state: 'resolved' }]);
  });

  it('does not tie a finding of another rule, another kind, another token or without fingerprint', () => {
    const base = recorded();
    const variants: Finding[] = [
      { ...base, id: 'a', rule: 'churn_spike' },
      { ...base, id: 'b', kind: 'session' },
      { ...base, id: 'c', fingerprint: fp('other') },
      { ...base, id: 'd', fingerprint: undefined },
    ];
    for (const f of variants) {
      const w = new World();
      w.token('written', access('j1'));
      w.c.findings.adopt(f);
      expect(w.token('deleted', access('j1')), f.id).toEqual([]);
      expect(w.c.openFindings().map((o) => o.id)).toEqual([f.id]);
    }
  });

  it('does not replace the finding a token already has open', () => {
    const w = new World();
    const own = persisted(w);
    w.c.findings.adopt({ ...own, id: 'older' });
    expect(w.token('deleted', access('j1'))).toMatchObject([{ id: own.id, state: 'resolved' }]);
    expect(w.c.openFindings().map((o) => o.id)).toEqual(['older']);
  });

  it('expect() makes a re-derived finding take its recorded id', () => {
    const w = new World();
    w.c.findings.expect([{ ...recorded(), id: `token_without_expiry:${fp('j1')}:${T0 - 5000}` }]);
    const f = persisted(w);
    expect(f.id).toBe(`token_without_expiry:${fp('j1')}:${T0 - 5000}`);
  });
});

describe('Correlator: provider events', () => {
  it('a revocation that names no key revokes nothing and remembers nothing', () => {
    const w = new World();
    w.token('written', session('s1'));
    expect(w.provider('session_revoked', {})).toEqual([]);
    expect(w.provider('token_revoked', { subject: 'alice' })).toEqual([]);
    expect(w.advance(10_000)).toEqual([]);
    expect(w.c.stats().sizes).toMatchObject({
      pendingObligations: 0,
      revokedTokenIds: 0,
      revokedSessions: 0,
      revokedSubjects: 0,
    });
  });

  it('a token written at the very end of the grace belongs to the revocation, one after not', () => {
    for (const [delay, matched] of [
      [2000, 1],
      [2001, 0],
    ] as const) {
      const w = new World();
      w.clock.t = T0 + delay;
      w.token('written', access('j1'));
      w.clock.t = T0 + 3000;
      w.provider('token_revoked', { tokenIds: [fp('j1')], occurredAt: T0 });
      w.token('deleted', access('j1'));
      expect(w.c.drainObservations().revocations.length, `+${delay} ms`).toBe(matched);
    }
  });

  it('a token first seen after the grace and already gone is not the revocation’s either', () => {
    const w = new World();
    w.clock.t = T0 + 5000;
    w.token('written', access('j1'));
    w.token('deleted', access('j1'));
    w.clock.t = T0 + 6000;
    w.provider('token_revoked', { tokenIds: [fp('j1')], occurredAt: T0 });
    expect(w.c.drainObservations().revocations).toEqual([]);
  });

  it('counts a gone token at the lookback horizon, not one a millisecond older', () => {
    for (const [age, matched] of [
      [300_000, 1],
      [300_001, 0],
    ] as const) {
      const w = new World();
      w.token('written', access('j1'));
      w.token('deleted', access('j1'));
      w.clock.t = T0 + age;
      w.provider('token_revoked', { tokenIds: [fp('j1')], occurredAt: T0 - 1000 });
      expect(w.c.drainObservations().revocations.length, `${age} ms`).toBe(matched);
    }
  });

  it('a token both gone and rewritten counts once, as live', () => {
    const w = new World({ revocationSlaSeconds: 2 });
    w.token('written', access('j1'));
    w.token('deleted', access('j1'));
    w.token('written', access('j1'));
    w.provider('token_revoked', { tokenIds: [fp('j1')] });
    const [opened] = w.advance(2000);
    expect(opened).toMatchObject({
      rule: 'revocation_not_propagated',
      attributes: { tokensMatched: 1, tokensStillLive: 1, tokensGoneBeforeEvent: 0 },
    });
  });

  it('a late token matching nothing the revocation named does not join it', () => {
    const w = new World({ revocationSlaSeconds: 2 });
    w.provider('token_revoked', { tokenIds: [fp('j1')] });
    w.clock.t += 100;
    w.token('written', access('j2'));
    expect(w.advance(5000)).toEqual([]);
    expect(w.c.stats().sizes.pendingObligations).toBe(0);
  });

  it('a late token joins a revocation still waiting for another token', () => {
    const w = new World({ revocationSlaSeconds: 2 });
    w.token('written', access('j1'));
    w.provider('token_revoked', { tokenIds: [fp('j1'), fp('j2')] });
    w.clock.t += 100;
    w.token('written', access('j2'));
    const [opened] = w.advance(2000);
    expect(opened).toMatchObject({ attributes: { tokensMatched: 2, tokensStillLive: 2 } });
  });

  it('a write seen inside the grace but applied up to a grace later still joins', () => {
    const w = new World();
    w.provider('token_revoked', { tokenIds: [fp('j1')] });
    w.advance(3900); // the window (cutoff +2 s) is kept for another 2 s of queueing
    w.token('written', access('j1'), { observedAt: T0 + 1900 });
    w.token('deleted', access('j1'));
    expect(w.c.drainObservations().revocations).toHaveLength(1);
  });

  it('a revocation that matched nothing is measured once, by its first late token', () => {
    const w = new World();
    w.provider('token_revoked', { tokenIds: [fp('j1'), fp('j2')] });
    w.clock.t += 100;
    w.token('written', access('j1'));
    w.token('deleted', access('j1'));
    expect(w.c.drainObservations().revocations).toHaveLength(1);
    w.clock.t += 100;
    w.token('written', access('j2'));
    w.token('deleted', access('j2'));
    expect(w.c.drainObservations().revocations).toEqual([]);
  });

  it('a failed token_refreshed neither links a family nor starts a rotation', () => {
    const w = new World({ rotationSlaSeconds: 2 });
    w.token('written', refresh('r1', 's1'));
    w.provider('token_refreshed', {
      outcome: 'failure',
      rotation: { familyId: 'f1', previous: [fp('r1')], next: [fp('r2')] },
    });
    expect(w.advance(5000)).toEqual([]);
    expect(w.c.stats().sizes).toMatchObject({ rotationFamilies: 0, pendingObligations: 0 });
  });

  it('only token_refreshed rotates: a reuse report carrying a rotation does not', () => {
    const w = new World({ rotationSlaSeconds: 2, refreshReuseSlaSeconds: 60 });
    w.token('written', refresh('r1', 's1'));
    const out = w.provider('refresh_reuse_detected', {
      rotation: { familyId: 'f1', previous: [fp('r1')], next: [fp('r2')] },
    });
    expect(rules([...out, ...w.advance(5000)])).toEqual(['refresh_reuse_detected:opened']);
    expect(w.c.stats().sizes.rotationFamilies).toBe(0);
  });

  it('a reuse report reaches tokens named only by its rotation', () => {
    for (const part of ['previous', 'next'] as const) {
      const w = new World();
      w.token('written', refresh('r1', 's1'));
      const [opened] = w.provider('refresh_reuse_detected', {
        rotation: { previous: [], next: [], [part]: [fp('r1')] },
      });
      expect(opened, part).toMatchObject({ attributes: { tokensStillLive: 1 } });
    }
  });
});

describe('Correlator: rotations', () => {
  const rotate = (w: World, next: string[] = [fp('r2')], previous = [fp('r1')]) =>
    w.provider('token_refreshed', { rotation: { previous, next } });

  it('a refresh without predecessors starts nothing', () => {
    const w = new World({ rotationSlaSeconds: 1, rotationRequireSuccessor: true });
    w.token('written', refresh('r1', 's1'));
    rotate(w, [fp('r2')], []);
    w.provider('token_refreshed', {});
    expect(w.advance(5000)).toEqual([]);
    expect(w.c.stats().sizes.pendingObligations).toBe(0);
  });

  it('a key already carrying the successor id was updated in place, not left behind', () => {
    const w = new World({ rotationSlaSeconds: 1 });
    // One key holding both ids (e.g. a hash updated by the rotation).
    w.token('written', {
      ...refresh('r1', 's1'),
      keyAttrs: { ...refresh('r1', 's1').keyAttrs, rt: `${fp('r1')}` },
    });
    const both = {
      kind: 'access_token',
      fingerprint: fp('both'),
      keyAttrs: { jti: fp('r1'), sub: 'alice', client: 'web' },
    };
    w.token('written', both);
    rotate(w, [fp('r1')], [fp('r1')]);
    expect(w.advance(3000)).toEqual([]);
  });

  it('a successor already live or recently gone counts as seen', () => {
    for (const gone of [false, true]) {
      const w = new World({ rotationSlaSeconds: 1, rotationRequireSuccessor: true });
      w.token('written', refresh('r1', 's1'));
      w.token('written', refresh('r2', 's2'));
      if (gone) w.token('deleted', refresh('r2', 's2'));
      rotate(w);
      w.token('deleted', refresh('r1', 's1'));
      expect(w.advance(3000), `gone: ${gone}`).toEqual([]);
      expect(w.c.stats().sizes.pendingObligations).toBe(0);
    }
  });

  it('a rotation naming no successor still waits for its live predecessor', () => {
    const w = new World({ rotationSlaSeconds: 1 });
    w.token('written', refresh('r1', 's1'));
    rotate(w, []);
    expect(w.advance(1000)).toMatchObject([
      { rule: 'rotation_incomplete', attributes: { tokensStillLive: 1 } },
    ]);
  });

  it('expects a successor only when one is named', () => {
    const w = new World({ rotationSlaSeconds: 1, rotationRequireSuccessor: true });
    w.token('written', refresh('r1', 's1'));
    rotate(w, []);
    w.token('deleted', refresh('r1', 's1'));
    expect(w.advance(3000)).toEqual([]);
    expect(w.c.stats().sizes.pendingObligations).toBe(0);
  });

  it('expects the successor of a predecessor that already left', () => {
    const w = new World({ rotationSlaSeconds: 1, rotationRequireSuccessor: true });
    w.token('written', refresh('r1', 's1'));
    w.token('deleted', refresh('r1', 's1'));
    rotate(w);
    expect(w.advance(1000)).toMatchObject([
      { rule: 'rotation_incomplete', attributes: { successorWritten: false } },
    ]);
  });
});

describe('Correlator: bookkeeping', () => {
  it('forgets gone tokens after the lookback', () => {
    const w = new World({ revocationLookbackSeconds: 10 });
    w.token('written', access('j1'));
    w.token('deleted', access('j1'));
    w.advance(10_000);
    expect(w.c.stats().sizes.endedTokens).toBe(1);
    w.advance(1000);
    expect(w.c.stats().sizes.endedTokens).toBe(0);
  });

  it('buffers at most maxBufferedObservations, dropping the oldest and counting them', () => {
    const w = new World({ limits: { maxBufferedObservations: 2 } });
    for (const j of ['j1', 'j2', 'j3']) {
      w.token('written', access(j));
      w.provider('token_revoked', { tokenIds: [fp(j)] });
      w.token('deleted', access(j));
    }
    expect(w.c.stats().sizes.bufferedObservations).toBe(2);
    expect(w.c.stats().evictions.observations).toBe(1);
    expect(w.c.drainObservations().revocations.map((o) => o.providerEventId)).toEqual([
      'evt-2',
      'evt-3',
    ]);
    expect(w.c.drainObservations().revocations).toEqual([]);
    // Exactly at the cap nothing is dropped.
    const v = new World({ limits: { maxBufferedObservations: 1 } });
    v.token('written', access('j1'));
    v.provider('token_revoked', { tokenIds: [fp('j1')] });
    v.token('deleted', access('j1'));
    expect(v.c.stats().evictions.observations).toBe(0);
  });

  it('reports every size and eviction counter, zero when fresh', () => {
    const w = new World();
    expect(w.c.stats()).toEqual({
      sizes: {
        liveTokens: 0,
        endedTokens: 0,
        tokenIdIndex: 0,
        sessionIndex: 0,
        subjectClientIndex: 0,
        subjectIndex: 0,
        familyIndex: 0,
        pendingObligations: 0,
        obligationTokens: 0,
        revokedTokenIds: 0,
        revokedSessions: 0,
        revokedSubjects: 0,
        recentIssuances: 0,
        pendingAttributions: 0,
        seenProviderEvents: 0,
        rotationFamilies: 0,
        rotationFamilyTokenIds: 0,
        churnKinds: 0,
        evictionKinds: 0,
        openFindings: 0,
        bufferedObservations: 0,
      },
      evictions: {
        liveTokens: 0,
        endedTokens: 0,
        pendingObligations: 0,
        revocationMemory: 0,
        recentIssuances: 0,
        pendingAttributions: 0,
        seenProviderEvents: 0,
        rotationFamilies: 0,
        churnKinds: 0,
        evictionKinds: 0,
        observations: 0,
      },
      duplicateProviderEvents: 0,
      suppressedFindings: 0,
    });
  });

  it('counts each size and eviction where it happens', () => {
    const w = new World({
      limits: { maxTrackedTokens: 1, maxEndedTokens: 1, maxSeenProviderEvents: 1 },
    });
    w.token('written', refresh('r1', 's1'));
    w.token('written', refresh('r2', 's2'));
    w.token('deleted', refresh('r2', 's2'));
    w.token('written', refresh('r3', 's3'));
    w.token('deleted', refresh('r3', 's3'));
    w.provider('token_issued', { subject: 'alice', clientId: 'web', tokenIds: [fp('x')] });
    w.provider('token_refreshed', {
      rotation: { familyId: 'f1', previous: [fp('r1')], next: [fp('r2')] },
    });
    w.token('evicted', session('s9'));
    const s = w.c.stats();
    expect(s.sizes).toMatchObject({
      liveTokens: 0,
      endedTokens: 1,
      recentIssuances: 2,
      seenProviderEvents: 1,
      rotationFamilies: 1,
      rotationFamilyTokenIds: 2,
      churnKinds: 2,
      evictionKinds: 1,
      openFindings: 1,
    });
    expect(s.evictions).toMatchObject({ liveTokens: 1, endedTokens: 2, seenProviderEvents: 1 });
  });

  it('baselineDone ends a restored token as vanished without counting it as churn', () => {
    const w = new World();
    w.token('appeared', access('j1'), { dueAt: undefined, ttlMs: undefined });
    w.token('persisted', access('j1'));
    expect(w.c.stats().sizes.churnKinds).toBe(0);
    const r = w.restart(5000);
    const out = r.c.baselineDone('redis-a:6379');
    expect(out).toMatchObject([
      { rule: 'token_without_expiry', state: 'resolved', attributes: { endType: 'vanished' } },
    ]);
    expect(r.c.stats().sizes.churnKinds).toBe(0);
  });

  it('resume() skips the downtime: the first open second is the current one', () => {
    const w = new World();
    w.token('written', session('s1'));
    w.advance(3000);
    const snap = JSON.parse(JSON.stringify(w.c.snapshot())) as unknown;
    const r = new World({}, { snapshot: snap, at: T0 + 100_000, seq: w.seq });
    expect(r.c.snapshot().churn[0]?.next).toBe((T0 + 3000) / 1000);
    r.c.resume();
    expect(r.c.snapshot().churn[0]?.next).toBe((T0 + 100_000) / 1000);
  });
});
