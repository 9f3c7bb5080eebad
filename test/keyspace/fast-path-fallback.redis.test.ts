import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FrameReader } from '../../src/keyspace/pmessage-fast-path.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * The service counts what its subscriber's fast path gave up (issue #19): every node has the
 * fallback series at 0 from the start (an alert on increase() needs them), a fault in the fast
 * path's own reading counts once, is logged, ends the connection as a recorded blind spot, and
 * the next connection is read by the fast path again.
 */
let redis: RedisServer;
let h: Harness;

beforeAll(async () => {
  redis = await startRedis();
  h = startApp(redis.url);
  await h.app.whenReady(20_000);
});
afterAll(async () => {
  await h.stop();
  await redis.stop();
});

const series = async (): Promise<Map<string, number>> => {
  const text = await h.app.metrics.registry.getSingleMetricAsString(
    'tokenwatch_keyspace_fast_path_fallbacks_total',
  );
  const out = new Map<string, number>();
  for (const m of text.matchAll(/reason="(\w+)"\} (\d+)/g)) out.set(m[1]!, Number(m[2]));
  return out;
};

describe('tokenwatch_keyspace_fast_path_fallbacks_total', () => {
  it('starts at 0 for every reason, counts a fault of the fast path, and the next connection reads fast again', async () => {
    const node = h.app.watchers[0]!.label;
    const text = await h.app.metrics.registry.getSingleMetricAsString(
      'tokenwatch_keyspace_fast_path_fallbacks_total',
    );
    expect(text).toContain(`node="${node}"`);
    expect(await series()).toEqual(
      new Map([
        ['unsupported_frame', 0],
        ['pending_limit', 0],
        ['decoder_not_found', 0],
        ['read_fault', 0],
      ]),
    );

    const fastPath = h.app.watchers[0]!.fastPath!;
    const write = vi.spyOn(FrameReader.prototype, 'write');
    const c = redis.client();
    try {
      write.mockImplementationOnce(() => {
        throw new Error('scanner bug');
      });
      await c.set('oauth:access:fault-one', 'v', 'EX', 600);
      await waitFor(async () => (await series()).get('read_fault') === 1, 10_000, 'counted');
      expect(await series()).toEqual(
        new Map([
          ['unsupported_frame', 0],
          ['pending_limit', 0],
          ['decoder_not_found', 0],
          ['read_fault', 1],
        ]),
      );
      expect(h.logs()).toContain('the fast path failed reading; reconnecting');
      expect(h.logs()).toContain('scanner bug');
      // The lost socket is a blind spot like any disconnect; its reconciliation finds the write.
      await waitFor(
        async () => {
          await h.app.settle();
          h.app.ledger.flush();
          return h.app.ledger.list({ type: 'keyspace.gap' }).length >= 1;
        },
        20_000,
        'the lost connection recorded as a gap',
      );
      await waitFor(() => h.app.inventory.size('access_token') === 1, 20_000, 'reconciled');
      // The new connection is read by the fast path again, not by ioredis.
      const before = fastPath.fast;
      await c.set('oauth:access:fault-two', 'v', 'EX', 600);
      await waitFor(() => fastPath.fast >= before + 2, 10_000, 'set + expire read fast');
      expect(fastPath.fallbacks).toBe(1);
      expect((await series()).get('read_fault')).toBe(1);
    } finally {
      write.mockRestore();
      c.disconnect();
    }
  }, 60_000);
});
