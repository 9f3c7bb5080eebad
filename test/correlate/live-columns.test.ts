import { describe, expect, it } from 'vitest';
import { DigestTable } from '../../src/domain/digest-table.js';
import { LiveColumns } from '../../src/correlate/live-columns.js';
import { tokenIdentity, tokenScope } from '../../src/correlate/join-keys.js';
import type { TokenJoins } from '../../src/correlate/join-keys.js';
import { NO_OPEN, TokenStore, clearOpen, setOpen } from '../../src/correlate/token-store.js';
import type { TokenRecord } from '../../src/correlate/token-store.js';
import { fp } from './helpers.js';

const joins = (over: Partial<TokenJoins> = {}): TokenJoins => ({
  tokenIds: [],
  sessionId: undefined,
  subject: undefined,
  clientId: undefined,
  familyId: undefined,
  ...over,
});

const rec = (name: string, over: Partial<TokenRecord> = {}, kind = 'access_token'): TokenRecord => {
  const fingerprint = fp(name);
  return {
    id: tokenIdentity('n:6379', 0, kind, fingerprint),
    kind,
    fingerprint,
    joins: joins({ tokenIds: [fingerprint] }),
    firstSeenAt: 1_700_000_000_000,
    writtenAt: 1_700_000_000_005,
    writeSeen: true,
    dueAt: 1_700_000_600_000,
    seq: 7,
    endedAt: undefined,
    endType: undefined,
    endSeq: undefined,
    open: NO_OPEN,
    ...over,
  };
};

describe('TokenStore as slot columns', () => {
  it('gives back what was put, field for field, whatever the shape of id, fingerprint and joins', () => {
    const s = new TokenStore(100, () => undefined);
    const shapes: TokenRecord[] = [
      rec('a'),
      rec('b', {
        dueAt: null,
        seq: undefined,
        writeSeen: false,
        open: { ttl_exceeds_policy: 'f' },
      }),
      rec('c', {
        dueAt: undefined,
        joins: joins({ tokenIds: [fp('jti'), fp('c')], sessionId: fp('c'), subject: 'u' }),
      }),
      rec('d', { id: 'not-an-identity', fingerprint: 'plain', endedAt: 5, endType: 'expired' }),
      rec('e', { fingerprint: fp('not-the-id-tail') }),
      rec('f', { joins: joins({ sessionId: fp('f'), subject: 'u', clientId: '', familyId: 'x' }) }),
    ];
    for (const r of shapes) s.put(r);
    for (const r of shapes) expect(s.get(r.id)).toEqual(r);
    expect([...s.values()].map((r) => r.id)).toEqual(shapes.map((r) => r.id));
    expect(s.size).toBe(shapes.length);
    expect(s.get(rec('zz').id)).toBeUndefined();
  });

  it('finds a slot by scope and fingerprint exactly as by the id they make, digest given or not', () => {
    const s = new TokenStore(100, () => undefined);
    const digestOf = (f: string) =>
      Buffer.from(f.slice(f.lastIndexOf(':') + 1), 'hex').toString('latin1');
    const shapes: TokenRecord[] = [
      rec('a'),
      rec('b', {}, 'refresh_token'),
      rec('d', { id: 'not-an-identity', fingerprint: 'plain' }),
      rec('e', { fingerprint: fp('not-the-id-tail') }),
      rec('w', {
        id: tokenIdentity('n:6379', 0, 'access_token', 'whole-fp'),
        fingerprint: 'whole-fp',
      }),
    ];
    for (const r of shapes) s.put(r);
    const probes: [string, string][] = [
      ...shapes.map((r): [string, string] => [r.kind, r.fingerprint]),
      ['access_token', fp('b')], // the digest of b under another scope
      ['access_token', fp('absent')],
      ['unknown_kind', fp('a')], // a scope never seen: no code, nothing added
    ];
    const found: number[] = [];
    for (const [kind, f] of probes) {
      const scope = tokenScope('n:6379', 0, kind);
      const id = scope + f;
      const want = s.slotOf(id);
      found.push(want);
      expect(s.slotOfParts(id, scope, f)).toBe(want);
      if (/:[0-9a-f]{64}$/.test(f)) expect(s.slotOfParts(id, scope, f, digestOf(f))).toBe(want);
    }
    // a, b and the whole-fingerprint w are found; d and e (their ids are not scope + fingerprint)
    // and the rest not.
    expect(found.map((x) => x >= 0)).toEqual([true, true, false, false, true, false, false, false]);
    expect(s.slotOfParts(shapes[0]!.id, tokenScope('n:6379', 0, 'access_token'), fp('a'))).toBe(
      s.slotOf(shapes[0]!.id),
    );
    expect(s.slotOf(tokenScope('n:6379', 0, 'unknown_kind') + fp('a'))).toBe(-1);
    // The look-up by parts leaves the id's parse for an insert of the same id.
    const scope = tokenScope('n:6379', 0, 'access_token');
    const id = scope + fp('new');
    expect(s.slotOfParts(id, scope, fp('new'))).toBe(-1);
    const slot = s.put(rec('new'), true);
    expect(s.slotOf(id)).toBe(slot);
    expect(s.get(id)).toEqual(rec('new'));
  });

  it('writes open findings back through a record read from it, never to a reused slot', () => {
    const s = new TokenStore(100, () => undefined);
    s.put(rec('a'));
    const a = s.get(rec('a').id) as TokenRecord;
    setOpen(a, 'token_without_expiry', 'f1');
    expect(s.get(rec('a').id)?.open).toEqual({ token_without_expiry: 'f1' });
    clearOpen(a, 'token_without_expiry');
    expect(s.get(rec('a').id)?.open).toBe(NO_OPEN);
    // The slot goes and is reused by another token: the stale record writes nothing.
    const removed = s.remove(rec('a').id);
    expect(removed?.id).toBe(rec('a').id);
    s.put(rec('b'));
    setOpen(a, 'ttl_exceeds_policy', 'f2');
    expect(s.get(rec('b').id)?.open).toBe(NO_OPEN);
    expect(s.retained(new Set())).toEqual([]);
  });

  it('finds a fingerprint shared by two kinds by token id and session, and counts it once', () => {
    const s = new TokenStore(100, () => undefined);
    const session = (name: string, kind: string) =>
      rec(name, { joins: joins({ tokenIds: [fp(name)], sessionId: fp(name) }) }, kind);
    s.put(session('x', 'access_token'));
    s.put(session('x', 'refresh_token'));
    s.put(session('y', 'access_token'));
    const ids = (q: Parameters<TokenStore['find']>[0]) =>
      s
        .find(q)
        .map((r) => r.kind)
        .sort();
    expect(ids({ tokenIds: [fp('x')] })).toEqual(['access_token', 'refresh_token']);
    expect(ids({ sessionId: fp('x') })).toEqual(['access_token', 'refresh_token']);
    expect(s.sizes()).toMatchObject({ tokens: 3, tokenIdIndex: 2, sessionIndex: 2 });
    s.remove(session('x', 'access_token').id);
    expect(ids({ tokenIds: [fp('x')] })).toEqual(['refresh_token']);
    expect(s.sizes()).toMatchObject({ tokens: 2, tokenIdIndex: 2, sessionIndex: 2 });
    s.remove(session('x', 'refresh_token').id);
    expect(s.find({ tokenIds: [fp('x')], sessionId: fp('x') })).toEqual([]);
    expect(s.sizes()).toMatchObject({ tokens: 1, tokenIdIndex: 1, sessionIndex: 1 });
    expect(s.withFingerprint(fp('y')).map((r) => r.id)).toEqual([rec('y').id]);
  });

  it('drops interned join values with their last token', () => {
    const s = new TokenStore(100, () => undefined);
    for (const n of ['a', 'b'])
      s.put(rec(n, { joins: joins({ tokenIds: [fp(n)], subject: 'u', clientId: 'web' }) }));
    expect(s.find({ subject: 'u', clientId: 'web' })).toHaveLength(2);
    s.remove(rec('a').id);
    s.remove(rec('b').id);
    expect(s.sizes()).toMatchObject({ subjectIndex: 0, subjectClientIndex: 0 });
    s.put(rec('c', { joins: joins({ tokenIds: [fp('c')], subject: 'v' }) }));
    expect(s.find({ subject: 'u', anyClient: true })).toEqual([]);
    expect(s.find({ subject: 'v', clientId: 'web', includeClientless: true })).toHaveLength(1);
  });

  it('keeps every id findable under churn in random order (the table reuses its cells)', () => {
    const s = new TokenStore(5000, () => undefined);
    const model = new Set<string>();
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 40_000; i++) {
      const name = `t${rand(3000)}`;
      const id = rec(name).id;
      if (model.has(id) && rand(2) === 0) {
        s.remove(id);
        model.delete(id);
      } else {
        s.put(rec(name));
        model.add(id);
      }
    }
    expect(s.size).toBe(model.size);
    for (let i = 0; i < 3000; i++) {
      const r = rec(`t${i}`);
      expect(s.get(r.id)?.fingerprint).toBe(model.has(r.id) ? r.fingerprint : undefined);
      expect(s.find({ tokenIds: [r.fingerprint] })).toHaveLength(model.has(r.id) ? 1 : 0);
    }
    expect(s.sizes().tokenIdIndex).toBe(model.size);
  });

  it('evicts the least recently touched token, detached with its open findings', () => {
    const lost: TokenRecord[] = [];
    const s = new TokenStore(2, (r) => lost.push(r));
    s.put(rec('a', { open: { unattributed_token: 'f' } }));
    s.put(rec('b'));
    s.touch(rec('a').id);
    s.put(rec('c'));
    expect(lost.map((r) => r.id)).toEqual([rec('b').id]);
    s.put(rec('d'));
    expect(lost.map((r) => r.id)).toEqual([rec('b').id, rec('a').id]);
    expect(lost[1]?.open).toEqual({ unattributed_token: 'f' });
    expect(s.evictions).toBe(2);
  });
});

describe('LiveColumns', () => {
  it("keeps the fingerprint add() was given when an id's last NUL is inside it", () => {
    // slotOf cuts an id at its last NUL, add() where the given fingerprint starts: the parse
    // the look-up left behind for the same id string must not stand in for add()'s own.
    const cols = new LiveColumns(false);
    const scope = 'n\u00000\u0000x\u0000x\u0000';
    cols.add(scope + fp('a'), fp('a'), 'x'); // the look-up's scope is known, kind x
    const odd = `x\u0000${fp('b')}`;
    const id = `n\u00000\u0000x\u0000${odd}`;
    expect(cols.slotOf(id)).toBe(-1);
    const slot = cols.add(id, odd, 'x');
    expect(cols.fingerprint(slot)).toBe(odd);
    expect(cols.id(slot)).toBe(id);
    expect(cols.isStandard(slot)).toBe(false);
    expect(cols.slotOf(id)).toBe(slot);
    // A standard id looked up and then added is stored by its digest.
    const plain = `n\u00000\u0000x\u0000${fp('c')}`;
    expect(cols.slotOf(plain)).toBe(-1);
    const s2 = cols.add(plain, fp('c'), 'x');
    expect(cols.isStandard(s2)).toBe(true);
    expect(cols.fingerprint(s2)).toBe(fp('c'));
    expect(cols.slotOf(plain)).toBe(s2);
  });
});

describe('LiveColumns look-up by a carried digest', () => {
  it('finds a standard id by the digest a TokenEvent carries, as by decoding its hex', () => {
    const cols = new LiveColumns(false);
    const scope = 'n\u00000\u0000x\u0000';
    const digestOf = (f: string) => Buffer.from(f.slice(-64), 'hex').toString('latin1');
    const c = scope + fp('c');
    const d = scope + fp('d');
    expect(cols.slotOf(c, digestOf(fp('c')))).toBe(-1);
    const slot = cols.add(c, fp('c'), 'x'); // right after a look-up by the digest: stored by it
    const other = cols.add(d, fp('d'), 'x');
    expect(cols.fingerprint(slot)).toBe(fp('c'));
    expect(cols.id(slot)).toBe(c);
    expect(cols.slotOf(c)).toBe(slot); // decoded from the hex
    expect(cols.slotOf(d, digestOf(fp('d')))).toBe(other);
    expect(cols.slotOf(c, digestOf(fp('c')))).toBe(slot); // by the digest (the last parse was d)
    cols.slotOf(d);
    expect(cols.slotOf(c, 'not 32 bytes')).toBe(slot); // decoded instead
    cols.slotOf(d);
    expect(cols.slotOf(scope + fp('e'), digestOf(fp('e')))).toBe(-1);
  });
});

describe('DigestTable', () => {
  it('finds every slot by its hash after removals in any order, and shrinks back', () => {
    const hashes = new Map<number, number>();
    // Few distinct hashes: long runs that wrap around the end of the cell array.
    const t = new DigestTable((slot) => hashes.get(slot) ?? 0);
    for (let s = 0; s < 4000; s++) {
      hashes.set(s, (s % 7) * 1021 + 1023);
      t.insert(s);
    }
    const run = (hash: number) => {
      const out: number[] = [];
      for (let i = t.start(hash); t.slotAt(i) >= 0; i = t.next(i)) out.push(t.slotAt(i));
      return out;
    };
    for (let s = 0; s < 4000; s += 3) t.remove(s);
    for (let s = 0; s < 4000; s++)
      expect(run(hashes.get(s) as number).includes(s)).toBe(s % 3 !== 0);
    for (let s = 0; s < 4000; s++) t.remove(s);
    expect(t.size).toBe(0);
    expect(t.bytes).toBe(1024 * 4);
  });
});
