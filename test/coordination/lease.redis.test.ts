import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { LeaseStore, NODE_KEY_TTL_MS } from '../../src/coordination/lease.js';
import { InstanceRegistry, MAX_LIVE_INSTANCES } from '../../src/coordination/registry.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

let redis: RedisServer;
let client: Redis;
let n = 0;
/** A fresh key prefix per test: no state shared between tests. */
const prefix = (): string => `t${++n}:`;

beforeAll(async () => {
  redis = await startRedis();
  client = redis.client();
});
afterAll(async () => {
  await redis.stop();
});

const store = (p: string, id: string): LeaseStore =>
  new LeaseStore({ client, keyPrefix: p, instanceId: id });

describe('LeaseStore', () => {
  it('gives last and committed a long expiry, refreshed while held; the epoch counter none', async () => {
    const p = prefix();
    const a = new LeaseStore({ client, keyPrefix: p, instanceId: 'a', nodeKeyTtlMs: 3000 });
    const r = await a.acquire('node-1', 60_000);
    if (!r.acquired) throw new Error('not acquired');
    expect(await a.publishCommitted('node-1', r.epoch, '1.1.0')).toBe(true);
    for (const kind of ['last', 'committed'] as const) {
      expect(await client.pttl(a.key(kind, 'node-1'))).toBeGreaterThan(2000);
      await client.pexpire(a.key(kind, 'node-1'), 100);
    }
    // A renewal refreshes both: the node still has an owner.
    expect(await a.renew('node-1', r.epoch, 60_000)).toBe(true);
    for (const kind of ['last', 'committed'] as const)
      expect(await client.pttl(a.key(kind, 'node-1'))).toBeGreaterThan(2000);
    expect(await client.pttl(a.key('epoch', 'node-1'))).toBe(-1);
    // Nobody holds the node any more (a master that left): both go, the counter stays.
    expect(await a.release('node-1', r.epoch)).toBe(true);
    await new Promise((res) => setTimeout(res, 3100));
    expect(await client.exists(a.key('last', 'node-1'), a.key('committed', 'node-1'))).toBe(0);
    expect(await client.get(a.key('epoch', 'node-1'))).toBe('1');
    // The default is days, not hours.
    expect(NODE_KEY_TTL_MS).toBeGreaterThanOrEqual(24 * 3600 * 1000);
    const d = store(p, 'd');
    const r2 = await d.acquire('node-2', 60_000);
    expect(r2.acquired).toBe(true);
    expect(await client.pttl(d.key('last', 'node-2'))).toBeGreaterThan(NODE_KEY_TTL_MS - 60_000);
  });

  it('never lets two contenders hold one lease at once', async () => {
    const p = prefix();
    const a = store(p, 'a');
    const b = store(p, 'b');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).acquire('node-1', 60_000)),
    );
    expect(results.filter((r) => r.acquired)).toHaveLength(1);
    const loser = results.find((r) => !r.acquired);
    const winner = results.find((r) => r.acquired);
    expect(winner).toMatchObject({ acquired: true, epoch: 1, previous: null });
    expect(loser).toMatchObject({ acquired: false, holder: { epoch: 1 } });
  });

  it('numbers successful acquisitions with consecutive epochs and names the previous holder', async () => {
    const p = prefix();
    const ids = ['a', 'b', 'c', 'a:with:colons'];
    const seen: number[] = [];
    let previous: string | null = null;
    for (let i = 0; i < 8; i++) {
      const s = store(p, ids[i % ids.length] as string);
      const r = await s.acquire('node-1', 60_000);
      if (!r.acquired) throw new Error('not acquired');
      expect(r.previous?.instance ?? null).toBe(previous);
      seen.push(r.epoch);
      previous = s.instanceId;
      expect(await s.release('node-1', r.epoch)).toBe(true);
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('refuses renew, release and publish by a non-holder', async () => {
    const p = prefix();
    const a = store(p, 'a');
    const b = store(p, 'b');
    const r = await a.acquire('node-1', 60_000);
    expect(r.acquired).toBe(true);
    expect(await b.renew('node-1', 1, 60_000)).toBe(false);
    expect(await b.release('node-1', 1)).toBe(false);
    expect(await b.publishCommitted('node-1', 1, '1.2.3')).toBe(false);
    expect(await a.readCommitted('node-1')).toBeNull();
    // the holder with a wrong epoch is not the holder either
    expect(await a.renew('node-1', 2, 60_000)).toBe(false);
    expect(await a.renew('node-1', 1, 60_000)).toBe(true);
    expect(await a.publishCommitted('node-1', 1, '1.2.3')).toBe(true);
    expect(await b.readCommitted('node-1')).toBe('1.2.3');
    expect(await b.holder('node-1')).toEqual({ instance: 'a', epoch: 1 });
  });

  it('lets a holder whose lease expired neither renew nor publish, and the next epoch take over', async () => {
    const p = prefix();
    const a = store(p, 'a');
    const b = store(p, 'b');
    const r = await a.acquire('node-1', 60_000);
    expect(r.acquired).toBe(true);
    await client.pexpire(a.key('lease', 'node-1'), 1);
    // PEXPIRE 1: gone once a millisecond passed on the server; wait for it, not a fixed time.
    while ((await client.exists(a.key('lease', 'node-1'))) === 1)
      await new Promise((res) => setImmediate(res));
    expect(await a.renew('node-1', 1, 60_000)).toBe(false);
    expect(await a.publishCommitted('node-1', 1, '1.9.9')).toBe(false);
    const t = await b.acquire('node-1', 60_000);
    expect(t).toEqual({ acquired: true, epoch: 2, previous: { instance: 'a', epoch: 1 } });
    // the fenced holder still cannot act, even though a lease exists again
    expect(await a.renew('node-1', 1, 60_000)).toBe(false);
    expect(await a.publishCommitted('node-1', 1, '1.9.9')).toBe(false);
    expect(await a.release('node-1', 1)).toBe(false);
    expect(await b.holder('node-1')).toEqual({ instance: 'b', epoch: 2 });
  });

  it('keeps leases of different nodes apart', async () => {
    const p = prefix();
    const a = store(p, 'a');
    const b = store(p, 'b');
    expect((await a.acquire('n1', 60_000)).acquired).toBe(true);
    expect(await b.acquire('n2', 60_000)).toMatchObject({ acquired: true, epoch: 1 });
  });
});

describe('InstanceRegistry', () => {
  it('lists registered instances until their registration expires on the server clock', async () => {
    const p = prefix();
    const a = new InstanceRegistry({ client, keyPrefix: p, instanceId: 'a', ttlMs: 60_000 });
    const b = new InstanceRegistry({ client, keyPrefix: p, instanceId: 'b', ttlMs: 60_000 });
    await a.refresh();
    expect(await b.refresh()).toEqual(['a', 'b']);
    // b's registration made to expire: a no longer sees it
    const t = await client.time();
    await client.zadd(b.key, Number(t[0]) * 1000 - 1, 'b');
    expect(await a.refresh()).toEqual(['a']);
    expect(await a.live()).toEqual(['a']);
    await a.leave();
    expect(await b.live()).toEqual([]);
  });

  it('does not list a member no refresh can have written, and reads a bounded number', async () => {
    const p = prefix();
    const a = new InstanceRegistry({ client, keyPrefix: p, instanceId: 'a', ttlMs: 60_000 });
    await a.refresh();
    const t = await client.time();
    const now = Number(t[0]) * 1000;
    // Someone with write access to the coordination Redis: a ghost registered for a year (it
    // would be desired for nodes nobody then acquires), and a flood of plausible ones.
    await client.zadd(a.key, now + 365 * 24 * 3600 * 1000, 'ghost');
    expect(await a.refresh()).toEqual(['a']);
    const flood: (string | number)[] = [];
    for (let i = 0; i < 5000; i++) flood.push(now + 30_000 + i, `flood-${i}`);
    await client.zadd(a.key, ...flood);
    const live = await a.live();
    expect(live).toHaveLength(MAX_LIVE_INSTANCES);
    // Real instances refresh to now + ttl: the flood's earlier expiries come first, so the
    // bound is what protects the round; `a` itself is still added by the coordinator.
    expect(await client.zcard(a.key)).toBe(5002);
  });
});
