import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';

let cluster: RedisCluster;
let h: Harness;

beforeAll(async () => {
  cluster = await startCluster(3, 1);
  h = startApp('redis://127.0.0.1:1', {
    redis: [cluster.watchConfig()],
  });
  await h.app.whenReady(30_000);
}, 60_000);

afterAll(async () => {
  await h?.stop();
  await cluster?.stop();
});

async function settled(): Promise<void> {
  await h.app.settle();
  h.app.ledger.flush();
}

function tokenRecords(type = 'token.*') {
  return h.app.ledger.list({ type });
}

async function inventoryMatchesRedis(): Promise<void> {
  let last = '';
  await waitFor(
    async () => {
      await settled();
      const redisCount = await cluster.countKeys('oauth:access:*');
      const inv = h.app.inventory.size('access_token');
      last = `redis ${redisCount}, inventory ${inv}, watchers ${JSON.stringify(h.app.watchers.map((w) => [w.label, w.subscribed, w.baselined, w.reconciling]))}`;
      return inv === redisCount;
    },
    45_000,
    'inventory equals Redis',
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}: ${last}`);
  });
}

describe('Redis Cluster', () => {
  it('holds one subscriber per master and records events from every master', async () => {
    expect(h.app.watchers).toHaveLength(3);
    const c = cluster.client();
    for (let i = 0; i < 60; i++) await c.set(`oauth:access:c${i}`, 'v', 'EX', 600);
    await waitFor(
      async () => {
        await settled();
        return tokenRecords('token.written').length >= 60;
      },
      10_000,
      '60 writes',
    );
    const nodes = new Set(tokenRecords('token.written').map((r) => r.attrs.node));
    expect(nodes.size).toBe(3);
    expect(h.app.inventory.size('access_token')).toBe(60);
    const baselines = h.app.ledger.list({ type: 'keyspace.baseline' });
    expect(baselines).toHaveLength(3);
    // Every master's subscriber is read by the fast path (issue #19), none fell back.
    for (const w of h.app.watchers) {
      expect(w.fastPath?.fallbacks, w.label).toBe(0);
      expect(w.fastPath?.fast, w.label).toBeGreaterThan(0);
    }
  });

  it('does not report slot migration as deletion and creation', async () => {
    const masters = await cluster.masters();
    const c = cluster.client();
    const key = 'oauth:access:c0';
    const slot = (await c.call('CLUSTER', 'KEYSLOT', key)) as number;
    const owner = masters.find((m) =>
      m.slots.some((r) => {
        const [a, b] = r.split('-').map(Number);
        return slot >= a! && slot <= (b ?? a)!;
      }),
    )!;
    const target = masters.find((m) => m.id !== owner.id)!;
    const before = tokenRecords().length;
    const src = new Redis({ port: owner.port });
    const dst = new Redis({ port: target.port });
    await dst.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', owner.id);
    await src.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
    const keys = (await src.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
    expect(keys).toContain(key);
    await src.call('MIGRATE', '127.0.0.1', target.port, '', 0, 5000, 'KEYS', ...keys);
    for (const m of masters) {
      const r = new Redis({ port: m.port });
      await r.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
      r.disconnect();
    }
    src.disconnect();
    dst.disconnect();
    await new Promise((r) => setTimeout(r, 300));
    await settled();
    expect(tokenRecords().slice(before)).toEqual([]);
    expect(h.app.inventory.size('access_token')).toBe(60);
    // The token lives on the target now: deleting it there is a real deletion.
    await waitFor(async () => (await c.del(key)) === 1 || true, 5000);
    await waitFor(
      async () => {
        await settled();
        return tokenRecords('token.deleted').length === 1;
      },
      10_000,
      'delete after migration',
    );
    const [del] = tokenRecords('token.deleted');
    expect(del!.attrs.node).toBe(`127.0.0.1:${target.port}`);
    expect(del!.attrs.lifetimeMs).toBeTypeOf('number');
  });

  it('follows a master failover, records the gap, and reconciles to equal Redis', async () => {
    const masters = await cluster.masters();
    const victim = masters[0]!;
    const node = cluster.nodes.find((n) => n.port === victim.port)!;
    await node.halt(true);
    const c = cluster.client();
    // Writes during the failover land once a replica has been promoted.
    await waitFor(() => cluster.failedOver(victim.port), 40_000, 'replica promoted');
    for (let i = 0; i < 40; i++) {
      await c.set(`oauth:access:f${i}`, 'v', 'EX', 600);
    }
    await h.app.keyspace.refreshTopology();
    await waitFor(
      () => h.app.watchers.length === 3 && h.app.watchers.every((w) => w.subscribed && w.baselined),
      40_000,
      'watcher moved',
    );
    expect(h.app.watchers.map((w) => w.label)).not.toContain(`127.0.0.1:${victim.port}`);
    await inventoryMatchesRedis();
    const gaps = h.app.ledger.list({ type: 'keyspace.gap' });
    expect(gaps.length).toBeGreaterThanOrEqual(1);
    expect(gaps.some((g) => g.attrs.reason === 'topology_change')).toBe(true);
    // Still watching: a delete on the promoted master is seen live.
    await c.del('oauth:access:f1');
    await inventoryMatchesRedis();
  }, 90_000); // failover detection, election and the watcher move can take a while on a loaded box
});
