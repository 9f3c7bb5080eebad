import { describe, expect, it } from 'vitest';
import type { KindRule } from '../../src/correlate/options.js';
import { KINDS, T0, World, access, fp, refresh, rules, session } from './helpers.js';

/** Every kind requires a provider event, so sessions and refresh tokens are judged too. */
const ALL_REQUIRED: KindRule[] = KINDS.map((k) => ({ ...k, requireProviderEvent: true }));
const world = () => new World({ kinds: ALL_REQUIRED });
const unattributed = (w: World, ms = 31_000) =>
  w.advance(ms).filter((f) => f.rule === 'unattributed_token');

describe('unattributed_token: which issuance explains which token', () => {
  it('an issuance without client explains any client of its subject, before or after the write', () => {
    const before = world();
    before.provider('session_started', { subject: 'alice' });
    before.token('written', access('j1', 'alice', 'web'));
    before.token('written', access('j2', 'bob', 'web'));
    expect(unattributed(before).map((f) => f.fingerprint)).toEqual([fp('j2')]);

    const after = world();
    after.token('written', access('j1', 'alice', 'web'));
    after.token('written', access('j2', 'bob', 'web'));
    after.advance(5000);
    after.provider('session_started', { subject: 'alice' });
    expect(unattributed(after).map((f) => f.fingerprint)).toEqual([fp('j2')]);
  });

  it('an issuance with a client explains only that client, and a clientless kind of the subject', () => {
    const before = world();
    before.provider('token_issued', { subject: 'alice', clientId: 'web' });
    before.token('written', access('j1', 'alice', 'web'));
    before.token('written', access('j2', 'alice', 'cli'));
    before.token('written', session('s1', 'alice'));
    before.token('written', session('s2', 'bob'));
    expect(unattributed(before).map((f) => f.fingerprint)).toEqual([fp('j2'), fp('s2')]);

    const after = world();
    after.token('written', access('j1', 'alice', 'web'));
    after.token('written', access('j2', 'alice', 'cli'));
    after.token('written', session('s1', 'alice'));
    after.token('written', session('s2', 'bob'));
    after.advance(5000);
    after.provider('token_issued', { subject: 'alice', clientId: 'web' });
    expect(unattributed(after).map((f) => f.fingerprint)).toEqual([fp('j2'), fp('s2')]);
  });

  it('joins on the session id alone', () => {
    const before = world();
    before.provider('session_started', { sessionId: fp('s1') });
    before.token('written', refresh('r1', 's1', 'alice'));
    before.token('written', refresh('r2', 's2', 'alice'));
    expect(unattributed(before).map((f) => f.attributes.writtenAt)).toHaveLength(1);
    expect(before.c.openFindings().map((f) => f.fingerprint)).toEqual([fp('s2')]);

    const after = world();
    after.token('written', refresh('r1', 's1', 'alice'));
    after.token('written', refresh('r2', 's2', 'alice'));
    after.advance(3000);
    after.provider('session_started', { sessionId: fp('s1') });
    unattributed(after);
    expect(after.c.openFindings().map((f) => f.fingerprint)).toEqual([fp('s2')]);
  });

  it('an issuance arriving in the window but dated outside it explains nothing', () => {
    const w = world();
    w.token('written', access('j1'));
    w.advance(10_000);
    w.provider('token_issued', { tokenIds: [fp('j1')], occurredAt: T0 - 31_000 });
    expect(rules(unattributed(w, 21_000))).toEqual(['unattributed_token:opened']);
    // At the edge of the window it still counts.
    const edge = world();
    edge.token('written', access('j1'));
    edge.provider('token_issued', { tokenIds: [fp('j1')], occurredAt: T0 - 30_000 });
    expect(unattributed(edge)).toEqual([]);
  });

  it('a token that left before its judgement, then explained in the window, is never reported', () => {
    const w = world();
    w.token('written', access('j1'));
    w.advance(5000);
    w.token('deleted', access('j1'));
    w.advance(5000);
    w.provider('token_issued', { tokenIds: [fp('j1')], occurredAt: T0 + 1000 });
    expect(unattributed(w, 60_000)).toEqual([]);
  });

  it('an issuance dated far from a gone token does not cancel its judgement', () => {
    const w = world();
    w.token('written', access('j1'));
    w.token('deleted', access('j1'));
    w.advance(5000);
    w.provider('token_issued', { tokenIds: [fp('j1')], occurredAt: T0 + 40_000 });
    const out = unattributed(w, 30_000);
    expect(rules(out)).toEqual(['unattributed_token:opened', 'unattributed_token:resolved']);
    expect(out[1]).toMatchObject({
      summary: 'An unattributed access_token token had already left Redis (deleted).',
      attributes: { resolution: 'left_redis', endType: 'deleted' },
      evidenceSeqs: [1, 2],
    });
  });

  it('names the window, the deadline and the provider event in what it records', () => {
    const w = world();
    w.token('written', access('j1'));
    const [opened] = unattributed(w);
    expect(opened).toMatchObject({
      summary:
        'A access_token token was written to Redis with no token_issued, token_refreshed or session_started provider event within ±30 s.',
      attributes: { writtenAt: T0, windowSeconds: 30, deadline: T0 + 30_000 },
    });
    const ev = w.providerEvent('token_issued', { tokenIds: [fp('j1')], occurredAt: T0 });
    const [resolved] = w.c.onProviderEvent(ev, 99);
    expect(resolved).toMatchObject({
      id: opened?.id,
      summary: 'The access_token token was attributed late to okta token_issued.',
      attributes: { resolution: 'attributed_late', provider: 'okta', providerEventId: ev.id },
      evidenceSeqs: [1, 99],
    });
    // Resolved once: the token leaving afterwards resolves nothing more, nor does a second issuance.
    expect(w.provider('token_issued', { tokenIds: [fp('j1')], occurredAt: T0 })).toEqual([]);
    expect(w.token('deleted', access('j1'))).toEqual([]);
  });

  it('a rewrite after a delete replaces the pending judgement, queued behind later writes', () => {
    const w = world();
    w.token('written', access('j1'));
    w.advance(5000);
    w.token('written', access('j2'));
    w.advance(5000);
    w.token('deleted', access('j1'));
    w.token('written', access('j1'));
    // The first write of j1 is judged no more; j2 at +35 s, the rewrite of j1 at +40 s.
    expect(unattributed(w, 24_000)).toEqual([]);
    expect(unattributed(w, 1000)).toMatchObject([
      { state: 'opened', fingerprint: fp('j2'), attributes: { writtenAt: T0 + 5000 } },
    ]);
    expect(unattributed(w, 4000)).toEqual([]);
    expect(unattributed(w, 1000)).toMatchObject([
      { state: 'opened', fingerprint: fp('j1'), attributes: { writtenAt: T0 + 10_000 } },
    ]);
  });

  it('a pending judgement follows its token through RENAME', () => {
    const w = world();
    w.token('written', session('s1'));
    w.advance(5000);
    w.token('renamed', session('s9'), {
      renamedFrom: { kind: 'session', fingerprint: fp('s1') },
    });
    const out = unattributed(w);
    expect(out).toMatchObject([
      { state: 'opened', fingerprint: fp('s9'), attributes: { writtenAt: T0 } },
    ]);
  });

  it('forgets issuances older than twice the window', () => {
    const w = world();
    w.provider('token_issued', { tokenIds: [fp('j1')] });
    w.advance(60_000);
    expect(w.c.stats().sizes.recentIssuances).toBe(1);
    w.advance(1000);
    expect(w.c.stats().sizes.recentIssuances).toBe(0);
  });

  it('keeps pending judgements and recent issuances across a restart', () => {
    const w = world();
    w.provider('token_issued', { tokenIds: [fp('j2')] });
    w.token('written', access('j1'));
    w.advance(10_000);
    const r = w.restart(5000, { kinds: ALL_REQUIRED });
    expect(r.c.stats().sizes).toMatchObject({ recentIssuances: 1, pendingAttributions: 1 });
    // The restored issuance still explains a write inside its window.
    r.token('written', access('j2'));
    const out = unattributed(r, 35_000);
    expect(out).toMatchObject([
      { state: 'opened', fingerprint: fp('j1'), evidenceSeqs: [2], attributes: { writtenAt: T0 } },
    ]);
  });

  it('caps both sections of its snapshot and says how much it left out', () => {
    const w = new World({ kinds: ALL_REQUIRED, limits: { maxSnapshotEntries: 1 } });
    for (const j of ['j1', 'j2', 'j3']) {
      w.provider('token_issued', { tokenIds: [fp(`x-${j}`)] });
      w.token('written', access(j));
    }
    const s = w.c.snapshot();
    expect(s.truncated).toMatchObject({ issuances: 2, pendingAttributions: 2 });
    expect(s.attribution.pending).toMatchObject([{ writtenAt: T0 }]);
    // The token of the kept judgement is kept with it.
    expect(s.tokens.map((t) => t.fingerprint)).toEqual([fp('j3')]);
  });

  it('restores every issuance under its own key, with its token ids', () => {
    const w = world();
    w.provider('token_issued', { tokenIds: [fp('a1'), fp('a2')] });
    w.provider('token_issued', { tokenIds: [fp('b1')] });
    expect(w.c.snapshot().attribution.issuances).toMatchObject([
      { tokenIds: [fp('a1'), fp('a2')] },
      { tokenIds: [fp('b1')] },
    ]);
    const r = w.restart(1000, { kinds: ALL_REQUIRED });
    expect(r.c.stats().sizes.recentIssuances).toBe(2);
    r.token('written', access('a2'));
    r.token('written', access('b1'));
    expect(unattributed(r)).toEqual([]);
  });

  it('a late attribution unties the token: the snapshot no longer keeps it for that finding', () => {
    const w = world();
    w.token('written', access('j1'));
    unattributed(w);
    expect(w.c.snapshot().tokens).toHaveLength(1);
    w.provider('token_issued', { tokenIds: [fp('j1')], occurredAt: T0 });
    expect(w.c.snapshot().tokens).toEqual([]);
  });

  it('a RENAME of a token with no pending judgement leaves the queue working', () => {
    const w = world();
    w.provider('session_started', { sessionId: fp('s1') });
    w.token('written', session('s1'));
    w.token('renamed', session('s9'), { renamedFrom: { kind: 'session', fingerprint: fp('s1') } });
    expect(w.c.stats().sizes.pendingAttributions).toBe(0);
    w.token('written', access('j1'));
    expect(unattributed(w).map((f) => f.fingerprint)).toEqual([fp('j1')]);
  });

  it('a RENAME moves the pending judgement rather than copying it', () => {
    const w = world();
    w.token('written', session('s1'));
    w.token('renamed', session('s9'), { renamedFrom: { kind: 'session', fingerprint: fp('s1') } });
    expect(w.c.stats().sizes.pendingAttributions).toBe(1);
  });

  it('judges nothing when the rule is off or the token is forgotten, and counts evictions', () => {
    const off = new World({
      kinds: ALL_REQUIRED,
      rules: { unattributed_token: { enabled: false } },
    });
    off.token('written', access('j1'));
    expect(unattributed(off)).toEqual([]);
    const forgot = new World({ kinds: ALL_REQUIRED, limits: { maxEndedTokens: 1 } });
    forgot.token('written', access('j1'));
    forgot.token('deleted', access('j1'));
    forgot.token('written', access('j2'), { db: 1 });
    forgot.token('deleted', access('j2'), { db: 1 });
    // j1 is neither live nor remembered as ended: nothing to report at its deadline.
    expect(unattributed(forgot).map((f) => [f.fingerprint, f.state])).toEqual([
      [fp('j2'), 'opened'],
      [fp('j2'), 'resolved'],
    ]);
    expect(unattributed(forgot, 0)).toEqual([]);
    const capped = new World({
      kinds: ALL_REQUIRED,
      limits: { maxRecentIssuances: 1, maxPendingAttributions: 1 },
    });
    capped.provider('token_issued', { tokenIds: [fp('x1')] });
    capped.provider('token_issued', { tokenIds: [fp('x2')] });
    capped.token('written', access('j1'));
    capped.token('written', access('j2'));
    expect(capped.c.stats().evictions).toMatchObject({
      recentIssuances: 1,
      pendingAttributions: 1,
    });
  });
});
