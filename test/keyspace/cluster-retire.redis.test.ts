import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { keySlot } from '../../src/keyspace/cluster-slot.js';
import { slotRanges, startCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';

/**
 * A master that stops answering (SIGSTOP: its sockets stay open) while its watcher still holds
 * notifications waiting for their expiry look-ups. The cluster fails it over and tokenwatch
 * retires it. Its watcher must have applied (or given up on) those notifications before the
 * retirement: applied after it, a write would bring back a token nobody holds, for good. Before
 * the fix the look-ups hung until the node woke up, and their writes came back then.
 */
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

const KEYS = 20_000;

async function inventoryEqualsRedis(what: string): Promise<void> {
  let last = '';
  await waitFor(
    async () => {
      await h.app.settle();
      const redis = await cluster.countKeys('oauth:access:*').catch(() => -1);
      const inv = h.app.inventory.size('access_token');
      last = `redis ${redis}, inventory ${inv}`;
      return inv === redis;
    },
    45_000,
    what,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}: ${last}`);
  });
}

describe('a Redis Cluster master that stops answering', () => {
  it('is retired only after its watcher applied what it received; nothing of it comes back later', async () => {
    // The first watcher's node: the first seed a topology refresh asks, so a probe that waits
    // for the stopped node's answer would hold every refresh (and the failover) behind it.
    const first = h.app.watchers[0]!.label;
    const victim = (await cluster.masters()).find((m) => `127.0.0.1:${m.port}` === first)!;
    const node = cluster.nodes.find((n) => n.port === victim.port)!;
    const label = `127.0.0.1:${victim.port}`;
    const ranges = slotRanges(victim.slots);
    /** KEYS token keys the victim serves, new for each attempt. */
    const keysFor = (attempt: number): string[] => {
      const keys: string[] = [];
      for (let i = 0; keys.length < KEYS; i++) {
        const k = `oauth:access:stop-${attempt}-${i}`;
        const slot = keySlot(k);
        if (ranges.some(([a, b]) => slot >= a && slot <= b)) keys.push(k);
      }
      return keys;
    };
    const watcher = h.app.watchers.find((w) => w.label === label)!;
    expect(watcher.subscribed).toBe(true);

    // Write straight to the victim and stop it while its notifications are being applied. The
    // precondition: notifications of the stopped node wait for a look-up it never answers. When
    // a stop lands with nothing waiting, it is resumed (well within the failover timeout) and
    // tried again with new keys.
    let stopped = false;
    for (let attempt = 0; attempt < 5 && !stopped; attempt++) {
      const direct = new Redis({ port: victim.port, lazyConnect: true, maxRetriesPerRequest: 0 });
      direct.on('error', () => undefined);
      await direct.connect();
      await h.app.settle();
      const base = h.app.inventory.size('access_token');
      const pipe = direct.pipeline();
      for (const k of keysFor(attempt)) pipe.set(k, 'v', 'EX', 600);
      void pipe.exec().catch(() => undefined);
      const deadline = Date.now() + 20_000;
      while (h.app.inventory.size('access_token') === base && Date.now() < deadline)
        await new Promise((r) => setImmediate(r));
      node.signal('SIGSTOP');
      direct.disconnect();
      stopped = await Promise.race([
        watcher.idle().then(() => false),
        new Promise((r) => setTimeout(r, 300)).then(() => true),
      ]);
      if (!stopped) {
        node.signal('SIGCONT');
        await waitFor(() => watcher.subscribed, 20_000, 'resumed');
      }
    }
    expect(stopped, 'notifications waiting on the stopped node').toBe(true);

    try {
      // Failed over, removed, retired (the node_removed gap).
      await waitFor(() => cluster.failedOver(victim.port), 40_000, 'replica promoted');
      await waitFor(
        () => {
          h.app.ledger.flush();
          return h.app.ledger
            .list({ type: 'keyspace.gap' })
            .some((g) => g.attrs.reason === 'node_removed' && g.attrs.node === label);
        },
        40_000,
        'the stopped master retired',
      );
      expect(h.app.watchers.map((w) => w.label)).not.toContain(label);
      await inventoryEqualsRedis('inventory equals the cluster after the retirement');

      // Every token deleted where it lives now: a late write of the stopped node would show.
      await cluster.deleteKeys('oauth:access:*');
      await inventoryEqualsRedis('inventory equals the cluster after the deletions');
      expect(h.app.inventory.size('access_token')).toBe(0);
    } finally {
      node.signal('SIGCONT');
    }
    // The node wakes up: it reads the end of tokenwatch's old connections and closes them.
    // Answering a PING means it got through those reads; then tokenwatch's event loop runs.
    const probe = new Redis({ port: victim.port, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    await waitFor(async () => (await probe.ping().catch(() => '')) === 'PONG', 20_000, 'woke up');
    probe.disconnect();
    await new Promise((r) => setTimeout(r, 1000));
    await h.app.settle();
    expect(h.app.inventory.size('access_token')).toBe(0);
    expect(await cluster.countKeys('oauth:access:*')).toBe(0);
  }, 150_000);
});
