import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * runtime.releaseMemoryAfterScan against a real redis-server: the baseline SCAN of a keyspace at
 * least that large is followed by one memory-reducing GC (counted here through the GC serve would
 * hand over), a smaller one by none, and the setting null leaves the app without the release.
 * That the collection itself returns memory is checked in memory-release.test.ts.
 */
let redis: RedisServer;
const harnesses: Harness[] = [];

beforeAll(async () => {
  redis = await startRedis();
  const c = redis.client();
  const batch = c.pipeline();
  for (let i = 0; i < 1500; i++) batch.set(`oauth:access:t${i}`, 'v');
  await batch.exec();
});
afterAll(async () => {
  for (const h of harnesses) await h.stop();
  await redis.stop();
});

function app(threshold: string): { h: Harness; collections: () => number } {
  let n = 0;
  const h = startApp(redis.url, {
    yaml: `runtime: { releaseMemoryAfterScan: ${threshold} }`,
    reducingGc: () => void n++,
  });
  harnesses.push(h);
  return { h, collections: () => n };
}

describe('memory release after a large baseline', () => {
  it('one collection after a baseline of at least releaseMemoryAfterScan keys, logged', async () => {
    const { h, collections } = app('1000');
    await h.app.whenReady(20_000);
    await waitFor(() => collections() === 1, 10_000, 'the memory release');
    expect(h.app.memoryRelease?.count).toBe(1);
    expect(h.logs()).toMatch(/released the memory of a large reconciliation/);
    await new Promise((r) => setTimeout(r, 2500)); // nothing more without another large scan
    expect(collections()).toBe(1);
  });

  it('none after a smaller baseline, and no release at all when the setting is null', async () => {
    const small = app('5000');
    const off = app('null');
    await small.h.app.whenReady(20_000);
    await off.h.app.whenReady(20_000);
    expect(off.h.app.memoryRelease).toBeUndefined();
    await new Promise((r) => setTimeout(r, 3000));
    expect(small.collections()).toBe(0);
    expect(off.collections()).toBe(0);
    expect(small.h.app.memoryRelease?.count).toBe(0);
  });
});
