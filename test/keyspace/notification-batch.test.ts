import { describe, expect, it } from 'vitest';
import {
  MAX_PENDING_CHECK,
  classifyBatch,
  discardSuperseded,
  keyBits,
  pendingItems,
  planLookup,
  recordExpiries,
  type Item,
  type Prepared,
} from '../../src/keyspace/notification-batch.js';
import { dueOf, localDue, translate, ttlAt } from '../../src/keyspace/token-translation.js';
import { MAX_KEY_BYTES, NOW, rules } from './translation-harness.js';

/** The batch steps around the translation: what is kept, looked up, and what a later change voids. */

const item = (event: string, key: string, at = NOW): Item => ({
  event,
  key: Buffer.from(key, 'latin1'),
  at,
});

function prepare(notes: [string, string][]): Prepared[] {
  return classifyBatch(
    notes.map(([e, k]) => item(e, k)),
    (k) => rules.classify(k),
    MAX_KEY_BYTES,
  ).prepared;
}

/** A token key exactly `MAX_KEY_BYTES` long. */
const LONGEST = `at:${'x'.repeat(MAX_KEY_BYTES - 3)}`;

describe('classifyBatch', () => {
  it('keeps a token key of exactly maxKeyBytes and counts one byte more as unmatched', () => {
    const r = classifyBatch(
      [item('set', LONGEST), item('set', `${LONGEST}y`)],
      (k) => rules.classify(k),
      MAX_KEY_BYTES,
    );
    expect(r.prepared.map((p) => p.k)).toEqual([LONGEST]);
    expect(r.unmatched).toBe(1);
  });

  it('keeps the rename_to of a non-token key as "not a token", counts other non-token events', () => {
    const r = classifyBatch(
      [item('rename_from', 'x'), item('rename_to', 'y'), item('set', 'z')],
      (k) => rules.classify(k),
      MAX_KEY_BYTES,
    );
    expect(r.prepared.map((p) => [p.event, p.c.kind])).toEqual([['rename_to', '']]);
    expect(r.unmatched).toBe(2);
  });
});

describe('pairWrites (through classifyBatch)', () => {
  it('folds an expire into the write just before it, and nothing else', () => {
    const p = prepare([
      ['set', 'at:a'],
      ['expire', 'at:a'],
      ['set', 'at:b'],
      ['set', 'at:b'],
      ['expire', 'at:a'],
      ['restore', 'at:c'],
      ['expire', 'at:c'],
      ['expire', 'at:c'],
      ['persist', 'at:d'],
      ['expire', 'at:d'],
    ]);
    expect(p.map((x) => [x.event, x.k, x.withTtl === true, x.absorbed === true])).toEqual([
      ['set', 'at:a', true, false],
      ['expire', 'at:a', false, true],
      ['set', 'at:b', false, false],
      ['set', 'at:b', false, false],
      ['expire', 'at:a', false, false],
      ['restore', 'at:c', true, false],
      ['expire', 'at:c', false, true],
      ['expire', 'at:c', false, false],
      ['persist', 'at:d', false, false],
      ['expire', 'at:d', false, false],
    ]);
  });
});

describe('planLookup', () => {
  it('looks up only the last change of each token key that needs an expiry', () => {
    const p = prepare([
      ['set', 'at:a'],
      ['expire', 'at:a'],
      ['del', 'at:b'],
      ['rename_from', 'at:e'],
      ['rename_to', 'other'],
      ['persist', 'at:c'],
      ['hset', 'sess:d'],
      ['copy_to', 'at:f'],
      ['set', 'at:g'],
      ['persist', 'at:g'],
      ['hdel', 'sess:d'],
    ]);
    const need = planLookup(p);
    expect(need.map((x) => `${x.event} ${x.k}`)).toEqual([
      'set at:a',
      'hset sess:d',
      'copy_to at:f',
    ]);
    expect(p.find((x) => x.k === 'at:g')?.expireAt).toBeNaN();
    expect(p.filter((x) => x.expireAt !== undefined).map((x) => x.k)).toEqual(['at:g']);
  });
});

describe('recordExpiries', () => {
  it('stores each reply, NaN for a missing reply or a failed look-up', () => {
    const p = prepare([
      ['set', 'at:a'],
      ['set', 'at:b'],
    ]);
    recordExpiries(p, [NOW]);
    expect(p.map((x) => x.expireAt)).toEqual([NOW, Number.NaN]);
    recordExpiries(p, undefined);
    expect(p.map((x) => x.expireAt)).toEqual([Number.NaN, Number.NaN]);
  });
});

describe('discardSuperseded', () => {
  const looked = (key = 'at:a', event = 'set'): Prepared => {
    const [p] = prepare([[event, key]]);
    p!.expireAt = NOW + 1000;
    return p!;
  };
  const CHANGES = [
    'set',
    'expire',
    'hset',
    'rename_to',
    'restore',
    'copy_to',
    'persist',
    'del',
    'expired',
    'evicted',
    'rename_from',
  ];

  it.each(CHANGES)('a pending %s of the key voids the look-up', (event) => {
    const p = looked();
    // Not first in the pending list, so never the write's own SET EX `expire`.
    discardSuperseded(
      [p],
      pendingItems([item('hdel', 'at:z'), item(event, 'at:a')]),
      p,
      MAX_KEY_BYTES,
    );
    expect(p.expireAt).toBeNaN();
  });

  it.each(['hdel', 'new', 'append', 'hincrby'])('a pending %s of the key leaves it', (event) => {
    const p = looked();
    discardSuperseded([p], pendingItems([item(event, 'at:a')]), p, MAX_KEY_BYTES);
    expect(p.expireAt).toBe(NOW + 1000);
  });

  it('a pending change of another key leaves it', () => {
    const p = looked();
    discardSuperseded([p], pendingItems([item('del', 'at:b')]), p, MAX_KEY_BYTES);
    expect(p.expireAt).toBe(NOW + 1000);
  });

  it('keeps the TTL of the write ending the batch when its own expire opens the pending list', () => {
    for (const event of ['set', 'hset', 'restore', 'copy_to']) {
      const p = looked('at:a', event);
      discardSuperseded([p], pendingItems([item('expire', 'at:a')]), p, MAX_KEY_BYTES);
      expect(p.expireAt).toBe(NOW + 1000);
    }
  });

  it('voids it for an expire that follows an expire, or a write that is not the batch tail', () => {
    const e = looked('at:a', 'expire');
    discardSuperseded([e], pendingItems([item('expire', 'at:a')]), e, MAX_KEY_BYTES);
    expect(e.expireAt).toBeNaN();
    const w = looked();
    discardSuperseded([w], pendingItems([item('expire', 'at:a')]), looked('at:b'), MAX_KEY_BYTES);
    expect(w.expireAt).toBeNaN();
  });

  it('checks a key of exactly maxKeyBytes', () => {
    const p = looked(LONGEST);
    discardSuperseded([p], pendingItems([item('del', LONGEST)]), p, MAX_KEY_BYTES);
    expect(p.expireAt).toBeNaN();
  });

  it('leaves an unknown expiry unknown', () => {
    const p = looked();
    p.expireAt = Number.NaN;
    discardSuperseded([p], pendingItems([item('expire', 'at:a')]), p, MAX_KEY_BYTES);
    expect(p.expireAt).toBeNaN();
  });

  it(`looks at the first ${MAX_PENDING_CHECK} pending notifications only`, () => {
    const filler = Array.from({ length: MAX_PENDING_CHECK - 1 }, () => item('hdel', 'at:z'));
    const inside = looked('at:a');
    const beyond = looked('at:b');
    discardSuperseded(
      [inside, beyond],
      pendingItems([...filler, item('del', 'at:a'), item('del', 'at:b')]),
      beyond,
      MAX_KEY_BYTES,
    );
    expect(inside.expireAt).toBeNaN();
    expect(beyond.expireAt).toBe(NOW + 1000);
  });

  /** A key other than `key` whose keyBits are the same (the filter cannot tell them apart). */
  const collidingWith = (key: string): string => {
    const want = keyBits(Buffer.from(key, 'latin1'), 0, key.length);
    for (let i = 0; ; i++) {
      const other = `at:${i}`;
      if (other !== key && keyBits(Buffer.from(other, 'latin1'), 0, other.length) === want)
        return other;
    }
  };

  it('a pending key that shares the looked-up key bit but not its bytes leaves it', () => {
    const p = looked('at:a');
    const twin = collidingWith('at:a');
    discardSuperseded(
      [p],
      pendingItems([item('hdel', 'at:z'), item('del', twin)]),
      p,
      MAX_KEY_BYTES,
    );
    expect(p.expireAt).toBe(NOW + 1000);
    // and the key itself, behind its twin, still voids it
    discardSuperseded(
      [p],
      pendingItems([item('del', twin), item('del', 'at:a')]),
      p,
      MAX_KEY_BYTES,
    );
    expect(p.expireAt).toBeNaN();
  });

  it('forgets the keys of one call before the next', () => {
    discardSuperseded([looked('at:a')], pendingItems([]), undefined, MAX_KEY_BYTES);
    const b = looked('at:b');
    // `at:a` was looked up by the call before, not by this one: its change is not b's.
    discardSuperseded(
      [b],
      pendingItems([item('hdel', 'at:z'), item('del', 'at:a')]),
      b,
      MAX_KEY_BYTES,
    );
    expect(b.expireAt).toBe(NOW + 1000);
    // a call that throws midway clears its keys too
    const bad = looked('at:c');
    const throwing = [item('hdel', 'at:z'), { event: 'del', at: NOW } as unknown as Item];
    expect(() => discardSuperseded([bad], pendingItems(throwing), bad, MAX_KEY_BYTES)).toThrow();
    const d = looked('at:d');
    const hits: string[] = [];
    const spy = item('del', 'at:c');
    Object.defineProperty(spy, 'k', {
      get: () => (hits.push('at:c'), 'at:c'),
      set: () => undefined,
    });
    discardSuperseded([d], pendingItems([item('hdel', 'at:z'), spy]), d, MAX_KEY_BYTES);
    expect(d.expireAt).toBe(NOW + 1000);
    expect(hits).toEqual([]);
  });

  it('reads a pending key as a string only when its bit is the looked-up one', () => {
    const p = looked('at:a');
    const pending = [item('hdel', 'at:z'), item('del', 'at:b'), item('set', 'at:c')];
    discardSuperseded([p], pendingItems(pending), p, MAX_KEY_BYTES);
    const read = pending.filter((it) => it.k !== undefined).map((it) => it.k);
    expect(read).toEqual(
      ['at:b', 'at:c'].filter(
        (k) => keyBits(Buffer.from(k), 0, 4) === keyBits(Buffer.from('at:a'), 0, 4),
      ),
    );
    expect(p.expireAt).toBe(NOW + 1000);
  });
});

describe('expiry conversions', () => {
  it('dueOf: -1 no TTL, -2 / NaN / not looked up unknown, else the Redis-clock ms', () => {
    expect(dueOf(-1)).toBeNull();
    expect(dueOf(-2)).toBeNaN();
    expect(dueOf(Number.NaN)).toBeNaN();
    expect(dueOf(undefined)).toBeNaN();
    expect(dueOf(NOW)).toBe(NOW);
  });

  it('localDue and ttlAt move Redis-clock dues to our clock, never a negative TTL', () => {
    expect(localDue(NOW + 5000, 5000)).toBe(NOW);
    expect(localDue(null, 5000)).toBeNull();
    expect(localDue(Number.NaN, 5000)).toBeUndefined();
    expect(ttlAt(NOW + 5000 + 700, NOW, 5000)).toBe(700);
    expect(ttlAt(NOW + 5000 - 700, NOW, 5000)).toBe(0);
    expect(ttlAt(null, NOW, 0)).toBeNull();
    expect(ttlAt(Number.NaN, NOW, 0)).toBeUndefined();
  });
});

describe('translate', () => {
  const ctx = { nodeIndex: 2, label: 'n', db: 0, offsetMs: 0, expiryBacklogToleranceMs: 2000 };

  it('returns the inventory changes in order, and reads nothing it did not need', () => {
    const a = rules.classify('at:a')!;
    const b = rules.classify('at:b')!;
    const entry = { due: NOW + 9000, written: NOW - 1, node: 2 };
    const reads: string[] = [];
    const digests: (string | undefined)[] = [];
    const view = {
      get: (kind: string, fp: string, digest?: string) => {
        reads.push(fp);
        digests.push(digest);
        return fp === a.fingerprint ? entry : undefined;
      },
    };
    const p = prepare([
      ['rename_from', 'at:a'],
      ['rename_to', 'at:b'],
      ['del', 'at:b'],
    ]);
    const t = translate(p, view, ctx);
    // Each change carries the inventory's key (the digest), so applying it decodes no hex.
    const [da, db] = [a.digest, b.digest];
    expect(t.changes).toStrictEqual([
      { op: 'delete', kind: 'access_token', fingerprint: a.fingerprint, digest: da, node: 2 },
      { op: 'set', kind: 'access_token', fingerprint: b.fingerprint, digest: db, entry },
      { op: 'delete', kind: 'access_token', fingerprint: b.fingerprint, digest: db, node: 2 },
    ]);
    expect(digests).toEqual([da, db]);
    // The events carry it on (in memory only: the correlator's live view keys tokens by it).
    expect(t.events.map((e) => e.digest)).toEqual([db, db]);
    expect(Buffer.from(da ?? '', 'latin1').toString('hex')).toBe(a.fingerprint.slice(-64));
    // The del of b saw the renamed entry (from this batch), not the view.
    expect(t.events.map((e) => [e.type, e.lifetimeMs])).toEqual([
      ['renamed', undefined],
      ['deleted', NOW - (NOW - 1)],
    ]);
    // a for the rename's source; b because a RENAME onto a live token ends that token first.
    expect(reads).toEqual([a.fingerprint, b.fingerprint]);
    expect(t.pendingRename).toBeUndefined();
  });

  it('hands a rename_from ending the batch to the next one, and an absorbed expire changes nothing', () => {
    const p = prepare([
      ['set', 'at:c'],
      ['expire', 'at:c'],
      ['rename_from', 'at:a'],
    ]);
    p[0]!.expireAt = -1;
    const t = translate(p, { get: () => undefined }, ctx);
    expect(t.changes.map((c) => c.op)).toEqual(['set', 'delete']);
    expect(t.pendingRename?.c.fingerprint).toBe(rules.classify('at:a')!.fingerprint);
    expect(t.pendingRename?.entry).toBeUndefined();
  });
});
