import { describe, expect, it } from 'vitest';
import { KINDS, T0, World, access, fp, rules, session } from './helpers.js';

describe('revocation_not_propagated', () => {
  it('opens at the SLA deadline while a revoked token is live and resolves with latency when it leaves', () => {
    const w = new World();
    w.token('written', session('s1')); // seq 1
    expect(w.provider('session_revoked', { sessionId: fp('s1'), subject: 'alice' })).toEqual([]); // seq 2
    expect(w.advance(4000)).toEqual([]);

    const [opened, ...rest] = w.advance(1000);
    expect(rest).toEqual([]);
    expect(opened).toMatchObject({
      id: `revocation_not_propagated:okta:evt-1:${T0 + 5000}`,
      rule: 'revocation_not_propagated',
      state: 'opened',
      severity: 'high',
      criteria: ['CC6.2'],
      kind: 'session',
      fingerprint: fp('s1'),
      subject: 'alice',
      sessionId: fp('s1'),
      evidenceSeqs: [2, 1],
      attributes: { tokensMatched: 1, tokensStillLive: 1, slaSeconds: 5, deadline: T0 + 5000 },
    });
    expect(w.c.openFindings().map((f) => f.id)).toEqual([opened?.id]);

    w.advance(2000);
    const [resolved] = w.token('deleted', session('s1')); // seq 3
    expect(resolved).toMatchObject({
      id: opened?.id,
      state: 'resolved',
      at: T0 + 7000,
      openedAt: T0 + 5000,
      evidenceSeqs: [2, 1, 3],
      attributes: {
        resolution: 'propagated',
        latencySeconds: 7,
        slaMet: false,
        tokensStillLive: 0,
      },
    });
    expect(w.c.openFindings()).toEqual([]);
    expect(w.c.drainObservations().revocations).toEqual([
      {
        provider: 'okta',
        providerEventId: 'evt-1',
        eventType: 'session_revoked',
        latencySeconds: 7,
        metSla: false,
        slaSeconds: 5,
        tokens: 1,
        tokensGoneBeforeEvent: 0,
      },
    ]);
    expect(w.c.drainObservations().revocations).toEqual([]);
  });

  it('reports the latency of a revocation that met its SLA, without a finding', () => {
    const w = new World();
    w.token('written', session('s1'));
    w.token('written', access('j1'));
    w.provider('credential_changed', { subject: 'alice' });
    w.advance(1000);
    w.token('deleted', session('s1'));
    w.advance(1500);
    expect(w.token('deleted', access('j1'))).toEqual([]);
    expect(w.advance(10_000)).toEqual([]);
    expect(w.c.drainObservations().revocations).toMatchObject([
      { eventType: 'credential_changed', latencySeconds: 2.5, metSla: true, tokens: 2 },
    ]);
  });

  it('counts tokens deleted before a late provider event as propagated (out of order)', () => {
    const w = new World();
    w.token('written', session('s1'));
    w.advance(1000);
    w.token('deleted', session('s1')); // Redis delete at T0+1s
    w.advance(29_000);
    // The IdP says it ended the session at T0, but we only learn it 30 s later (polled log).
    const late = w.providerEvent('session_ended', {
      sessionId: fp('s1'),
      occurredAt: T0,
      observedAt: T0 + 30_000,
    });
    expect(w.c.onProviderEvent(late)).toEqual([]);
    expect(w.advance(10_000)).toEqual([]);
    expect(w.c.drainObservations().revocations).toMatchObject([
      { latencySeconds: 1, metSla: true, tokens: 1, tokensGoneBeforeEvent: 1 },
    ]);
  });

  it('clamps to zero when the token left before the provider says it revoked', () => {
    const w = new World();
    w.token('written', session('s1'));
    w.token('deleted', session('s1'));
    w.advance(3000);
    w.provider('session_ended', { sessionId: fp('s1') });
    expect(w.c.drainObservations().revocations).toMatchObject([
      { latencySeconds: 0, metSla: true },
    ]);
  });

  it('ignores tokens that ended longer than the lookback before the event arrived', () => {
    const w = new World({ revocationLookbackSeconds: 60 });
    w.token('written', session('s1'));
    w.token('deleted', session('s1'));
    w.advance(61_000);
    w.provider('session_ended', { sessionId: fp('s1'), occurredAt: T0 });
    expect(w.advance(10_000)).toEqual([]);
    expect(w.c.drainObservations().revocations).toEqual([]);
  });

  it('opens at once for a late revocation whose deadline has passed while the token is live', () => {
    const w = new World();
    w.token('written', session('s1'));
    w.advance(60_000);
    const [f, ...rest] = w.provider('session_revoked', {
      sessionId: fp('s1'),
      occurredAt: T0 + 1000,
    });
    expect(rest).toEqual([]);
    expect(f).toMatchObject({
      state: 'opened',
      at: T0 + 60_000,
      attributes: { deadline: T0 + 6000 },
    });
    expect(w.tick()).toEqual([]);
  });

  it('does nothing for a revocation that matches no token', () => {
    const w = new World();
    w.token('written', session('other'));
    expect(w.provider('session_revoked', { sessionId: fp('s1') })).toEqual([]);
    expect(w.advance(10_000)).toEqual([]);
    expect(w.c.drainObservations().revocations).toEqual([]);
    expect(w.c.stats().sizes.pendingObligations).toBe(0);
  });

  it('drops a duplicate delivery of the same provider event', () => {
    const w = new World();
    w.token('written', session('s1'));
    const ev = w.providerEvent('session_revoked', { sessionId: fp('s1') });
    w.c.onProviderEvent(ev, 10);
    expect(w.c.onProviderEvent({ ...ev }, 11)).toEqual([]);
    expect(rules(w.advance(5000))).toEqual(['revocation_not_propagated:opened']);
    w.token('deleted', session('s1'));
    expect(w.c.drainObservations().revocations).toHaveLength(1);
    expect(w.c.stats().duplicateProviderEvents).toBe(1);
  });

  it('ignores failed revocations', () => {
    const w = new World();
    w.token('written', session('s1'));
    w.provider('session_revoked', { sessionId: fp('s1'), outcome: 'failure' });
    expect(w.advance(10_000)).toEqual([]);
  });

  it('treats an unknown outcome as a revocation', () => {
    const w = new World();
    w.token('written', session('s1'));
    w.provider('session_revoked', { sessionId: fp('s1'), outcome: 'unknown' });
    expect(rules(w.advance(5000))).toEqual(['revocation_not_propagated:opened']);
  });

  it('scopes token_revoked to its token ids, not the rest of the session or subject', () => {
    const w = new World();
    w.token('written', access('j1'));
    w.token('written', access('j2'));
    w.token('written', session('s1'));
    w.provider('token_revoked', { tokenIds: [fp('j1')], subject: 'alice', sessionId: fp('s1') });
    w.token('deleted', access('j1'));
    expect(w.advance(10_000)).toEqual([]);
    expect(w.c.drainObservations().revocations).toMatchObject([{ tokens: 1, metSla: true }]);
  });

  it('scopes token_revoked without ids to the (subject, client) grant', () => {
    const w = new World();
    w.token('written', access('j1', 'alice', 'web'));
    w.token('written', access('j2', 'alice', 'cli'));
    w.provider('token_revoked', { subject: 'alice', clientId: 'web' });
    const [f] = w.advance(5000);
    expect(f).toMatchObject({ fingerprint: fp('j1'), attributes: { tokensMatched: 1 } });
  });

  it('scopes account_disabled to every client of the subject, but not to tokens issued afterwards', () => {
    const w = new World({ writeAfterRevocationSubjectTypes: [] });
    w.token('written', access('j1', 'alice', 'web'));
    w.token('written', access('j2', 'alice', 'cli'));
    w.token('written', access('j3', 'bob', 'web'));
    w.provider('account_disabled', { subject: 'alice' });
    w.advance(3000);
    w.token('written', access('j4', 'alice', 'web')); // after the revocation: not this revocation's
    const [f] = w.advance(2000);
    expect(f).toMatchObject({
      kind: 'access_token',
      attributes: { tokensMatched: 2, tokensStillLive: 2 },
    });
    w.token('deleted', access('j1'));
    expect(w.c.openFindings()[0]?.attributes.tokensStillLive).toBe(1);
    expect(rules(w.token('expired', access('j2')))).toEqual(['revocation_not_propagated:resolved']);
  });

  it('follows a revoked token through RENAME onto another tracked key', () => {
    const w = new World({
      kinds: [...KINDS, { kind: 'session_old', joins: { sessionId: 'sid' } }],
    });
    w.token('written', session('s1'));
    w.provider('session_revoked', { sessionId: fp('s1') });
    // RENAME session:{sid} -> session:old:{sid}: the token is still in Redis under another key.
    const moved = { kind: 'session_old', fingerprint: fp('s1'), keyAttrs: { sid: fp('s1') } };
    w.token('renamed', moved, { renamedFrom: { kind: 'session', fingerprint: fp('s1') } });
    expect(w.c.stats().sizes.liveTokens).toBe(1);
    expect(rules(w.advance(5000))).toEqual(['revocation_not_propagated:opened']);
    expect(w.token('deleted', session('s1'))).toEqual([]); // the old name is already gone
    expect(rules(w.token('deleted', moved))).toEqual(['revocation_not_propagated:resolved']);
  });

  it('counts reconciliation (vanished) as leaving and appeared tokens as pre-existing', () => {
    const w = new World();
    w.token('appeared', session('s1'));
    w.advance(10_000);
    w.provider('session_revoked', { sessionId: fp('s1') });
    expect(rules(w.advance(5000))).toEqual(['revocation_not_propagated:opened']);
    expect(rules(w.token('vanished', session('s1')))).toEqual([
      'revocation_not_propagated:resolved',
    ]);
  });
});
