import { describe, expect, it } from 'vitest';
import { subjectClientKey, tokenIdentity, tokenJoins } from '../../src/correlate/join-keys.js';
import type { ResolvedKindRule } from '../../src/correlate/options.js';
import { SetIndex } from '../../src/correlate/set-index.js';
import { NO_OPEN, TokenStore, clearOpen, setOpen } from '../../src/correlate/token-store.js';
import type { TokenRecord } from '../../src/correlate/token-store.js';
import type { TokenJoins } from '../../src/correlate/join-keys.js';
import { fp } from './helpers.js';

const joins = (over: Partial<TokenJoins> = {}): TokenJoins => ({
  tokenIds: [],
  sessionId: undefined,
  subject: undefined,
  clientId: undefined,
  familyId: undefined,
  ...over,
});

const rec = (id: string, j: Partial<TokenJoins> = {}): TokenRecord => ({
  id,
  kind: 'k',
  fingerprint: fp(id),
  joins: joins(j),
  firstSeenAt: 0,
  writtenAt: 0,
  writeSeen: true,
  dueAt: undefined,
  seq: undefined,
  endedAt: undefined,
  endType: undefined,
  endSeq: undefined,
  open: NO_OPEN,
});

const ids = (rs: readonly TokenRecord[]) => rs.map((r) => r.id).sort();

describe('TokenStore', () => {
  const store = () => {
    const s = new TokenStore(10, () => undefined);
    s.put(rec('a', { tokenIds: ['t1', 't2'], sessionId: 's1', subject: 'u', clientId: 'web' }));
    s.put(rec('b', { tokenIds: ['t3'], sessionId: 's1', subject: 'u', familyId: 'f1' }));
    s.put(rec('c', { subject: 'u', clientId: 'cli' }));
    s.put(rec('d', { subject: 'v', clientId: 'web', familyId: 'f1' }));
    return s;
  };

  it('finds by token id, session, family, and the union of what a query names', () => {
    const s = store();
    expect(ids(s.find({ tokenIds: ['t2'] }))).toEqual(['a']);
    expect(ids(s.find({ tokenIds: ['t1', 't3', 'zz'] }))).toEqual(['a', 'b']);
    expect(ids(s.find({ sessionId: 's1' }))).toEqual(['a', 'b']);
    expect(ids(s.find({ familyId: 'f1' }))).toEqual(['b', 'd']);
    expect(ids(s.find({ tokenIds: ['t1'], familyId: 'f1' }))).toEqual(['a', 'b', 'd']);
    expect(s.find({})).toEqual([]);
  });

  it('finds by subject: one client, clientless too on request, or any client', () => {
    const s = store();
    expect(ids(s.find({ subject: 'u', clientId: 'web' }))).toEqual(['a']);
    expect(ids(s.find({ subject: 'u', clientId: 'web', includeClientless: true }))).toEqual([
      'a',
      'b',
    ]);
    expect(ids(s.find({ subject: 'u', anyClient: true }))).toEqual(['a', 'b', 'c']);
    // A subject alone (no client, not anyClient) names nothing.
    expect(s.find({ subject: 'u' })).toEqual([]);
    expect(ids(s.find({ subject: 'v', clientId: 'web' }))).toEqual(['d']);
  });

  it('un-indexes on remove, on put over the same id, on rejoin and on eviction', () => {
    const evicted: string[] = [];
    const s = new TokenStore(2, (r) => evicted.push(r.id));
    s.put(rec('a', { tokenIds: ['t1'], sessionId: 's1', subject: 'u', familyId: 'f' }));
    s.put(rec('a', { tokenIds: ['t2'] }));
    expect(s.find({ tokenIds: ['t1'] })).toEqual([]);
    expect(s.find({ sessionId: 's1' })).toEqual([]);
    expect(ids(s.find({ tokenIds: ['t2'] }))).toEqual(['a']);
    expect(s.sizes()).toEqual({
      tokens: 1,
      tokenIdIndex: 1,
      sessionIndex: 0,
      subjectClientIndex: 0,
      subjectIndex: 0,
      familyIndex: 0,
    });
    const a = s.get('a') as TokenRecord;
    s.rejoin(a, joins({ tokenIds: ['t9'], subject: 'u', clientId: 'c', familyId: 'f' }));
    expect(s.find({ tokenIds: ['t2'] })).toEqual([]);
    expect(ids(s.find({ tokenIds: ['t9'] }))).toEqual(['a']);
    expect(s.sizes()).toEqual({
      tokens: 1,
      tokenIdIndex: 1,
      sessionIndex: 0,
      subjectClientIndex: 1,
      subjectIndex: 1,
      familyIndex: 1,
    });
    s.put(rec('b', { tokenIds: ['t5'] }));
    s.touch('a');
    s.put(rec('c', { tokenIds: ['t6'] }));
    expect(evicted).toEqual(['b']);
    expect(s.evictions).toBe(1);
    expect(s.find({ tokenIds: ['t5'] })).toEqual([]);
    expect([...s.values()].map((r) => r.id)).toEqual(['a', 'c']);
    expect(s.remove('a')?.id).toBe('a');
    expect(s.remove('a')).toBeUndefined();
    expect(s.find({ familyId: 'f' })).toEqual([]);
    expect(s.size).toBe(1);
    expect(s.sizes().sessionIndex + s.sizes().subjectIndex + s.sizes().familyIndex).toBe(0);
  });

  it('frees an evicted token unread when evictedMatter says no, unless it has open findings', () => {
    const evicted: string[] = [];
    let matter = false;
    const s = new TokenStore(2, (r) => evicted.push(r.id), { evictedMatter: () => matter });
    s.put(rec('a', { tokenIds: ['t1'], subject: 'u' }));
    const b = rec('b');
    s.put(b);
    setOpen(s.get('b') as TokenRecord, 'ttl_exceeds_policy', 'f1');
    s.put(rec('c')); // evicts a: no open findings, nobody needs it
    expect(evicted).toEqual([]);
    expect(s.evictions).toBe(1);
    // Unread, yet un-indexed: its join values name nothing any more.
    expect(s.find({ tokenIds: ['t1'] })).toEqual([]);
    expect(s.sizes().subjectIndex).toBe(0);
    s.put(rec('d')); // evicts b: its open finding must be resolved by whoever listens
    expect(evicted).toEqual(['b']);
    matter = true;
    s.put(rec('e')); // evicts c, now asked for
    expect(evicted).toEqual(['b', 'c']);
    expect(s.evictions).toBe(3);
    expect([...s.values()].map((r) => r.id)).toEqual(['d', 'e']);
  });

  it('put(rec, absent) stores a new id without looking it up again', () => {
    const s = new TokenStore(4, () => undefined);
    const slot = s.put(rec('a', { tokenIds: ['t1'] }), true);
    expect(s.slotOf('a')).toBe(slot);
    expect(ids(s.find({ tokenIds: ['t1'] }))).toEqual(['a']);
  });

  it('setOpen copies the shared NO_OPEN on first write; clearOpen goes back to it', () => {
    const r = rec('a');
    clearOpen(r, 'ttl_exceeds_policy');
    expect(r.open).toBe(NO_OPEN);
    setOpen(r, 'ttl_exceeds_policy', 'f1');
    setOpen(r, 'unattributed_token', 'f2');
    expect(NO_OPEN).toEqual({});
    expect(r.open).toEqual({ ttl_exceeds_policy: 'f1', unattributed_token: 'f2' });
    clearOpen(r, 'ttl_exceeds_policy');
    expect(r.open).toEqual({ unattributed_token: 'f2' });
    clearOpen(r, 'unattributed_token');
    expect(r.open).toBe(NO_OPEN);
  });
});

describe('SetIndex', () => {
  it('stores one member bare and several as a set, both ways', () => {
    const ix = new SetIndex();
    ix.add('k', 'a');
    ix.add('k', 'a');
    expect(ix.members('k')).toEqual(['a']);
    ix.add('k', 'b');
    ix.add('k', 'c');
    expect(ix.members('k').sort()).toEqual(['a', 'b', 'c']);
    ix.delete('k', 'b');
    ix.delete('k', 'zz');
    expect(ix.members('k').sort()).toEqual(['a', 'c']);
    ix.delete('k', 'a');
    expect(ix.members('k')).toEqual(['c']);
    // Back to a bare member: adding the same one again keeps one.
    ix.add('k', 'c');
    expect(ix.members('k')).toEqual(['c']);
    ix.delete('k', 'x');
    expect(ix.size).toBe(1);
    ix.delete('k', 'c');
    expect(ix.size).toBe(0);
    expect(ix.members('k')).toEqual([]);
    ix.delete('nothing', 'c');
    expect(ix.size).toBe(0);
  });

  it('drops a key whose set empties', () => {
    const ix = new SetIndex();
    ix.add('k', 'a');
    ix.add('k', 'b');
    ix.add('j', 'a');
    ix.delete('k', 'a');
    ix.delete('k', 'b');
    expect(ix.size).toBe(1);
    expect(ix.members('k')).toEqual([]);
  });
});

describe('join keys', () => {
  const rule = (over: Partial<ResolvedKindRule['joins']>, idIsFp = true): ResolvedKindRule => ({
    kind: 'k',
    joins: {
      tokenId: undefined,
      sessionId: undefined,
      subject: undefined,
      clientId: undefined,
      familyId: undefined,
      ...over,
    },
    fingerprintIsTokenId: idIsFp,
    maxTtlSeconds: undefined,
    requireProviderEvent: false,
  });

  it('takes the named attributes, empty ones as absent', () => {
    const j = tokenJoins(
      {
        fingerprint: fp('key'),
        keyAttrs: { jti: fp('j'), sid: 's', sub: '', client: 'web', fam: 'f', other: fp('o') },
      },
      rule({
        tokenId: ['jti', 'missing'],
        sessionId: 'sid',
        subject: 'sub',
        clientId: 'client',
        familyId: 'fam',
      }),
    );
    expect(j).toEqual({
      tokenIds: [fp('key'), fp('j')],
      sessionId: 's',
      subject: undefined,
      clientId: 'web',
      familyId: 'f',
    });
  });

  it('without tokenId joins, counts every unclaimed fingerprint-shaped attribute as a token id', () => {
    const j = tokenJoins(
      {
        fingerprint: fp('key'),
        keyAttrs: { sid: fp('s'), a: fp('a'), b: 'not-a-fingerprint', c: fp('key') },
      },
      rule({ sessionId: 'sid' }, false),
    );
    expect(j.tokenIds).toEqual([fp('a'), fp('key')]);
    expect(j.sessionId).toBe(fp('s'));
    // No rule: the fingerprint is the token id, and so is any fingerprint-shaped attribute.
    expect(tokenJoins({ fingerprint: 'x', keyAttrs: { y: fp('y'), z: 'z' } }, undefined)).toEqual({
      tokenIds: ['x', fp('y')],
      sessionId: undefined,
      subject: undefined,
      clientId: undefined,
      familyId: undefined,
    });
  });

  it('lists each token id once, in first-seen order, the fingerprint first', () => {
    const keyAttrs = { a: fp('a'), token: fp('key'), a2: fp('a'), b: fp('b'), key: fp('key') };
    expect(tokenJoins({ fingerprint: fp('key'), keyAttrs }, undefined).tokenIds).toEqual([
      fp('key'),
      fp('a'),
      fp('b'),
    ]);
    const named = rule({ tokenId: ['token', 'a', 'a2', 'b'] });
    expect(tokenJoins({ fingerprint: fp('key'), keyAttrs }, named).tokenIds).toEqual([
      fp('key'),
      fp('a'),
      fp('b'),
    ]);
    const notOwn = rule({ tokenId: ['a2', 'token', 'a'] }, false);
    expect(tokenJoins({ fingerprint: fp('key'), keyAttrs }, notOwn).tokenIds).toEqual([
      fp('a'),
      fp('key'),
    ]);
  });

  it('builds distinct keys for distinct parts', () => {
    expect(subjectClientKey('u', undefined)).toBe(subjectClientKey('u', ''));
    expect(subjectClientKey('u', 'c')).not.toBe(subjectClientKey('uc', undefined));
    expect(subjectClientKey('u', 'c')).toBe('u\u0000c');
    expect(tokenIdentity('n', 1, 'k', 'f')).toBe('n\u00001\u0000k\u0000f');
  });
});
