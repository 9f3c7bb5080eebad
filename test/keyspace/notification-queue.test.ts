import { describe, expect, it } from 'vitest';
import {
  InFlightKeys,
  discardDropped,
  keyBits,
  pendingItems,
  type Item,
  type Prepared,
} from '../../src/keyspace/notification-batch.js';
import { NotificationQueue } from '../../src/keyspace/notification-queue.js';

/** One socket chunk holding `keys` back to back, each with its range. */
function chunkOf(keys: string[]): { chunk: Buffer; ranges: [number, number][] } {
  const chunk = Buffer.from(keys.join('|'), 'latin1');
  const ranges: [number, number][] = [];
  let at = 0;
  for (const k of keys) {
    ranges.push([at, at + k.length]);
    at += k.length + 1;
  }
  return { chunk, ranges };
}

const plain = (it: Item) => ({
  event: it.event,
  key: it.key.toString('latin1'),
  at: it.at,
  ...(it.pos ? { pos: it.pos } : {}),
  ...(it.migrated !== undefined ? { migrated: it.migrated } : {}),
});

describe('NotificationQueue', () => {
  it('gives back what was pushed, in order, as Items whose keys are the ranges given', () => {
    const q = new NotificationQueue();
    const { chunk, ranges } = chunkOf(['oauth:access:a', 'oauth:access:bb', 'x']);
    q.push('set', chunk, ...ranges[0]!, 1);
    q.push('expire', chunk, ...ranges[1]!, 2, { epoch: 1, marker: 2, offset: 3 });
    q.push('restore', chunk, ...ranges[2]!, 3, undefined, true);
    expect(q.length).toBe(3);
    expect(q.take(2).map(plain)).toEqual([
      { event: 'set', key: 'oauth:access:a', at: 1 },
      { event: 'expire', key: 'oauth:access:bb', at: 2, pos: { epoch: 1, marker: 2, offset: 3 } },
    ]);
    expect(q.length).toBe(1);
    expect(q.take(10).map(plain)).toEqual([{ event: 'restore', key: 'x', at: 3, migrated: true }]);
    expect(q.length).toBe(0);
    expect(q.take(10)).toEqual([]);
  });

  it('keeps arrival order across growth and wrap-around, as an array would', () => {
    const q = new NotificationQueue();
    const model: ReturnType<typeof plain>[] = [];
    let n = 0;
    let seed = 7;
    const rand = (m: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % m);
    for (let round = 0; round < 300; round++) {
      const pushes = rand(round % 50 === 0 ? 5000 : 400);
      const keys = Array.from({ length: pushes }, () => `k${n++}`);
      const { chunk, ranges } = chunkOf(keys);
      keys.forEach((k, i) => {
        const pos = i % 7 === 0 ? { epoch: 1, marker: 1, offset: n } : undefined;
        q.push(i % 2 ? 'expire' : 'set', chunk, ...ranges[i]!, n + i, pos);
        model.push({ event: i % 2 ? 'expire' : 'set', key: k, at: n + i, ...(pos ? { pos } : {}) });
      });
      const take = rand(500);
      expect(q.take(take).map(plain)).toEqual(model.splice(0, take));
      expect(q.length).toBe(model.length);
    }
    expect(q.take(Infinity).map(plain)).toEqual(model);
  });

  it('reads pending keys without taking them, as pendingItems reads the same Items', () => {
    const q = new NotificationQueue();
    const keys = ['oauth:access:a', 'oauth:refresh:b\u00e9', 'c'];
    const { chunk, ranges } = chunkOf(['junk', ...keys]);
    keys.forEach((_, i) => q.push(['set', 'del', 'expire'][i]!, chunk, ...ranges[i + 1]!, i));
    const items: Item[] = keys.map((k, i) => ({
      event: ['set', 'del', 'expire'][i]!,
      key: Buffer.from(k, 'latin1'),
      at: i,
    }));
    const ref = pendingItems(items);
    expect(q.length).toBe(ref.length);
    for (let i = 0; i < keys.length; i++) {
      expect(q.event(i)).toBe(ref.event(i));
      expect(q.keyLength(i)).toBe(ref.keyLength(i));
      expect(q.keyBits(i)).toBe(ref.keyBits(i));
      expect(q.keyBits(i)).toBe(keyBits(Buffer.from(keys[i]!, 'latin1'), 0, keys[i]!.length));
      expect(q.keyString(i)).toBe(ref.keyString(i));
    }
    // after a take, index 0 is the oldest still waiting
    q.take(1);
    expect(q.keyString(0)).toBe(keys[1]);
    expect(q.event(1)).toBe('expire');
  });

  it('hashes a pending key once, and never answers a reused slot with a stale hash', () => {
    const q = new NotificationQueue();
    const keys = Array.from({ length: 12_000 }, (_, i) => `oauth:access:${i}`);
    const { chunk, ranges } = chunkOf(keys);
    const bitsOf = (k: string) => keyBits(Buffer.from(k, 'latin1'), 0, k.length);
    // Two segments of 4 096 slots: push, hash, take the first whole (it is kept as a spare)...
    for (let i = 0; i < 5000; i++) q.push('set', chunk, ...ranges[i]!, i);
    for (let j = 0; j < 5000; j++) expect(q.keyBits(j)).toBe(bitsOf(keys[j]!));
    expect(q.slots).toBe(8192);
    q.take(4500);
    expect(q.slots).toBe(4096);
    // ... then push into it again: its slots were hashed for other keys.
    for (let i = 5000; i < 12_000; i++) q.push('set', chunk, ...ranges[i]!, i);
    expect(q.slots).toBe(8192); // the spare came back as the second
    for (let j = 0; j < 7500; j++) expect(q.keyBits(j)).toBe(bitsOf(keys[4500 + j]!));
    // A cleared queue reuses nothing.
    q.clear();
    q.push('del', chunk, ...ranges[5]!, 1);
    expect(q.keyBits(0)).toBe(bitsOf(keys[5]!));
  });

  it('names the same candidates as pendingItems over the same notifications, through wrap-around and growth', () => {
    const q = new NotificationQueue();
    const events = ['set', 'expire', 'hdel', 'del', 'expired', 'sadd', 'rename_from', 'persist'];
    const keys = Array.from({ length: 2600 }, (_, i) => (i % 97 === 0 ? 'x'.repeat(40) : `k:${i}`));
    const { chunk, ranges } = chunkOf(keys);
    const items: Item[] = [];
    const push = (i: number) => {
      const event = events[(i * 7) % events.length]!;
      q.push(event, chunk, ...ranges[i]!, i);
      items.push({ event, key: Buffer.from(keys[i]!, 'latin1'), at: i });
    };
    // A looked-up set: the bits of every third key.
    const looked = new Int32Array(1 << 13);
    for (let i = 0; i < keys.length; i += 3) {
      const h = keyBits(Buffer.from(keys[i]!, 'latin1'), 0, keys[i]!.length);
      looked[h >>> 5] = looked[h >>> 5]! | (1 << (h & 31));
    }
    const check = (n: number) => {
      const want = pendingItems(items).candidates(n, 32, looked);
      expect(q.candidates(n, 32, looked)).toEqual(want);
      // Every index named is a key-changing event of a looked-up key no longer than 32 bytes.
      for (const j of want) expect(items[j]!.key.length).toBeLessThanOrEqual(32);
      return want.length;
    };
    for (let i = 0; i < 1000; i++) push(i);
    expect(check(1000)).toBeGreaterThan(100);
    q.take(900);
    items.splice(0, 900);
    for (let i = 1000; i < 1900; i++) push(i); // into the slots taken, then a new segment
    expect(check(500)).toBeGreaterThan(50);
    for (let i = 1900; i < 2600; i++) push(i); // and on
    check(items.length);
    expect(q.candidates(5000, 32, new Int32Array(1 << 13))).toEqual([]);
  });

  it('gives segments back as it drains a burst, keeping order across them', () => {
    const q = new NotificationQueue();
    const keys = Array.from({ length: 300_000 }, (_, i) => `k${i}`);
    const { chunk, ranges } = chunkOf(keys);
    for (let i = 0; i < 700; i++) q.push('set', chunk, ...ranges[i]!, i);
    expect(q.take(600).map((it) => it.at)).toEqual(Array.from({ length: 600 }, (_, i) => i));
    for (let i = 700; i < 300_000; i++) q.push('set', chunk, ...ranges[i]!, i);
    // What it holds: its notifications, in 4 096-slot segments, the first one partly taken.
    const held = () => Math.ceil((q.length + 600) / 4096) * 4096;
    expect(q.slots).toBe(held());
    let next = 600;
    const wrong: number[] = [];
    const expectNext = (items: { at: number; key: Buffer }[]) => {
      for (const it of items) {
        if (it.at !== next || it.key.toString('latin1') !== `k${next}`) wrong.push(next);
        next++;
      }
    };
    // Taken a chunk at a time, as the watcher does: never more than what is queued plus one
    // segment at each end.
    while (q.length > 0) {
      expectNext(q.take(5000));
      expect(q.slots).toBeLessThanOrEqual(q.length + 2 * 4096);
    }
    expect(q.slots).toBe(4096);
    expect(next).toBe(300_000);
    expect(wrong).toEqual([]);
  });

  it('works again after a burst that made it grow and then emptied it', () => {
    const q = new NotificationQueue();
    const keys = Array.from({ length: 200_000 }, (_, i) => `k${i}`);
    const { chunk, ranges } = chunkOf(keys);
    keys.forEach((_, i) => q.push('set', chunk, ...ranges[i]!, i));
    expect(q.length).toBe(200_000);
    expect(q.take(199_999).at(-1)?.key.toString()).toBe('k199998');
    expect(q.take(5).map((it) => it.key.toString())).toEqual(['k199999']);
    q.push('del', chunk, ...ranges[3]!, 1);
    expect(q.take(5).map(plain)).toEqual([{ event: 'del', key: 'k3', at: 1 }]);
  });

  it('drops everything on clear(), names how many and the oldest arrival, and gives slots back', () => {
    const q = new NotificationQueue();
    const keys = Array.from({ length: 5000 }, (_, i) => `k${i}`);
    const { chunk, ranges } = chunkOf(keys);
    keys.forEach((_, i) => q.push('set', chunk, ...ranges[i]!, 1000 + i, undefined, i === 7));
    // Taken from the front first: the oldest left is the 11th arrival.
    q.take(10);
    expect(q.slots).toBe(8192);
    expect(q.clear()).toEqual({ dropped: 4990, oldestAt: 1010 });
    expect(q.length).toBe(0);
    expect(q.slots).toBe(0);
    expect(q.take(5)).toEqual([]);
    expect(q.clear()).toEqual({ dropped: 0, oldestAt: NaN });
    // Nothing of before comes back: not an extra (pos / migrated), not a key.
    q.push('del', chunk, ...ranges[7]!, 2);
    q.push('expired', chunk, ...ranges[8]!, 3);
    expect(q.take(5).map(plain)).toEqual([
      { event: 'del', key: 'k7', at: 2 },
      { event: 'expired', key: 'k8', at: 3 },
    ]);
  });

  it('tells clear(each) every dropped notification; the batch in flight learns which of its tokens they changed', () => {
    const q = new NotificationQueue();
    const keys = ['oauth:access:a', 'oauth:access:b', 'oauth:access:c', 'junk', 'oauth:access:d'];
    const { chunk, ranges } = chunkOf(keys);
    const item = (
      event: string,
      k: string,
      expireAt?: number,
      kind = 'access_token',
    ): Prepared => ({
      event,
      key: Buffer.from(k, 'latin1'),
      k,
      at: 0,
      c: { kind, fingerprint: k, keyAttrs: {} },
      ...(expireAt === undefined ? {} : { expireAt }),
    });
    const batch = [
      item('set', keys[0]!, 5000),
      item('set', keys[1]!, 6000),
      item('set', keys[2]!),
      item('set', keys[2]!, NaN),
      item('set', keys[3]!, 7000, ''),
      item('set', keys[4]!, 8000),
    ];
    const flight = new InFlightKeys(batch, batch.at(-1));
    expect(flight.ownExpireOf()).toBe(batch.at(-1));
    // Right after the batch: d's own `expire` (its SET EX split by the cut): the write's TTL.
    q.push('expire', chunk, ...ranges[4]!, 1);
    q.push('expire', chunk, ...ranges[0]!, 2);
    // A change that does not touch the expiry (APPEND, HINCRBY): no reason to doubt b's reply.
    q.push('append', chunk, ...ranges[1]!, 3);
    q.push('del', chunk, ...ranges[3]!, 4);
    q.keyBits(1); // a hash already made is handed on, the others are not made for nothing
    const seen: [string, string, number][] = [];
    const r = q.clear((ev, c, start, end, bits) => {
      seen.push([ev, c.toString('latin1', start, end), bits]);
      flight.dropped(ev, c, start, end, bits);
    });
    expect(r).toEqual({ dropped: 4, oldestAt: 1 });
    const a = keys[0]!;
    expect(seen).toEqual([
      ['expire', keys[4], -1],
      ['expire', a, keyBits(Buffer.from(a), 0, a.length)],
      ['append', keys[1], -1],
      ['del', 'junk', -1],
    ]);
    // The notification that found the queue full: dropped too.
    flight.dropped('persist', chunk, ...ranges[2]!);
    // Only the batch's token keys, exactly (junk is in the batch, but no token).
    expect([...flight.hit].sort()).toEqual(['oauth:access:a', 'oauth:access:c']);
    discardDropped(batch, flight.hit);
    // a's reply may show what its dropped notification did: unknown. b's and d's stay; what was
    // not looked up (undefined) or already unknown stays so; a non-token is never touched.
    expect(batch.map((p) => p.expireAt)).toEqual([NaN, 6000, undefined, NaN, 7000, 8000]);
    // After a drop, what heads the queue came after a hole: nobody's own expire.
    expect(flight.ownExpireOf()).toBeUndefined();
  });

  it("a later `expire` of the batch's last write is its own only right after the batch", () => {
    const k = 'oauth:access:t';
    const { chunk, ranges } = chunkOf(['junk', k]);
    const write: Prepared = {
      event: 'set',
      key: Buffer.from(k),
      k,
      at: 0,
      c: { kind: 'access_token', fingerprint: k, keyAttrs: {} },
      expireAt: 1,
    };
    for (const tail of [write, undefined]) {
      // Another write between: its `expire` is a command of its own.
      const q = new NotificationQueue();
      const flight = new InFlightKeys([write], tail);
      q.push('set', chunk, ...ranges[0]!, 1);
      q.push('expire', chunk, ...ranges[1]!, 2);
      q.clear((ev, c, start, end, bits) => flight.dropped(ev, c, start, end, bits));
      expect([...flight.hit]).toEqual([k]);
      // The batch ended with a non-token notification (no tail): not even right after it.
      const q2 = new NotificationQueue();
      const flight2 = new InFlightKeys([write], tail);
      q2.push('expire', chunk, ...ranges[1]!, 3);
      q2.clear((ev, c, start, end, bits) => flight2.dropped(ev, c, start, end, bits));
      expect([...flight2.hit]).toEqual(tail ? [] : [k]);
    }
  });
});
