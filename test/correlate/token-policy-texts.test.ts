import { describe, expect, it } from 'vitest';
import { T0, World, access } from './helpers.js';

/** What token_without_expiry and ttl_exceeds_policy write in the findings an auditor reads. */
describe('token policy findings: summaries and attributes', () => {
  it('token_without_expiry names the event, and its resolution the new expiry', () => {
    const w = new World();
    const [opened] = w.token('written', access('j1'), { dueAt: null, ttlMs: undefined });
    expect(opened).toMatchObject({
      rule: 'token_without_expiry',
      summary: 'A access_token token is stored in Redis without an expiry (written).',
      attributes: { event: 'written', redisEvent: 'set' },
      evidenceSeqs: [1],
    });
    const [resolved] = w.token('ttl_changed', access('j1'), { dueAt: T0 + 60_000, ttlMs: 60_000 });
    expect(resolved).toMatchObject({
      id: opened?.id,
      summary: 'The access_token token now has an expiry.',
      attributes: { resolution: 'ttl_set', dueAt: T0 + 60_000 },
      evidenceSeqs: [1, 2],
    });
    // Resolved once: another TTL change resolves nothing more.
    expect(w.token('ttl_changed', access('j1'), { dueAt: T0 + 1000, ttlMs: 1000 })).toEqual([]);
  });

  it('ttl_exceeds_policy names the TTL and the maximum, and its resolution the fixed TTL', () => {
    const w = new World();
    const [opened] = w.token('written', access('j1'), { dueAt: T0 + 7_200_500, ttlMs: 7_200_500 });
    expect(opened).toMatchObject({
      rule: 'ttl_exceeds_policy',
      summary: 'A access_token token has a TTL of 7200.5 s, above the policy maximum of 3600 s.',
      attributes: { ttlSeconds: 7200.5, maxTtlSeconds: 3600, event: 'written' },
    });
    const [resolved] = w.token('ttl_changed', access('j1'), {
      dueAt: T0 + 1_800_000,
      ttlMs: 1_800_000,
    });
    expect(resolved).toMatchObject({
      id: opened?.id,
      summary: "The access_token token's TTL is back within policy (1800 s).",
      attributes: { resolution: 'ttl_fixed', ttlSeconds: 1800 },
    });
    expect(w.token('ttl_changed', access('j1'), { dueAt: T0 + 1000, ttlMs: 1000 })).toEqual([]);
  });

  it('a token made persistent while over policy stops being judged against the TTL policy', () => {
    const w = new World();
    const [over] = w.token('written', access('j1'), { dueAt: T0 + 7_200_000, ttlMs: 7_200_000 });
    const out = w.token('persisted', access('j1'));
    expect(out.map((f) => [f.rule, f.state])).toEqual([['token_without_expiry', 'opened']]);
    expect(w.c.openFindings().map((f) => f.id)).toContain(over?.id);
  });

  it('a second event without TTL keeps token_without_expiry open; once resolved the token is untied', () => {
    const w = new World();
    w.token('written', access('j1'), { dueAt: null, ttlMs: undefined });
    expect(w.token('persisted', access('j1'))).toEqual([]);
    expect(w.c.snapshot().tokens).toHaveLength(1);
    w.token('ttl_changed', access('j1'), { dueAt: T0 + 60_000, ttlMs: 60_000 });
    expect(w.c.openFindings()).toEqual([]);
    expect(w.c.snapshot().tokens).toEqual([]);
  });

  it('judges the TTL the event reports over the one derived from dueAt', () => {
    const w = new World();
    const out = w.token('written', access('j1'), { dueAt: T0 + 60_000, ttlMs: 7_200_000 });
    expect(out).toMatchObject([{ rule: 'ttl_exceeds_policy', attributes: { ttlSeconds: 7200 } }]);
    w.token('ttl_changed', access('j1'), { dueAt: T0 + 60_000, ttlMs: 60_000 });
    expect(w.c.snapshot().tokens).toEqual([]);
  });

  it('a kind the options do not name, or a disabled rule, opens nothing', () => {
    const w = new World({ rules: { ttl_exceeds_policy: { enabled: false } } });
    expect(
      w.token('written', { ...access('j1'), kind: 'unknown' }, { dueAt: T0 + 1, ttlMs: 1 }),
    ).toEqual([]);
    expect(w.token('written', access('j2'), { dueAt: T0 + 9_000_000, ttlMs: 9_000_000 })).toEqual(
      [],
    );
    const v = new World({ rules: { token_without_expiry: { enabled: false } } });
    expect(v.token('written', access('j1'), { dueAt: null, ttlMs: undefined })).toEqual([]);
  });
});
