import { describe, expect, it } from 'vitest';
import { T0, World, access, fp, refresh, session } from './helpers.js';

/**
 * What the obligations of PropagationTracker (revocations, reuse containments, rotations) record:
 * the summaries and attributes an auditor reads, and how they end when tokens are lost.
 */
describe('obligations: what the findings say', () => {
  it('revocation_not_propagated: counts of one token, and of several, with and without subject', () => {
    const one = new World({ revocationSlaSeconds: 2 });
    one.token('written', session('s1'));
    one.provider('session_revoked', { sessionId: fp('s1'), subject: 'alice' });
    const [opened] = one.advance(2000);
    expect(opened?.summary).toBe(
      '1 token of 1 still in Redis 2 s after okta session_revoked for subject alice.',
    );
    expect(opened?.attributes).toEqual({
      provider: 'okta',
      providerEventId: 'evt-1',
      eventType: 'session_revoked',
      revokedAt: T0,
      deadline: T0 + 2000,
      slaSeconds: 2,
      tokensMatched: 1,
      tokensStillLive: 1,
      tokensGoneBeforeEvent: 0,
      kinds: 'session',
    });
    one.advance(500);
    const [resolved] = one.token('deleted', session('s1'));
    expect(resolved?.summary).toBe(
      'All 1 token revoked by okta session_revoked left Redis after 2.5 s (SLA 2 s).',
    );

    const many = new World({ revocationSlaSeconds: 2 });
    many.token('written', session('s1'));
    // Refresh tokens of one session share a key name: the second one lives in another db.
    many.token('written', refresh('r1', 's1'));
    many.token('written', refresh('r2', 's1'), { db: 1 });
    many.token('deleted', refresh('r2', 's1'), { db: 1 });
    many.provider('session_revoked', { sessionId: fp('s1') });
    const [breach] = many.advance(2000);
    expect(breach?.kind).toBeUndefined();
    expect(breach?.fingerprint).toBeUndefined();
    expect(breach).toMatchObject({
      summary: '2 tokens of 3 still in Redis 2 s after okta session_revoked.',
      attributes: { kinds: 'refresh_token,session', tokensGoneBeforeEvent: 1, tokensMatched: 3 },
    });
  });

  it('revocation_not_propagated: a token that left after the deadline before any check saw it pass is a breach all the same', () => {
    const w = new World({ revocationSlaSeconds: 2 });
    w.token('written', session('s1'));
    w.provider('session_revoked', { sessionId: fp('s1') });
    w.clock.t += 2500; // no tick between the deadline (2 s) and the delete (2.5 s)
    const found = w.token('deleted', session('s1'));
    expect(found.map((f) => [f.rule, f.state])).toEqual([
      ['revocation_not_propagated', 'opened'],
      ['revocation_not_propagated', 'resolved'],
    ]);
    // Opened as of the deadline: the same finding whenever the once-a-second check runs.
    expect(found[0]).toMatchObject({
      openedAt: T0 + 2000,
      summary:
        'Revoked tokens were still in Redis 2 s after okta session_revoked; the last left Redis 0.5 s after the deadline.',
    });
    expect(found[1]?.attributes).toMatchObject({ slaMet: false, latencySeconds: 2.5 });

    // Gone within the SLA: nothing to find, however late the check.
    const onTime = new World({ revocationSlaSeconds: 2 });
    onTime.token('written', session('s1'));
    onTime.provider('session_revoked', { sessionId: fp('s1') });
    onTime.clock.t += 1500;
    expect(onTime.token('deleted', session('s1'))).toEqual([]);
    expect(onTime.advance(5000)).toEqual([]);
  });

  it('names the kind of several tokens of one kind, but no single fingerprint', () => {
    const w = new World({ revocationSlaSeconds: 2 });
    w.token('written', refresh('r1', 's1'));
    w.token('written', refresh('r1', 's1'), { db: 1 });
    w.provider('session_revoked', { sessionId: fp('s1') });
    const [opened] = w.advance(2000);
    expect(opened?.kind).toBe('refresh_token');
    expect(opened?.fingerprint).toBeUndefined();
    expect(opened?.attributes.kinds).toBe('refresh_token');
  });

  it('refresh_reuse_detected: says how many family tokens must leave, and how it ended', () => {
    const none = new World();
    const [empty] = none.provider('refresh_reuse_detected', { tokenIds: [fp('r9')] });
    expect(empty?.summary).toBe(
      'okta detected refresh token reuse; 0 tokens of the family are in Redis and must leave within 5 s.',
    );
    expect(empty?.attributes).toMatchObject({ kinds: null, vendorType: 'refresh_reuse_detected' });
    const [resolvedEmpty] = none.advance(5000);
    expect(resolvedEmpty).toMatchObject({
      summary:
        'Refresh token reuse reported by okta: no token of the family was in Redis during the 5 s SLA.',
      attributes: { resolution: 'no_live_tokens', latencySeconds: null, slaMet: null },
    });

    const one = new World();
    one.token('written', refresh('r1', 's1'));
    const [opened] = one.provider('refresh_reuse_detected', {
      tokenIds: [fp('r1')],
      subject: 'alice',
    });
    expect(opened?.summary).toBe(
      'okta detected refresh token reuse for subject alice; 1 token of the family is in Redis and must leave within 5 s.',
    );
    one.advance(6000);
    expect(one.c.openFindings()[0]?.attributes).toMatchObject({ slaMet: false });
    const [resolved] = one.token('deleted', refresh('r1', 's1'));
    expect(resolved?.summary).toBe(
      'No token of the reused refresh-token family remains in Redis (last left after 6 s, SLA 5 s).',
    );

    const two = new World();
    two.token('written', refresh('r1', 's1'));
    two.token('written', refresh('r2', 's2'));
    const [both] = two.provider('refresh_reuse_detected', { tokenIds: [fp('r1'), fp('r2')] });
    expect(both?.summary).toContain('; 2 tokens of the family are in Redis');
  });

  it('rotation_incomplete: a dangling predecessor, or a missing successor, and completion', () => {
    const rotation = { previous: [fp('r1')], next: [fp('r2')] };
    const dangling = new World({ rotationSlaSeconds: 2 });
    dangling.token('written', refresh('r1', 's1'));
    dangling.provider('token_refreshed', { rotation });
    const [opened] = dangling.advance(2000);
    expect(opened?.summary).toBe(
      '1 rotated-out token still in Redis 2 s after okta token_refreshed (dangling session).',
    );
    const [done] = dangling.token('deleted', refresh('r1', 's1'));
    expect(done?.summary).toBe('Rotation completed: no rotated-out token remains in Redis.');
    expect(dangling.c.drainObservations().revocations).toEqual([]); // rotations are no revocations

    const missing = new World({ rotationSlaSeconds: 2, rotationRequireSuccessor: true });
    missing.token('written', refresh('r1', 's1'));
    missing.provider('token_refreshed', { rotation });
    missing.token('deleted', refresh('r1', 's1'));
    const [noSuccessor] = missing.advance(2000);
    expect(noSuccessor?.summary).toBe(
      'The successor of a rotated token was not written to Redis within 2 s of okta token_refreshed.',
    );
    const [completed] = missing.token('written', refresh('r2', 's1'));
    expect(completed).toMatchObject({
      summary:
        'Rotation completed: no rotated-out token remains in Redis and the successor was written.',
      evidenceSeqs: [2, 1, 3, 4],
      attributes: { successorWritten: true },
    });
    // The successor seen once: a second write changes nothing.
    expect(missing.token('written', refresh('r2', 's1'))).toEqual([]);
  });

  it('a successor written before the deadline, while the predecessor is still live, is noted', () => {
    const w = new World({ rotationSlaSeconds: 2, rotationRequireSuccessor: true });
    w.token('written', refresh('r1', 's1'));
    w.provider('token_refreshed', { rotation: { previous: [fp('r1')], next: [fp('r2')] } });
    expect(w.token('written', refresh('r2', 's1'))).toEqual([]);
    const [opened] = w.advance(2000);
    expect(opened).toMatchObject({ attributes: { successorWritten: true, tokensStillLive: 1 } });
  });
});

describe('obligations: tokens whose fate is unknown', () => {
  it('a revoked token dropped from the live view ends the obligation as tracking_lost', () => {
    const w = new World({ revocationSlaSeconds: 2, limits: { maxTrackedTokens: 1 } });
    w.token('written', session('s1'));
    w.provider('session_revoked', { sessionId: fp('s1') });
    const [opened] = w.advance(2000);
    const [resolved] = w.token('written', session('s2')); // pushes s1 out of the view
    expect(resolved).toMatchObject({
      id: opened?.id,
      state: 'resolved',
      summary:
        'All 1 token revoked by okta session_revoked left Redis after ? s (SLA 2 s) (some tokens left unobserved: dropped from the bounded view or gone while tokenwatch was down; latency unknown).',
      attributes: { resolution: 'tracking_lost', latencySeconds: null, slaMet: null },
    });
    expect(w.c.drainObservations().revocations).toMatchObject([
      { latencySeconds: null, metSla: null, tokens: 1 },
    ]);
  });

  it('an obligation pushed out by the cap on obligations completes as tracking_lost', () => {
    const w = new World({ limits: { maxPendingObligations: 1 } });
    w.token('written', session('s1'));
    w.token('written', refresh('r1', 's1'));
    w.token('written', session('s2'));
    w.provider('session_revoked', { sessionId: fp('s1') });
    w.clock.t += 1000;
    w.token('deleted', refresh('r1', 's1')); // one of two left: its latency alone is no answer
    expect(w.provider('session_revoked', { sessionId: fp('s2') })).toEqual([]);
    expect(w.c.stats().evictions.pendingObligations).toBe(1);
    expect(w.c.drainObservations().revocations).toMatchObject([
      { providerEventId: 'evt-1', latencySeconds: null, metSla: null },
    ]);
    // The evicted revocation no longer follows s1.
    w.token('deleted', session('s1'));
    expect(w.c.drainObservations().revocations).toEqual([]);
  });

  it('an evicted obligation leaves none of its tokens in the token index', () => {
    const w = new World({ limits: { maxPendingObligations: 1 } });
    w.token('written', session('s1'));
    w.token('written', refresh('r1', 's1'));
    w.token('written', session('s2'));
    w.provider('session_revoked', { sessionId: fp('s1') });
    expect(w.c.stats().sizes.obligationTokens).toBe(2); // s1 and r1
    w.provider('session_revoked', { sessionId: fp('s2') }); // evicts the first
    expect(w.c.stats().evictions.pendingObligations).toBe(1);
    expect(w.c.stats().sizes.obligationTokens).toBe(1); // s2 only, not s1 and r1 as well
    w.token('deleted', session('s2'));
    expect(w.c.stats().sizes.obligationTokens).toBe(0);
  });

  it('a pending token renamed to another key is followed there', () => {
    const w = new World({ revocationSlaSeconds: 2 });
    w.token('written', session('s1'));
    w.provider('session_revoked', { sessionId: fp('s1') });
    w.token('renamed', session('s9'), { renamedFrom: { kind: 'session', fingerprint: fp('s1') } });
    // The old key is gone, but the token lives on: still pending (shown as it was revoked).
    const [opened] = w.advance(2000);
    expect(opened).toMatchObject({ fingerprint: fp('s1'), attributes: { tokensStillLive: 1 } });
    const [resolved] = w.token('deleted', session('s9'));
    expect(resolved).toMatchObject({ id: opened?.id, state: 'resolved' });
  });

  it('meets the SLA when the last token leaves exactly at the deadline', () => {
    const w = new World({ revocationSlaSeconds: 2 });
    w.token('written', access('j1'));
    w.provider('token_revoked', { tokenIds: [fp('j1')] });
    w.clock.t = T0 + 2000;
    w.token('deleted', access('j1'));
    expect(w.c.drainObservations().revocations).toMatchObject([
      { latencySeconds: 2, metSla: true },
    ]);
  });

  it('takes the latest of several departures as the latency, even when reported out of order', () => {
    const w = new World({ revocationSlaSeconds: 5 });
    w.token('written', access('j1'));
    w.token('written', access('j2'));
    w.provider('token_revoked', { tokenIds: [fp('j1'), fp('j2')] });
    w.clock.t = T0 + 3000;
    w.token('deleted', access('j1'));
    w.clock.t = T0 + 4000;
    w.token('deleted', access('j2'), { observedAt: T0 + 1000 });
    expect(w.c.drainObservations().revocations).toMatchObject([{ latencySeconds: 3, tokens: 2 }]);
  });

  it('with its rule off, each obligation still completes and reports latency, without findings', () => {
    const w = new World({
      revocationSlaSeconds: 1,
      rotationSlaSeconds: 1,
      rules: {
        revocation_not_propagated: { enabled: false },
        refresh_reuse_detected: { enabled: false },
        rotation_incomplete: { enabled: false },
      },
    });
    w.token('written', session('s1'));
    w.token('written', refresh('r1', 's2'));
    w.token('written', refresh('r2', 's3'));
    const out = [
      ...w.provider('session_revoked', { sessionId: fp('s1') }),
      ...w.provider('refresh_reuse_detected', { tokenIds: [fp('r1')] }),
      ...w.provider('token_refreshed', { rotation: { previous: [fp('r2')], next: [] } }),
      ...w.advance(6000),
      ...w.token('deleted', session('s1')),
      ...w.token('deleted', refresh('r1', 's2')),
      ...w.token('deleted', refresh('r2', 's3')),
    ];
    expect(out).toEqual([]);
    expect(w.c.drainObservations().revocations.map((o) => o.eventType)).toEqual([
      'session_revoked',
      'refresh_reuse_detected',
    ]);
  });
});

describe('obligations: tokens joining late', () => {
  it('a late token of another kind joins a revocation still waiting: counted, cited, followed', () => {
    const w = new World({ revocationSlaSeconds: 2 });
    w.token('written', access('j1')); // seq 1
    w.provider('token_revoked', { tokenIds: [fp('j1'), fp('j2')] }); // seq 2
    w.clock.t += 100;
    w.token('written', refresh('j2', 's9')); // seq 3
    const [opened] = w.advance(2000);
    expect(opened).toMatchObject({
      evidenceSeqs: [2, 1, 3],
      attributes: { tokensMatched: 2, tokensStillLive: 2, kinds: 'access_token,refresh_token' },
    });
    w.token('deleted', access('j1'));
    expect(w.token('deleted', refresh('j2', 's9'))).toMatchObject([
      { id: opened?.id, state: 'resolved' },
    ]);
  });

  it('a late token joining after the finding opened updates it', () => {
    const w = new World({ revocationSlaSeconds: 1, revocationGraceSeconds: 2 });
    w.token('written', access('j1'));
    w.provider('token_revoked', { tokenIds: [fp('j1'), fp('j2')] });
    const [opened] = w.advance(1000);
    w.clock.t += 500;
    w.token('written', refresh('j2', 's9')); // seq 3
    expect(w.c.openFindings()[0]).toMatchObject({
      id: opened?.id,
      evidenceSeqs: [2, 1, 3],
      attributes: { tokensMatched: 2, tokensStillLive: 2 },
    });
  });

  it('a revocation that matched nothing, joined by one late token, counts that one', () => {
    const w = new World({ revocationSlaSeconds: 2 });
    w.provider('token_revoked', { tokenIds: [fp('j1')] });
    w.clock.t += 100;
    w.token('written', access('j1'));
    const [opened] = w.advance(2000);
    expect(opened).toMatchObject({ attributes: { tokensMatched: 1, kinds: 'access_token' } });
  });

  it('a family token written after a reuse detection is counted, cited and named by kind', () => {
    const w = new World();
    w.token('written', refresh('r1', 's1'));
    w.provider('token_refreshed', { rotation: { previous: [fp('r1')], next: [fp('r2')] } });
    const [opened] = w.provider('refresh_reuse_detected', { tokenIds: [fp('r1')] });
    w.token('written', access('r2')); // seq 4, an access token carrying the family id
    expect(w.c.openFindings().find((f) => f.id === opened?.id)).toMatchObject({
      evidenceSeqs: [3, 1, 4],
      attributes: { tokensMatched: 2, tokensStillLive: 2, kinds: 'access_token,refresh_token' },
    });
  });
});
