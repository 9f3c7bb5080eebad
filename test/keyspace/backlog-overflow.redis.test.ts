import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';

/**
 * A node whose notifications arrive faster than they are applied, for long: the backlog of
 * received notifications is bounded (redis.maxPendingNotifications). Past it, what waits is
 * dropped, counted and reconciled as a blind spot, and the inventory ends equal to Redis.
 */
let redis: RedisServer;
let h: Harness;
let c: Redis;

const MAX = 1000;
const TOKENS = 20_000;

beforeAll(async () => {
  redis = await startRedis();
  c = redis.client();
  h = startApp(redis.url, { redis: [`maxPendingNotifications: ${MAX}`] });
  await h.app.whenReady();
});

afterAll(async () => {
  await h?.stop();
  await redis?.stop();
});

async function metric(name: string, node: string): Promise<number> {
  const text = await h.app.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{node="${node}"}`));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('a keyspace backlog past redis.maxPendingNotifications', () => {
  it('drops what waits, records a backlog_overflow gap, and reconciles to equal Redis', async () => {
    const node = `127.0.0.1:${redis.port}`;
    expect(await metric('tokenwatch_keyspace_notifications_dropped_total', node)).toBe(0);
    // One script: Redis publishes all 2 x TOKENS notifications (set, expire) at once, megabytes
    // on the subscriber socket, read in one go, far past MAX before the first is applied.
    await c.eval(`for i=1,${TOKENS} do redis.call('SET','oauth:access:of'..i,'v','EX',600) end`, 0);
    await waitFor(
      () =>
        h.app.ledger
          .list({ type: 'keyspace.gap' })
          .some((r) => r.attrs.reason === 'backlog_overflow'),
      30_000,
      'backlog_overflow gap',
    );
    await h.app.settle();
    h.app.ledger.flush();
    const dropped = await metric('tokenwatch_keyspace_notifications_dropped_total', node);
    expect(dropped).toBeGreaterThanOrEqual(MAX);
    expect(dropped).toBeLessThan(2 * TOKENS);
    expect(h.logs()).toContain('keyspace backlog full');
    // Reconciled: the inventory equals Redis.
    expect(h.app.inventory.size('access_token')).toBe(TOKENS);
    // Every token is in the ledger once: as a live record (its `set`, or its `expire` when the
    // `set` was dropped: ttl_changed), or as appeared in a gap.
    const gaps = h.app.ledger.list({ type: 'keyspace.gap' });
    const appeared = gaps.reduce(
      (n, g) => n + ((g.attrs.appeared as Record<string, number>).access_token ?? 0),
      0,
    );
    const live = new Set(
      [
        ...h.app.ledger.list({ type: 'token.written' }),
        ...h.app.ledger.list({ type: 'token.ttl_changed' }),
      ].map((r) => r.fingerprint),
    );
    expect(appeared).toBeGreaterThan(0);
    expect(live.size + appeared).toBe(TOKENS);
    // Every gap of the run is this one's (the subscriber never disconnected).
    expect(new Set(gaps.map((g) => g.attrs.reason))).toEqual(new Set(['backlog_overflow']));
    // Live again after it: a later write is recorded as it happens.
    await c.set('oauth:access:after', 'v', 'EX', 600);
    await waitFor(
      () => h.app.inventory.size('access_token') === TOKENS + 1,
      10_000,
      'live write after the overflow',
    );
  }, 60_000);
});
