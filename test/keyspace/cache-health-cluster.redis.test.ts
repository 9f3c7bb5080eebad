import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';

let cluster: RedisCluster;
let h: Harness;

beforeAll(async () => {
  cluster = await startCluster(3, 0);
  h = startApp('redis://127.0.0.1:1', {
    redis: [cluster.watchConfig()],
    yaml: 'metrics:\n  keyMisses: true\n  readSampling: { windowMs: 800, everySeconds: 3600 }\n',
  });
  await h.app.whenReady(30_000);
}, 60_000);

afterAll(async () => {
  await h?.stop();
  await cluster?.stop();
});

describe('cache health on Redis Cluster', () => {
  it('counts misses on every master and aligns a sampling window on each of them', async () => {
    const c = new Redis.Cluster(
      cluster.seeds.map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) })),
    );
    c.on('error', () => undefined);
    try {
      for (let i = 0; i < 30; i++) await c.set(`oauth:access:k${i}`, 'v', 'EX', 600);
      for (let i = 0; i < 30; i++) await c.get(`oauth:access:missing${i}`);
      const misses = async () => {
        const m = h.app.metrics.registry.getSingleMetric('tokenwatch_token_lookups_total');
        const v = (await m?.get())?.values.find(
          (x) => x.labels.kind === 'access_token' && x.labels.result === 'miss',
        );
        return v?.value ?? 0;
      };
      await waitFor(async () => (await misses()) === 30, 10_000, '30 misses over 3 masters');

      const labels = h.app.watchers.map((w) => w.label);
      expect(labels).toHaveLength(3);
      let stop = false;
      const load = (async () => {
        for (let r = 0; !stop; r++) {
          for (let i = 0; i < 30; i++) await c.get(`oauth:access:k${i}`);
          await c.get(`oauth:access:gone${r}`);
        }
      })();
      const windows = await Promise.all(
        labels.map((l) => h.app.cacheHealth.sampler(l)?.sample() ?? Promise.resolve(undefined)),
      );
      stop = true;
      await load;
      // Each master's markers carried a hash tag of its own slots: no MOVED, every window closed.
      for (const w of windows) expect(w).toBeDefined();
      const reads = windows.reduce((n, w) => n + (w?.reads.access_token ?? 0), 0);
      expect(reads).toBeGreaterThan(30);
      const ratio = await h.app.metrics.registry
        .getSingleMetric('tokenwatch_token_hit_ratio')
        ?.get();
      expect(ratio?.values.find((v) => v.labels.kind === 'access_token')?.value).toBeGreaterThan(
        0.8,
      );
    } finally {
      c.disconnect();
    }
  });
});
