import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Fingerprinter } from '../../src/audit/fingerprint.js';
import { Inventory, type Snapshot } from '../../src/keyspace/inventory.js';

const f = new Fingerprinter([{ id: 'k1', key: randomBytes(32) }]);
const fp = (token: string) => f.ofLatin1(token);
const digest = (token: string) => f.digestLatin1(token);
const snapshot = (kind: string, entries: [token: string, due: number | null][]): Snapshot =>
  new Map([[kind, new Map(entries.map(([t, due]) => [digest(t), due]))]]);

describe('Inventory', () => {
  it('stores, returns copies, deletes; any fingerprint text round-trips', () => {
    const inv = new Inventory(['access_token'], f.prefix);
    const odd = [
      'plain-test-fingerprint',
      `${f.prefix}${'AB'.repeat(32)}`, // upper-case hex: kept whole, not folded into the digest
      `hmac-sha256:old:${'ab'.repeat(32)}`, // another key id
      '\u0100starts-with-the-marker',
    ];
    const all = [fp('t1'), fp('t2'), ...odd];
    all.forEach((x, i) => inv.set('access_token', x, { due: 1000 + i, written: 5, node: i }));
    inv.set('access_token', fp('t2'), { due: null, written: 6, node: 1 });
    expect(inv.size('access_token')).toBe(all.length);
    expect(inv.get('access_token', fp('t2'))).toEqual({ due: null, written: 6, node: 1 });
    const copy = inv.get('access_token', fp('t1'));
    if (copy) copy.node = 99;
    expect(inv.get('access_token', fp('t1'))?.node).toBe(0);
    expect(new Map(inv.entries('access_token')).size).toBe(all.length);
    expect([...inv.entries('access_token')].map(([k]) => k).sort()).toEqual([...all].sort());
    expect(inv.delete('access_token', odd[1] ?? '', 0)).toMatchObject({ due: 1003 });
    expect(inv.get('access_token', odd[1] ?? '')).toBeUndefined();
    expect(inv.get('access_token', `${f.prefix}${'ab'.repeat(32)}`)).toBeUndefined();
    // A freed slot is reused without leaking the old values.
    inv.set('access_token', fp('t3'), { due: Number.NaN, written: 7, node: 2 });
    expect(inv.get('access_token', fp('t3'))).toEqual({ due: Number.NaN, written: 7, node: 2 });
    expect(inv.sizes()).toEqual({ access_token: all.length });
  });

  it('grows over several column pages', () => {
    const inv = new Inventory(['s'], f.prefix);
    for (let i = 0; i < 20_000; i++) inv.set('s', fp(`t${i}`), { due: i, written: i, node: 0 });
    for (let i = 0; i < 20_000; i += 999) expect(inv.get('s', fp(`t${i}`))?.due).toBe(i);
    expect(inv.size('s')).toBe(20_000);
  });

  it('applySnapshot reports appeared, vanished and ttl_changed for its node only', () => {
    const inv = new Inventory(['a'], f.prefix);
    inv.set('a', fp('keep'), { due: 10, written: 1, node: 0 });
    inv.set('a', fp('gone'), { due: 20, written: 2, node: 0 });
    inv.set('a', fp('ttl'), { due: 30, written: 3, node: 0 });
    inv.set('a', fp('other-node'), { due: 40, written: 4, node: 1 });
    inv.beginReconcile(0);
    const changes = inv.applySnapshot(
      0,
      snapshot('a', [
        ['keep', 10],
        ['ttl', 31],
        ['new', null],
      ]),
    );
    const byChange = Object.fromEntries(changes.map((c) => [c.change, c]));
    expect(changes).toHaveLength(3);
    expect(byChange.vanished).toMatchObject({ fingerprint: fp('gone'), due: 20 });
    expect(byChange.ttl_changed).toMatchObject({ fingerprint: fp('ttl'), due: 31 });
    expect(byChange.ttl_changed?.before).toEqual({ due: 30, written: 3, node: 0 });
    expect(byChange.appeared).toMatchObject({ fingerprint: fp('new'), due: null });
    expect(inv.get('a', fp('other-node'))?.node).toBe(1);
    expect(inv.get('a', fp('ttl'))).toEqual({ due: 31, written: 3, node: 0 });
    expect(inv.get('a', fp('new'))).toEqual({ due: null, written: 0, node: 0 });
    expect(inv.get('a', fp('gone'))).toBeUndefined();
  });

  it('applySnapshot leaves tokens live events touched during the SCAN alone', () => {
    const inv = new Inventory(['a'], f.prefix);
    inv.set('a', fp('deleted-live'), { due: 1, written: 1, node: 0 });
    inv.beginReconcile(0);
    inv.delete('a', fp('deleted-live'), 0); // after SCAN saw it
    inv.set('a', fp('written-live'), { due: 99, written: 9, node: 0 }); // after SCAN missed it
    const changes = inv.applySnapshot(0, snapshot('a', [['deleted-live', 1]]));
    expect(changes).toEqual([]);
    expect(inv.get('a', fp('deleted-live'))).toBeUndefined();
    expect(inv.get('a', fp('written-live'))).toEqual({ due: 99, written: 9, node: 0 });
  });

  it('a digest the caller carries reaches the entry its fingerprint does, and counts as touched', () => {
    const inv = new Inventory(['a'], f.prefix);
    inv.set('a', fp('t1'), { due: 7, written: 1, node: 0 }, digest('t1'));
    expect(inv.get('a', fp('t1'))).toEqual({ due: 7, written: 1, node: 0 });
    inv.set('a', fp('t2'), { due: 8, written: 2, node: 0 });
    expect(inv.get('a', fp('t2'), digest('t2'))).toEqual({ due: 8, written: 2, node: 0 });
    expect(inv.get('b', fp('t2'), digest('t2'))).toBeUndefined();
    expect(inv.size('a')).toBe(2);
    inv.beginReconcile(0);
    expect(inv.delete('a', fp('t1'), 0, digest('t1'))).toEqual({ due: 7, written: 1, node: 0 });
    inv.set('a', fp('t3'), { due: 9, written: 3, node: 0 }, digest('t3'));
    expect(inv.isTouched(0, 'a', digest('t1'))).toBe(true);
    expect(inv.isTouched(0, 'a', digest('t3'))).toBe(true);
    expect(inv.isTouched(0, 'a', digest('t2'))).toBe(false);
    // SCAN saw t1 before its delete and missed t3: neither is the snapshot's to change.
    expect(
      inv.applySnapshot(
        0,
        snapshot('a', [
          ['t1', 7],
          ['t2', 8],
        ]),
      ),
    ).toEqual([]);
    expect(inv.get('a', fp('t1'))).toBeUndefined();
    expect(inv.get('a', fp('t3'))?.due).toBe(9);
  });

  it('applySnapshot honours claim() during the SCAN and keeps fingerprints of other key ids', () => {
    const inv = new Inventory(['a'], f.prefix);
    const foreign = `hmac-sha256:old:${'cd'.repeat(32)}`;
    inv.set('a', foreign, { due: 5, written: 1, node: 0 });
    inv.set('a', fp('migrating'), { due: 6, written: 2, node: 1 });
    inv.beginReconcile(0);
    // RESTORE on node 0 while it is being scanned: the move is newer than the SCAN.
    expect(inv.claim('a', fp('migrating'), 0)).toBe(true);
    const changes = inv.applySnapshot(0, snapshot('a', []));
    expect(changes).toEqual([
      {
        kind: 'a',
        fingerprint: foreign,
        change: 'vanished',
        before: { due: 5, written: 1, node: 0 },
        due: 5,
        digest: `\u0100${foreign}`,
      },
    ]);
    expect(inv.get('a', fp('migrating'))).toEqual({ due: 6, written: 2, node: 0 });
    expect(inv.kinds()).toEqual(['a']);
  });

  it('touching a kind it has no table for during a reconciliation creates none', () => {
    const inv = new Inventory(['a'], f.prefix);
    inv.beginReconcile(0);
    inv.delete('unknown', fp('x'), 0);
    expect(inv.kinds()).toEqual(['a']);
  });

  it('a token now served by another node moves without a lifecycle change', () => {
    const inv = new Inventory(['a'], f.prefix);
    inv.set('a', fp('moved'), { due: 5, written: 2, node: 0 });
    inv.beginReconcile(1);
    expect(inv.applySnapshot(1, snapshot('a', [['moved', 6]]))).toEqual([]);
    expect(inv.get('a', fp('moved'))).toEqual({ due: 6, written: 2, node: 1 });
    expect(inv.claim('a', fp('moved'), 2)).toBe(true);
    expect(inv.claim('a', fp('moved'), 2)).toBe(false);
    expect(inv.retireNode(2)).toEqual([
      { kind: 'a', fingerprint: fp('moved'), entry: { due: 6, written: 2, node: 2 } },
    ]);
    expect(inv.size('a')).toBe(0);
  });

  it('the baseline (report false) fills the inventory without building a change list', () => {
    const inv = new Inventory(['a'], f.prefix);
    inv.beginReconcile(0);
    const snap = snapshot('a', [
      ['x', 1],
      ['y', 2],
    ]);
    expect(inv.applySnapshot(0, snap, false)).toEqual([]);
    expect(inv.size('a')).toBe(2);
    expect(inv.get('a', fp('y'))?.due).toBe(2);
  });

  it('seed() stores what the baseline found unless a live event touched it or it is known', () => {
    const inv = new Inventory(['a'], f.prefix);
    inv.set('a', fp('known'), { due: 9, written: 3, node: 0 });
    inv.beginReconcile(0);
    inv.delete('a', fp('deleted-live'), 0); // a live `del` during the SCAN
    expect(inv.seed(0, 'a', digest('found'), 5)).toBe(true);
    expect(inv.seed(0, 'a', digest('found'), 5)).toBe(false);
    expect(inv.seed(0, 'a', digest('deleted-live'), 5)).toBe(false);
    expect(inv.seed(0, 'a', digest('known'), 5)).toBe(false);
    expect(inv.isTouched(0, 'a', digest('deleted-live'))).toBe(true);
    expect(inv.isTouched(0, 'a', digest('found'))).toBe(false);
    expect(inv.get('a', fp('found'))).toEqual({ due: 5, written: 0, node: 0 });
    expect(inv.get('a', fp('deleted-live'))).toBeUndefined();
    // The snapshot then changes nothing the seeds already hold.
    const snap = snapshot('a', [
      ['found', 5],
      ['known', 9],
    ]);
    expect(inv.applySnapshot(0, snap, false)).toEqual([]);
    expect(inv.size('a')).toBe(2);
  });

  const cases: [
    name: string,
    before: number | null | undefined,
    due: number | null,
    tol: number,
    changes: boolean,
  ][] = [
    ['unknown token', undefined, 10, 0, true],
    ['same due', 10, 10, 0, false],
    ['other due', 10, 11, 0, true],
    ['other due within tolerance', 10, 11, 1000, false],
    ['TTL removed, whatever the tolerance', 10, null, 1000, true],
    ['TTL added', null, 10, 1000, true],
    ['unknown due is never the same', Number.NaN, 10, 1000, true],
  ];
  for (const [name, before, due, tol, changes] of cases) {
    it(`wouldChange: ${name}`, () => {
      const inv = new Inventory(['a'], f.prefix);
      if (before !== undefined) inv.set('a', fp('t'), { due: before, written: 1, node: 0 });
      expect(inv.wouldChange(0, 'a', digest('t'), due, tol)).toBe(changes);
      inv.beginReconcile(0);
      const got = inv.applySnapshot(0, snapshot('a', [['t', due]]), true, tol);
      expect(got.length > 0).toBe(changes);
      // Within tolerance, the exact due SCAN read replaces the restored one.
      expect(inv.get('a', fp('t'))?.due).toBe(due);
    });
  }

  it("shiftDue moves one node's finite dues onto the Redis clock", () => {
    const inv = new Inventory(['a'], f.prefix);
    inv.set('a', fp('x'), { due: 100, written: 1, node: 0 });
    inv.set('a', fp('y'), { due: null, written: 1, node: 0 });
    inv.set('a', fp('z'), { due: Number.NaN, written: 1, node: 0 });
    inv.set('a', fp('other'), { due: 100, written: 1, node: 1 });
    inv.shiftDue(0, 7);
    expect(inv.get('a', fp('x'))?.due).toBe(107);
    expect(inv.get('a', fp('y'))?.due).toBeNull();
    expect(inv.get('a', fp('z'))?.due).toBeNaN();
    expect(inv.get('a', fp('other'))?.due).toBe(100);
  });

  it('dueCounts: live means valid, past due apart, each node on its own clock; freed slots not counted', () => {
    const inv = new Inventory(['a', 'b'], f.prefix);
    inv.set('a', fp('future'), { due: 2000, written: 1, node: 0 });
    inv.set('a', fp('past'), { due: 500, written: 1, node: 0 });
    inv.set('a', fp('edge'), { due: 1000, written: 1, node: 0 });
    inv.set('a', fp('nottl'), { due: null, written: 1, node: 0 });
    inv.set('a', fp('unknown'), { due: Number.NaN, written: 1, node: 0 });
    inv.set('a', fp('node1'), { due: 1500, written: 1, node: 1 }); // node 1's clock is ahead
    inv.set('a', fp('gone'), { due: 10, written: 1, node: 0 });
    inv.delete('a', fp('gone'), 0);
    const now = (node: number) => (node === 1 ? 1600 : 1000);
    expect(inv.dueCounts(now)).toEqual({
      a: { live: 3, pastDue: 3 },
      b: { live: 0, pastDue: 0 },
    });
  });
});
