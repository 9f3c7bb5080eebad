import { describe, expect, it } from 'vitest';
import type { TokenEvent, TokenEventType } from '../../src/domain/token-event.js';
import { tokenIdentity } from '../../src/correlate/join-keys.js';
import { resolveCorrelatorOptions } from '../../src/correlate/options.js';
import { setOpen } from '../../src/correlate/token-store.js';
import { TokenView } from '../../src/correlate/token-view.js';
import { KINDS, T0, fp } from './helpers.js';

const view = (limits = {}) =>
  new TokenView(resolveCorrelatorOptions({ kinds: KINDS, revocationLookbackSeconds: 10, limits }));

const ev = (type: TokenEventType, name: string, over: Partial<TokenEvent> = {}): TokenEvent => ({
  type,
  kind: 'session',
  fingerprint: fp(name),
  keyAttrs: { sid: fp(name), sub: 'alice' },
  node: 'n',
  db: 0,
  observedAt: T0,
  redisEvent: type,
  ...over,
});
const id = (name: string, kind = 'session') => tokenIdentity('n', 0, kind, fp(name));

describe('TokenView', () => {
  it('records a new token, and on a rewrite keeps its first sighting but takes the new write', () => {
    const v = view();
    const first = v.apply(ev('written', 's1', { dueAt: T0 + 100 }), 1);
    expect(first).toMatchObject({
      isWrite: true,
      isNew: true,
      ended: undefined,
      moved: undefined,
      lost: [],
    });
    expect(first.token).toMatchObject({
      id: id('s1'),
      firstSeenAt: T0,
      writtenAt: T0,
      writeSeen: true,
      dueAt: T0 + 100,
      seq: 1,
      joins: { sessionId: fp('s1'), subject: 'alice' },
    });
    const again = v.apply(
      ev('written', 's1', { observedAt: T0 + 5, keyAttrs: { sid: fp('s1'), sub: 'bob' } }),
      undefined,
    );
    expect(again).toMatchObject({ isWrite: true, isNew: false });
    expect(again.token).toMatchObject({
      firstSeenAt: T0,
      writtenAt: T0 + 5,
      dueAt: T0 + 100, // unknown in the event: kept
      seq: 1, // no seq given: kept
      joins: { subject: 'bob' },
    });
    expect(v.live.find({ subject: 'bob', anyClient: true })).toHaveLength(1);
    expect(v.live.find({ subject: 'alice', anyClient: true })).toEqual([]);
  });

  it('a token seen first without a write is not written; persisted means no TTL; ttl_changed is no write', () => {
    const v = view();
    const seen = v.apply(ev('appeared', 's1', { dueAt: T0 + 9 }), 1);
    expect(seen).toMatchObject({ isWrite: false, isNew: true });
    expect(seen.token).toMatchObject({ writeSeen: false, seq: 1, dueAt: T0 + 9 });
    expect(v.apply(ev('persisted', 's1'), 2).token?.dueAt).toBeNull();
    const ttl = v.apply(ev('ttl_changed', 's1', { dueAt: T0 + 50, observedAt: T0 + 3 }), 3);
    expect(ttl).toMatchObject({ isWrite: false, isNew: false });
    expect(ttl.token).toMatchObject({ dueAt: T0 + 50, writtenAt: T0, writeSeen: false, seq: 1 });
  });

  it('ends a token, known or not, and remembers it', () => {
    const v = view();
    v.apply(ev('written', 's1'), 1);
    const gone = v.apply(ev('expired', 's1', { observedAt: T0 + 7 }), 2);
    expect(gone).toMatchObject({
      token: undefined,
      isWrite: false,
      isNew: false,
      moved: undefined,
    });
    expect(gone.ended).toMatchObject({
      id: id('s1'),
      endedAt: T0 + 7,
      endType: 'expired',
      endSeq: 2,
      seq: 1,
    });
    expect(v.live.get(id('s1'))).toBeUndefined();
    expect(v.ended.get(id('s1'))).toMatchObject({ endType: 'expired' });
    const unknown = v.apply(ev('deleted', 's2', { observedAt: T0 + 8 }), 3);
    expect(unknown.ended).toMatchObject({
      id: id('s2'),
      firstSeenAt: T0 + 8,
      writeSeen: false,
      seq: undefined,
      endedAt: T0 + 8,
      endSeq: 3,
    });
  });

  it('RENAME onto a tracked key moves the token, its TTL and findings, and ends what it replaced', () => {
    const v = view();
    v.apply(ev('written', 'a', { dueAt: T0 + 100 }), 1);
    const a = v.live.get(id('a'));
    if (a) setOpen(a, 'token_without_expiry', 'f1');
    v.apply(ev('written', 'b'), 2);
    const moved = v.apply(
      ev('renamed', 'b', {
        observedAt: T0 + 5,
        renamedFrom: { kind: 'session', fingerprint: fp('a') },
      }),
      3,
    );
    expect(moved).toMatchObject({
      isWrite: false,
      isNew: false,
      moved: { from: id('a'), to: id('b') },
    });
    expect(moved.token).toMatchObject({
      id: id('b'),
      firstSeenAt: T0,
      writtenAt: T0,
      seq: 1,
      writeSeen: true,
      dueAt: T0 + 100,
      open: { token_without_expiry: 'f1' },
    });
    expect(moved.ended).toMatchObject({
      id: id('b'),
      endType: 'deleted',
      endedAt: T0 + 5,
      endSeq: 3,
      seq: 2,
    });
    expect(v.live.get(id('a'))).toBeUndefined();
    // The event's own TTL wins over the carried one.
    v.apply(
      ev('renamed', 'c', { dueAt: T0 + 9, renamedFrom: { kind: 'session', fingerprint: fp('b') } }),
      4,
    );
    expect(v.live.get(id('c'))?.dueAt).toBe(T0 + 9);
  });

  it('RENAME from an untracked key is a write; from an unknown or the same key, no write', () => {
    const v = view();
    const fromNothing = v.apply(ev('renamed', 'a', { renamedFrom: null }), 1);
    expect(fromNothing).toMatchObject({ isWrite: true, isNew: true, moved: undefined });
    expect(fromNothing.token?.writeSeen).toBe(true);
    const fromUnknown = v.apply(
      ev('renamed', 'b', { renamedFrom: { kind: 'session', fingerprint: fp('zz') } }),
      2,
    );
    expect(fromUnknown).toMatchObject({ isWrite: false, isNew: true, moved: undefined });
    const same = v.apply(
      ev('renamed', 'a', { renamedFrom: { kind: 'session', fingerprint: fp('a') } }),
      3,
    );
    expect(same).toMatchObject({ isWrite: false, isNew: false, moved: undefined });
  });

  it('reports tokens pushed out of the live view by its cap, once', () => {
    const v = view({ maxTrackedTokens: 1 });
    v.apply(ev('written', 'a'), 1);
    const change = v.apply(ev('written', 'b'), 2);
    expect(change.lost.map((r) => r.id)).toEqual([id('a')]);
    expect(v.apply(ev('written', 'c'), 3).lost.map((r) => r.id)).toEqual([id('b')]);
    // Any event of a live token makes it the most recent: the other one goes first.
    const lru = view({ maxTrackedTokens: 2 });
    lru.apply(ev('written', 'a'), 1);
    lru.apply(ev('written', 'b'), 2);
    lru.apply(ev('ttl_changed', 'a', { dueAt: T0 + 5 }), 3);
    expect(lru.apply(ev('written', 'c'), 4).lost.map((r) => r.id)).toEqual([id('b')]);
  });

  it('reports a pushed-out token without open findings only while lostMatters says so', () => {
    let matters = false;
    const opts = resolveCorrelatorOptions({
      kinds: KINDS,
      revocationLookbackSeconds: 10,
      limits: { maxTrackedTokens: 1 },
    });
    const v = new TokenView(opts, () => matters);
    v.apply(ev('written', 'a'), 1);
    expect(v.apply(ev('written', 'b'), 2).lost).toEqual([]);
    expect(v.live.evictions).toBe(1);
    const b = v.live.get(id('b'));
    if (b) setOpen(b, 'ttl_exceeds_policy', 'f');
    expect(v.apply(ev('written', 'c'), 3).lost.map((r) => r.id)).toEqual([id('b')]);
    matters = true;
    expect(v.apply(ev('written', 'd'), 4).lost.map((r) => r.id)).toEqual([id('c')]);
  });

  it('snapshots live tokens with an open finding or kept, and ended ones within the lookback', () => {
    const v = view();
    for (const n of ['a', 'b', 'c']) v.apply(ev('written', n), 1);
    const b = v.live.get(id('b'));
    if (b) setOpen(b, 'ttl_exceeds_policy', 'f');
    v.apply(ev('deleted', 'old', { observedAt: T0 - 10_001 }), 2);
    v.apply(ev('deleted', 'edge', { observedAt: T0 - 10_000 }), 3);
    v.apply(ev('deleted', 'new', { observedAt: T0 }), 4);
    const truncated: Record<string, number> = {};
    const s = v.snapshot(new Set([id('c')]), T0, 1, truncated);
    expect(s.tokens.map((t) => t.id)).toEqual([id('b'), id('c')]);
    expect(s.ended.map((t) => t.id)).toEqual([id('new')]);
    expect(truncated).toEqual({ endedTokens: 1 });
    const all: Record<string, number> = {};
    expect(v.snapshot(new Set(), T0, 10, all).ended.map((t) => t.id)).toEqual([
      id('edge'),
      id('new'),
    ]);
    expect(all).toEqual({});
    v.expire(T0 + 1);
    expect(v.ended.size).toBe(1);
  });
});
