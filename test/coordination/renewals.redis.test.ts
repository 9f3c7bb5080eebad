import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { pino } from 'pino';
import { coordinationSchema } from '../../src/config/coordination-schema.js';
import { Coordinator, type OwnershipHooks } from '../../src/coordination/coordinator.js';
import { LeaseStore } from '../../src/coordination/lease.js';
import { InstanceRegistry } from '../../src/coordination/registry.js';
import { createCoordinationMetrics } from '../../src/metrics/coordination-metrics.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * A takeover's hook can take long: the new owner reconciles the node (a SCAN of all of it) or
 * runs its baseline again, and the coordination round waits for it. The leases held meanwhile,
 * the one being taken over included, must still be renewed on time. Before the fix no round
 * ran while one waited: with a 1 s lease both nodes here were fenced 0.9 s into a 3 s hook.
 */
let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

const LEASE_MS = 1000;
const HOOK_MS = 3000;

describe('coordination rounds held by a long takeover', () => {
  it('renew every held lease on time and fence nothing', async () => {
    const client = redis.client();
    const config = coordinationSchema.parse({
      enabled: true,
      instanceId: 'a',
      keyPrefix: 'renewals:',
      leaseMs: LEASE_MS,
      safetyMs: 100,
    });
    const fenced: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const hooks: OwnershipHooks = {
      async acquired(a) {
        a.goLive();
        // The second node's takeover reconciles for HOOK_MS (the first went live at once).
        if (a.node === 'n2') await held;
      },
      async releasing(r) {
        r.stopRecording();
        await Promise.resolve();
      },
      fenced(f) {
        fenced.push(`${f.node} ${f.reason}`);
      },
    };
    const c = new Coordinator({
      config,
      leases: new LeaseStore({ client, keyPrefix: config.keyPrefix, instanceId: 'a' }),
      registry: new InstanceRegistry({
        client,
        keyPrefix: config.keyPrefix,
        instanceId: 'a',
        ttlMs: LEASE_MS,
      }),
      nodes: () => ['n1', 'n2'],
      hooks,
      metrics: createCoordinationMetrics(new Registry()),
      logger: pino({ level: 'silent' }),
      now: Date.now,
    });
    const started = c.start();
    const timer = setTimeout(release, HOOK_MS);
    try {
      // Sample ownership through the whole hook: both nodes stay owned all along.
      const lost: string[] = [];
      const until = Date.now() + HOOK_MS - 200;
      await new Promise((r) => setTimeout(r, 100));
      while (Date.now() < until) {
        for (const n of ['n1', 'n2']) if (c.ownerEpoch(n) === undefined) lost.push(n);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(lost).toEqual([]);
      expect(fenced).toEqual([]);
      // The registration was refreshed meanwhile too (its ttl is one lease): it expires after
      // now on the coordination Redis' clock.
      const [sec, usec] = (await client.time()) as [number, number];
      const expiry = Number(await client.zscore(`${config.keyPrefix}instances`, 'a'));
      expect(expiry).toBeGreaterThan(Number(sec) * 1000 + Number(usec) / 1000);
      await started;
      expect(c.ownerEpoch('n1')).toBe(1);
      expect(c.ownerEpoch('n2')).toBe(1);
    } finally {
      clearTimeout(timer);
      release();
      await c.close();
      client.disconnect();
    }
  }, 20_000);
});
