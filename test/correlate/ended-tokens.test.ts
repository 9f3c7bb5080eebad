import { describe, expect, it } from 'vitest';
import { EndedTokens } from '../../src/correlate/ended-tokens.js';
import { tokenIdentity } from '../../src/correlate/join-keys.js';
import type { TokenRecord } from '../../src/correlate/token-store.js';
import { fp } from './helpers.js';

const NODE = 'redis-a:6379';

function ended(n: number, over: Partial<TokenRecord> = {}): TokenRecord {
  const fingerprint = fp(`t${n}`);
  return {
    id: tokenIdentity(NODE, 0, 'access_token', fingerprint),
    kind: 'access_token',
    fingerprint,
    joins: {
      tokenIds: [fingerprint, fp(`jti${n}`)],
      sessionId: undefined,
      subject: `user${n % 10}`,
      clientId: 'web',
      familyId: undefined,
    },
    firstSeenAt: 1_700_000_000_000 + n,
    writtenAt: 1_700_000_000_500 + n,
    writeSeen: true,
    dueAt: 1_700_000_600_000 + n,
    seq: n + 1,
    endedAt: 1_700_000_001_000 + n,
    endType: 'deleted',
    endSeq: n + 2,
    open: {},
    ...over,
  };
}

describe('EndedTokens', () => {
  it('gives back what was put, field for field, whatever the shape of id and joins', () => {
    const s = new EndedTokens(100);
    const odd: TokenRecord = ended(2, {
      id: 'not-an-identity',
      fingerprint: 'plain-fingerprint',
      joins: {
        tokenIds: ['jti-not-a-fingerprint'],
        sessionId: 'sess-1',
        subject: 'bob',
        clientId: undefined,
        familyId: 'fam-1',
      },
      writeSeen: false,
      dueAt: null,
      seq: undefined,
      endSeq: undefined,
      endType: 'expired',
    });
    const other = ended(3, { fingerprint: fp('elsewhere'), dueAt: undefined, endedAt: undefined });
    const otherKey = ended(4, { id: tokenIdentity(NODE, 3, 'access_token', fp('k2')) });
    for (const r of [ended(1), odd, other, otherKey]) {
      s.put(r);
      expect(s.get(r.id)).toEqual(r);
    }
    expect(s.size).toBe(4);
    expect(s.get(ended(9).id)).toBeUndefined();
    expect(s.get('unknown')).toBeUndefined();
  });

  it('finds by every join key, as the live view does', () => {
    const s = new EndedTokens(100);
    for (let n = 0; n < 20; n++) s.put(ended(n));
    const ids = (q: Parameters<EndedTokens['find']>[0]) => s.find(q).map((r) => r.id);
    expect(ids({ tokenIds: [fp('jti7')] })).toEqual([ended(7).id]);
    expect(ids({ tokenIds: [fp('t7'), fp('t8'), fp('nothing')] })).toEqual([
      ended(7).id,
      ended(8).id,
    ]);
    expect(ids({ subject: 'user3', anyClient: true })).toEqual([ended(3).id, ended(13).id]);
    expect(ids({ subject: 'user3', clientId: 'web' })).toEqual([ended(3).id, ended(13).id]);
    expect(ids({ subject: 'user3', clientId: 'ios' })).toEqual([]);
    s.put(ended(30, { joins: { ...ended(30).joins, clientId: undefined, sessionId: 's30' } }));
    expect(ids({ subject: 'user0', clientId: 'ios', includeClientless: true })).toEqual([
      ended(30).id,
    ]);
    expect(ids({ sessionId: 's30' })).toEqual([ended(30).id]);
    expect(ids({ familyId: 'none' })).toEqual([]);
  });

  it('keeps insertion order, moves a token ended again to the newest end, and evicts the oldest', () => {
    const s = new EndedTokens(3);
    for (let n = 0; n < 3; n++) s.put(ended(n));
    s.put(ended(0, { endedAt: 5 }));
    expect([...s.values()].map((r) => r.id)).toEqual([ended(1).id, ended(2).id, ended(0).id]);
    s.put(ended(3));
    expect([...s.values()].map((r) => r.id)).toEqual([ended(2).id, ended(0).id, ended(3).id]);
    expect(s.evictions).toBe(1);
    expect(s.find({ tokenIds: [fp('jti1')] })).toEqual([]);
    expect(s.get(ended(0).id)?.endedAt).toBe(5);
  });

  it(
    'returns to empty under churn once everything ended before the horizon',
    { timeout: 30_000 },
    () => {
      const s = new EndedTokens(1_000_000);
      const recs = Array.from({ length: 5000 }, (_, n) => ended(n));
      for (let round = 0; round < 4; round++) {
        for (const r of recs) s.put(r);
        // Tokens ended again (delete after re-write) leave no duplicates or stale order behind.
        for (let again = 0; again < 3; again++) for (const r of recs.slice(0, 4000)) s.put(r);
        expect(s.size).toBe(5000);
        expect([...s.values()]).toHaveLength(5000);
        s.dropEndedBefore(Number.POSITIVE_INFINITY);
        expect(s.size).toBe(0);
        expect(s.find({ subject: 'user1', anyClient: true })).toEqual([]);
      }
      s.put(ended(1));
      s.dropEndedBefore(ended(1).endedAt as number);
      expect(s.size).toBe(1);
      s.dropEndedBefore((ended(1).endedAt as number) + 1);
      expect(s.size).toBe(0);
    },
  );
});
