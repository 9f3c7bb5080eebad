import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * runtime.heapGrowthLiftAbove against a real redis-server: a burst of writes larger than the
 * threshold lifts the heap growth bound (the flags serve would set, recorded here instead of
 * set: they are process-wide), the bound comes back once the backlog drained, followed by one
 * memory-reducing GC, and /metrics shows it. That V8 obeys the flags: backlog-heap-growth.test.ts.
 */
let redis: RedisServer;
const harnesses: Harness[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const h of harnesses) await h.stop();
  await redis.stop();
});

function app(yaml: string, withFlags = true) {
  const flags: string[] = [];
  let collections = 0;
  const h = startApp(redis.url, {
    yaml,
    reducingGc: () => void collections++,
    ...(withFlags ? { setV8Flag: (f: string) => void flags.push(f) } : {}),
  });
  harnesses.push(h);
  return { h, flags, collections: () => collections };
}

async function lifted(h: Harness): Promise<string | undefined> {
  const text = (await h.app.http.inject({ method: 'GET', url: '/metrics' })).body;
  return /^tokenwatch_heap_growth_lifted (\d)$/m.exec(text)?.[1];
}

describe('the heap growth bound during a backlog', () => {
  it('a burst over the threshold lifts it; drained, it is back with one release', async () => {
    const { h, flags, collections } = app('runtime: { heapGrowthLiftAbove: 1000 }');
    await h.app.whenReady(20_000);
    expect(h.app.heapGrowth).toBeDefined();
    expect(await lifted(h)).toBe('0');
    // 40 000 SET EX in one pipeline: Redis sends the notifications far faster than they are
    // recorded, so thousands wait at once for well over a sampling period (250 ms).
    const c = redis.client();
    const batch = c.pipeline();
    for (let i = 0; i < 40_000; i++) batch.set(`oauth:access:burst${i}`, 'v', 'EX', 600);
    await batch.exec();
    await waitFor(() => flags.length >= 1, 20_000, 'the bound lifted');
    expect(flags[0]).toBe('--heap-growing-percent=0');
    expect(await lifted(h)).toBe('1'); // until 2 s after the backlog drained
    expect(h.logs()).toMatch(/heap growth bound lifted/);
    await waitFor(() => flags.length === 2, 60_000, 'the bound back');
    expect(flags).toEqual(['--heap-growing-percent=0', '--heap-growing-percent=50']);
    expect(h.app.heapGrowth?.lifts).toBe(1);
    expect(await lifted(h)).toBe('0');
    // The inventory has every token of the burst: lifting changed nothing of what is recorded.
    expect(h.app.inventory.size('access_token')).toBe(40_000);
    // One memory-reducing GC, 2 s after the bound came back (the baseline was too small for one).
    await waitFor(() => collections() === 1, 10_000, 'the memory release');
    expect(h.app.memoryRelease?.count).toBe(1);
  }, 120_000);

  it('no lifting without the flag setter serve hands over, or with the setting null', async () => {
    const off = app('runtime: { heapGrowthLiftAbove: null }');
    const notServe = app('runtime: { heapGrowthLiftAbove: 1000 }', false);
    const fixed = app('runtime: { heapGrowthPercent: null }');
    for (const a of [off, notServe, fixed]) {
      await a.h.app.whenReady(20_000);
      expect(a.h.app.heapGrowth).toBeUndefined();
    }
    expect(off.flags).toEqual([]);
    expect(fixed.flags).toEqual([]);
  });
});
