import { describe, expect, it } from 'vitest';
import { T0, World, access, fp, refresh, rules, session } from './helpers.js';

describe('write_after_revocation: what it records and at which edges', () => {
  it('names the key it matched by, in words, with the revocation and the write', () => {
    const w = new World();
    w.provider('token_revoked', { tokenIds: [fp('j1')] });
    w.advance(3500);
    const [byId] = w.token('written', access('j1'));
    expect(byId).toMatchObject({
      summary:
        'A access_token token was written to Redis 3.5 s after okta token_revoked revoked its token id.',
      fingerprint: fp('j1'),
      subject: 'alice',
      attributes: {
        matchedBy: 'token_id',
        provider: 'okta',
        providerEventId: 'evt-1',
        revocationType: 'token_revoked',
        revokedAt: T0,
        writtenAt: T0 + 3500,
        secondsAfterRevocation: 3.5,
      },
    });
    w.provider('account_disabled', { subject: 'bob' });
    w.advance(5000);
    const [bySubject] = w.token('written', access('j2', 'bob'));
    expect(bySubject?.summary).toBe(
      'A access_token token was written to Redis 5 s after okta account_disabled revoked its subject.',
    );
    expect(bySubject?.attributes.matchedBy).toBe('subject');
  });

  it('a rewrite of a flagged token updates its finding rather than opening another', () => {
    const w = new World();
    w.provider('session_revoked', { sessionId: fp('s1') });
    w.advance(5000);
    const [opened] = w.token('written', session('s1'));
    w.advance(1000);
    expect(w.token('written', session('s1'))).toEqual([]);
    expect(w.c.openFindings()[0]).toMatchObject({
      id: opened?.id,
      evidenceSeqs: [1, 2, 3],
      attributes: { lastWrittenAt: T0 + 6000 },
    });
  });

  it('flags a write just past the grace, and remembers up to revocationMemorySeconds exactly', () => {
    const w = new World({ revocationGraceSeconds: 2, revocationMemorySeconds: 60 });
    w.provider('session_revoked', { sessionId: fp('s1') });
    w.clock.t = T0 + 2001;
    expect(rules(w.token('written', session('s1')))).toEqual(['write_after_revocation:opened']);
    const v = new World({ revocationMemorySeconds: 60 });
    v.provider('session_revoked', { sessionId: fp('s1') });
    v.advance(60_000);
    expect(v.c.stats().sizes.revokedSessions).toBe(1);
    expect(rules(v.token('written', session('s1')))).toEqual(['write_after_revocation:opened']);
  });

  it('a late revocation flags live tokens written after it, by token id before session', () => {
    const w = new World();
    w.clock.t = T0 + 10_000;
    w.token('written', refresh('r1', 's1'));
    w.token('written', session('s1'));
    // Found by SCAN, never written under our eyes: not flagged.
    w.token('appeared', refresh('r2', 's1'), { db: 1 });
    const late = w.providerEvent('session_revoked', {
      sessionId: fp('s1'),
      tokenIds: [fp('r1')],
      occurredAt: T0,
      observedAt: T0 + 10_000,
    });
    const out = w.c.onProviderEvent(late, 50).filter((f) => f.rule === 'write_after_revocation');
    expect(out.map((f) => [f.kind, f.attributes.matchedBy, f.evidenceSeqs])).toEqual([
      ['refresh_token', 'token_id', [50, 1]],
      ['session', 'session', [50, 2]],
    ]);
  });

  it('keeps the earliest revocation of a key', () => {
    const w = new World();
    w.provider('session_revoked', { sessionId: fp('s1'), occurredAt: T0 });
    w.provider('session_revoked', { sessionId: fp('s1'), occurredAt: T0 - 5000 });
    w.provider('session_revoked', { sessionId: fp('s1'), occurredAt: T0 - 1000 });
    w.advance(5000);
    const [opened] = w.token('written', session('s1'));
    expect(opened?.attributes).toMatchObject({
      providerEventId: 'evt-2',
      secondsAfterRevocation: 10,
    });
  });

  it('snapshots what it remembers, newest per key type within the memory, and restores it', () => {
    const w = new World({ revocationMemorySeconds: 60, limits: { maxSnapshotEntries: 1 } });
    w.provider('session_revoked', { sessionId: fp('old') });
    w.advance(30_000);
    w.provider('session_revoked', { sessionId: fp('s1'), tokenIds: [fp('j1'), fp('j2')] });
    w.provider('account_disabled', { subject: 'bob' });
    const s = w.c.snapshot();
    expect(s.truncated).toEqual({ revokedSessions: 1, revokedTokenIds: 1 });
    expect(s.revoked).toMatchObject({
      tokenIds: [[fp('j2'), { eventId: 'evt-2', revokedAt: T0 + 30_000, type: 'session_revoked' }]],
      sessions: [[fp('s1'), { eventId: 'evt-2' }]],
      subjects: [['bob', { eventId: 'evt-3', type: 'account_disabled' }]],
    });
    // Past the memory, nothing is kept, even before a tick has expired it.
    w.clock.t += 31_000;
    expect(w.c.snapshot().revoked.sessions).toMatchObject([[fp('s1'), {}]]);
    const r = w.restart(0);
    r.advance(5000);
    expect(r.token('written', access('j9', 'bob'))).toMatchObject([
      { attributes: { matchedBy: 'subject', providerEventId: 'evt-3' } },
    ]);
    expect(r.c.stats().sizes).toMatchObject({
      revokedTokenIds: 1,
      revokedSessions: 1,
      revokedSubjects: 1,
    });
  });

  it('leaves revocations past the memory out of the snapshot before a tick forgets them', () => {
    const w = new World({ revocationMemorySeconds: 60 });
    w.provider('session_revoked', { sessionId: fp('s1') });
    w.clock.t += 60_000;
    expect(w.c.snapshot().revoked.sessions).toHaveLength(1);
    w.clock.t += 1;
    expect(w.c.snapshot().revoked.sessions).toEqual([]);
  });

  it('counts evictions of each memory', () => {
    const w = new World({ limits: { maxRevocationMemory: 1 } });
    w.provider('session_revoked', { sessionId: fp('a'), tokenIds: [fp('x')] });
    w.provider('session_revoked', { sessionId: fp('b'), tokenIds: [fp('y')] });
    w.provider('account_disabled', { subject: 'u1' });
    w.provider('account_disabled', { subject: 'u2' });
    expect(w.c.stats().evictions.revocationMemory).toBe(3);
  });

  it('a late account_disabled flags a live token of the subject, matched by subject', () => {
    const w = new World();
    w.clock.t = T0 + 10_000;
    w.token('written', access('j1', 'bob'));
    const late = w.providerEvent('account_disabled', {
      subject: 'bob',
      occurredAt: T0,
      observedAt: T0 + 10_000,
    });
    expect(w.c.onProviderEvent(late)).toMatchObject([
      { rule: 'write_after_revocation', attributes: { matchedBy: 'subject' } },
    ]);
  });

  it('with the rule off flags nothing, either way round', () => {
    const w = new World({ rules: { write_after_revocation: { enabled: false } } });
    w.clock.t = T0 + 10_000;
    w.token('written', access('j1', 'bob'));
    const late = w.providerEvent('account_disabled', { subject: 'bob', occurredAt: T0 });
    expect(w.c.onProviderEvent(late).filter((f) => f.rule === 'write_after_revocation')).toEqual(
      [],
    );
    w.advance(5000);
    expect(w.token('written', access('j2', 'bob'))).toEqual([]);
  });

  it('forgets token ids, sessions and subjects after the memory', () => {
    const w = new World({ revocationMemorySeconds: 10 });
    w.provider('session_revoked', { sessionId: fp('s1'), tokenIds: [fp('j1')] });
    w.provider('account_disabled', { subject: 'bob' });
    w.advance(11_000);
    expect(w.c.stats().sizes).toMatchObject({
      revokedTokenIds: 0,
      revokedSessions: 0,
      revokedSubjects: 0,
    });
  });
});
