import { describe, expect, it } from 'vitest';
import { T0, World, access, fp, rules, session } from './helpers.js';

describe('token_without_expiry', () => {
  it('opens for a write without TTL and resolves when the token gets one', () => {
    const w = new World();
    const [opened] = w.token('written', session('s1'), { dueAt: null, ttlMs: null });
    expect(opened).toMatchObject({
      id: `token_without_expiry:${fp('s1')}:${T0}`,
      rule: 'token_without_expiry',
      state: 'opened',
      severity: 'medium',
      criteria: ['CC6.1'],
      kind: 'session',
      fingerprint: fp('s1'),
      subject: 'alice',
      sessionId: fp('s1'),
      evidenceSeqs: [1],
    });
    expect(w.token('written', session('s1'), { dueAt: null })).toEqual([]); // still one finding
    const [resolved] = w.token('ttl_changed', session('s1'), { dueAt: T0 + 60_000, ttlMs: 60_000 });
    expect(resolved).toMatchObject({
      id: opened?.id,
      state: 'resolved',
      attributes: { resolution: 'ttl_set' },
    });
    expect(w.c.openFindings()).toEqual([]);
  });

  it('opens on PERSIST and resolves when the token leaves', () => {
    const w = new World();
    w.token('written', session('s1'));
    expect(rules(w.token('persisted', session('s1')))).toEqual(['token_without_expiry:opened']);
    const [resolved] = w.token('deleted', session('s1'));
    expect(resolved).toMatchObject({
      state: 'resolved',
      attributes: { resolution: 'left_redis', endType: 'deleted' },
    });
    expect(resolved?.evidenceSeqs).toEqual([2, 3]);
  });

  it('says nothing when the TTL is unknown (key gone before lookup)', () => {
    const w = new World();
    expect(w.token('written', session('s1'), { dueAt: undefined, ttlMs: undefined })).toEqual([]);
  });

  it('honours a disabled rule', () => {
    const w = new World({ rules: { token_without_expiry: { enabled: false } } });
    expect(w.token('written', session('s1'), { dueAt: null })).toEqual([]);
  });
});

describe('ttl_exceeds_policy', () => {
  it('opens above maxTtlSeconds plus tolerance and resolves when the TTL is fixed', () => {
    const w = new World();
    expect(w.token('written', access('j1'), { dueAt: T0 + 3_601_000, ttlMs: 3_601_000 })).toEqual(
      [],
    ); // tolerance 2 s
    const [opened] = w.token('written', access('j2'), { dueAt: T0 + 7_200_000, ttlMs: 7_200_000 });
    expect(opened).toMatchObject({
      rule: 'ttl_exceeds_policy',
      kind: 'access_token',
      fingerprint: fp('j2'),
      attributes: { ttlSeconds: 7200, maxTtlSeconds: 3600 },
    });
    const [resolved] = w.token('ttl_changed', access('j2'), {
      dueAt: T0 + 600_000,
      ttlMs: 600_000,
    });
    expect(resolved).toMatchObject({
      id: opened?.id,
      state: 'resolved',
      attributes: { resolution: 'ttl_fixed' },
    });
  });

  it('derives the TTL from dueAt when ttlMs is absent and resolves when the token expires', () => {
    const w = new World();
    expect(
      rules(w.token('written', access('j1'), { dueAt: T0 + 86_400_000, ttlMs: undefined })),
    ).toEqual(['ttl_exceeds_policy:opened']);
    expect(rules(w.token('expired', access('j1')))).toEqual(['ttl_exceeds_policy:resolved']);
  });

  it('does not apply to kinds without a policy', () => {
    const w = new World();
    expect(
      w.token('written', session('s1'), { dueAt: T0 + 86_400_000, ttlMs: 86_400_000 }),
    ).toEqual([]);
  });
});

describe('token policy: boundaries, updates and evidence', () => {
  it('does not open at exactly maxTtlSeconds plus tolerance, opens one ms above', () => {
    const w = new World();
    expect(w.token('written', access('j1'), { dueAt: T0 + 3_602_000, ttlMs: 3_602_000 })).toEqual(
      [],
    );
    expect(
      rules(w.token('written', access('j2'), { dueAt: T0 + 3_602_001, ttlMs: 3_602_001 })),
    ).toEqual(['ttl_exceeds_policy:opened']);
  });

  it('keeps one finding while the TTL stays above policy, updating its TTL and evidence', () => {
    const w = new World();
    const [opened] = w.token('written', access('j1'), { dueAt: T0 + 7_200_000, ttlMs: 7_200_000 });
    expect(opened?.evidenceSeqs).toEqual([1]);
    expect(
      w.token('ttl_changed', access('j1'), { dueAt: T0 + 9_000_000, ttlMs: 9_000_000 }),
    ).toEqual([]);
    const [open] = w.c.openFindings();
    expect(open).toMatchObject({ id: opened?.id, attributes: { ttlSeconds: 9000 } });
    expect(open?.evidenceSeqs).toEqual([1, 2]);
    const [resolved] = w.token('ttl_changed', access('j1'), { dueAt: T0 + 60_000, ttlMs: 60_000 });
    expect(resolved).toMatchObject({
      id: opened?.id,
      state: 'resolved',
      attributes: { resolution: 'ttl_fixed', ttlSeconds: 60 },
    });
    expect(resolved?.evidenceSeqs).toEqual([1, 2, 3]);
    expect(w.c.openFindings()).toEqual([]);
    // Within policy and nothing open: nothing to say.
    expect(w.token('ttl_changed', access('j1'), { dueAt: T0 + 30_000, ttlMs: 30_000 })).toEqual([]);
  });

  it('judges the TTL left at the event from dueAt when the event has no ttlMs', () => {
    const w = new World();
    w.clock.t = T0 + 1_000_000;
    expect(
      w.token('written', access('j1'), { dueAt: T0 + 1_000_000 + 3_000_000, ttlMs: undefined }),
    ).toEqual([]);
    const [opened] = w.token('written', access('j2'), {
      dueAt: T0 + 1_000_000 + 3_700_000,
      ttlMs: undefined,
    });
    expect(opened).toMatchObject({ rule: 'ttl_exceeds_policy', attributes: { ttlSeconds: 3700 } });
  });

  it('records the event that opened token_without_expiry and the one that resolved it', () => {
    const w = new World();
    const [opened] = w.token('persisted', access('j1'), { dueAt: null, ttlMs: null });
    expect(opened).toMatchObject({
      rule: 'token_without_expiry',
      attributes: { event: 'persisted', redisEvent: 'persisted' },
      evidenceSeqs: [1],
    });
    const [resolved] = w.token('ttl_changed', access('j1'), { dueAt: T0 + 60_000, ttlMs: 60_000 });
    expect(resolved).toMatchObject({ state: 'resolved', attributes: { resolution: 'ttl_set' } });
    expect(resolved?.evidenceSeqs).toEqual([1, 2]);
  });

  it('does not judge a token without TTL against the TTL policy', () => {
    const w = new World();
    expect(rules(w.token('written', access('j1'), { dueAt: null, ttlMs: 9_000_000 }))).toEqual([
      'token_without_expiry:opened',
    ]);
  });
});
