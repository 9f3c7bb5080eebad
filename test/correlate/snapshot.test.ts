import { describe, expect, it } from 'vitest';
import { Correlator } from '../../src/correlate/correlator.js';
import { TokenwatchError } from '../../src/errors.js';
import { KINDS, T0, World, access, fp, refresh, rules, session } from './helpers.js';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof TokenwatchError ? e.code : 'not-a-TokenwatchError';
  }
  return undefined;
};

describe('correlator snapshot / restore', () => {
  it('a revocation in flight across a restart breaches its SLA after it and resolves with its latency', () => {
    const a = new World();
    a.token('written', access('j1'));
    expect(a.provider('token_revoked', { tokenIds: [fp('j1')] })).toEqual([]);
    a.advance(2000); // stopped 2 s into the 5 s SLA
    const b = a.restart(10_000);
    const [opened, ...rest] = b.tick();
    expect(rest).toEqual([]);
    expect(opened).toMatchObject({
      rule: 'revocation_not_propagated',
      state: 'opened',
      fingerprint: fp('j1'),
      attributes: { tokensStillLive: 1, deadline: T0 + 5000 },
    });
    b.advance(3000);
    const [resolved] = b.token('deleted', access('j1'));
    expect(resolved).toMatchObject({ id: opened?.id, state: 'resolved' });
    expect(b.c.drainObservations().revocations).toEqual([
      expect.objectContaining({ latencySeconds: 15, metSla: false, tokens: 1 }),
    ]);
    // Nothing left to double-count.
    expect(b.c.openFindings()).toEqual([]);
    expect(b.c.stats().sizes.pendingObligations).toBe(0);
  });

  it('restores open findings as they were, and they resolve after the restart when their cause goes', () => {
    const a = new World();
    const [noTtl] = a.token('written', session('s1'), { dueAt: null, ttlMs: null });
    const [tooLong] = a.token('written', access('j1'), { dueAt: T0 + 7_200_000, ttlMs: 7_200_000 });
    expect(rules([noTtl!, tooLong!])).toEqual([
      'token_without_expiry:opened',
      'ttl_exceeds_policy:opened',
    ]);
    const b = a.restart(30_000);
    expect(b.c.openFindings()).toEqual(a.c.openFindings());
    expect(b.tick()).toEqual([]); // restoring re-opens nothing
    const [r1] = b.token('ttl_changed', access('j1'), { dueAt: b.clock.t + 60_000, ttlMs: 60_000 });
    expect(r1).toMatchObject({ id: tooLong?.id, state: 'resolved', openedAt: T0 });
    const [r2] = b.token('deleted', session('s1'));
    expect(r2).toMatchObject({ id: noTtl?.id, state: 'resolved' });
    expect(b.c.openFindings()).toEqual([]);
  });

  it('keeps rotation families: a reuse after the restart reaches a token rotated before it', () => {
    const a = new World();
    a.provider('token_refreshed', { rotation: { previous: [fp('r1')], next: [fp('r2')] } });
    const b = a.restart(5000);
    b.token('written', refresh('r2', 's1'));
    const [opened] = b.provider('refresh_reuse_detected', { tokenIds: [fp('r1')] });
    expect(opened?.attributes.tokensStillLive).toBe(1);
  });

  it('keeps revocations remembered for write_after_revocation', () => {
    const a = new World();
    a.provider('session_revoked', { sessionId: fp('s1') });
    const b = a.restart(5000);
    expect(rules(b.token('written', session('s1')))).toEqual(['write_after_revocation:opened']);
  });

  it('keeps an open eviction burst and resolves it once the kind is quiet', () => {
    const a = new World();
    expect(rules(a.token('evicted', session('s1')))).toEqual(['tokens_evicted:opened']);
    const b = a.restart(30_000);
    expect(rules(b.tick())).toEqual(['tokens_evicted:resolved']);
  });

  it('survives a second restart unchanged (snapshot of a restored correlator)', () => {
    const a = new World();
    a.token('written', session('s1'), { dueAt: null, ttlMs: null });
    a.token('written', access('j1'));
    a.provider('token_revoked', { tokenIds: [fp('j1')] });
    const b = a.restart(1000);
    const c = b.restart(1000);
    const strip = (w: World) => {
      const s = w.c.snapshot();
      return { ...s, takenAt: 0, churn: [] };
    };
    expect(strip(c)).toEqual(strip(b));
  });

  it('a restored token the start-up baseline does not find left while tokenwatch was down', () => {
    const a = new World();
    const [noTtl] = a.token('written', session('gone'), { dueAt: null, ttlMs: null });
    a.token('written', session('kept'), { dueAt: null, ttlMs: null });
    a.token('written', access('j1'));
    a.provider('token_revoked', { tokenIds: [fp('j1')] });
    const b = a.restart(60_000);
    expect(rules(b.tick())).toEqual(['revocation_not_propagated:opened']);
    // The baseline SCAN reports what it found: 'kept' only.
    b.token('appeared', session('kept'), { dueAt: null, ttlMs: null, redisEvent: 'reconcile' });
    expect(b.c.baselineDone('redis-b:6379')).toEqual([]); // another node: nothing to conclude
    const out = b.c.baselineDone('redis-a:6379');
    expect(rules(out).sort()).toEqual([
      'revocation_not_propagated:resolved',
      'token_without_expiry:resolved',
    ]);
    expect(out.find((f) => f.rule === 'token_without_expiry')).toMatchObject({
      id: noTtl?.id,
      attributes: { resolution: 'left_redis', endType: 'vanished' },
    });
    // When it left is unknown: no latency is invented, and it counts against the SLA.
    expect(b.c.drainObservations().revocations).toEqual([
      expect.objectContaining({ latencySeconds: null, metSla: null }),
    ]);
    expect(b.c.openFindings().map((f) => f.fingerprint)).toEqual([fp('kept')]);
    expect(b.c.baselineDone('redis-a:6379')).toEqual([]); // once
  });

  it('refuses snapshots of another version or shape with ERR_SNAPSHOT_INVALID', () => {
    const good = JSON.parse(JSON.stringify(new World().c.snapshot())) as Record<string, unknown>;
    const restore = (raw: unknown) => () =>
      Correlator.fromSnapshot({ kinds: KINDS }, { clock: { now: () => T0 } }, raw);
    expect(codeOf(restore(good))).toBeUndefined();
    expect(codeOf(restore(null))).toBe('ERR_SNAPSHOT_INVALID');
    expect(codeOf(restore({ ...good, version: 2 }))).toBe('ERR_SNAPSHOT_INVALID');
    expect(codeOf(restore({ ...good, findings: [{ id: 'x', rule: 'nope' }] }))).toBe(
      'ERR_SNAPSHOT_INVALID',
    );
    expect(codeOf(restore({ ...good, tokens: 'many' }))).toBe('ERR_SNAPSHOT_INVALID');
    expect(
      codeOf(restore({ ...good, churn: [{ kind: 'k', next: 1, window: [1, 'x'], pending: [] }] })),
    ).toBe('ERR_SNAPSHOT_INVALID');
  });

  it('refuses a section larger than the structure it refills', () => {
    const good = JSON.parse(JSON.stringify(new World().c.snapshot())) as Record<string, unknown>;
    const window = Array.from({ length: 11 }, () => 1);
    expect(
      codeOf(() =>
        Correlator.fromSnapshot(
          { kinds: KINDS, churn: { baselineBuckets: 10, warmupBuckets: 5 } },
          { clock: { now: () => T0 } },
          { ...good, churn: [{ kind: 'k', next: 1, window, pending: [], spike: null }] },
        ),
      ),
    ).toBe('ERR_SNAPSHOT_INVALID');
  });

  it('caps large sections at limits.maxSnapshotEntries and says how much it left out', () => {
    const w = new World({ limits: { maxSnapshotEntries: 2 } });
    for (let i = 0; i < 5; i++) w.provider('session_revoked', { sessionId: fp(`s${i}`) });
    const s = w.c.snapshot();
    expect(s.revoked.sessions).toHaveLength(2);
    expect(s.truncated).toEqual({ revokedSessions: 3 });
  });
});
