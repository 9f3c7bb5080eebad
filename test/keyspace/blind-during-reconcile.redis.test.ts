import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';

/**
 * A blind spot that opens while a reconciliation runs (here the subscriber dropped mid-SCAN):
 * that SCAN may already have passed the keys written while nobody listened, and ending it must
 * not close the new blind spot too. Before the fix it did: the writes below stayed out of the
 * inventory, and out of the ledger, with no gap to say so.
 */
let redis: RedisServer;
let h: Harness;
let c: Redis;

const JUNK = 200_000;
const WRITES = 50;

beforeAll(async () => {
  redis = await startRedis();
  c = redis.client();
  // Keys no rule matches: a SCAN of COUNT 10 takes ~20 000 round trips, long enough to act during.
  await c.eval(`for i=1,${JUNK} do redis.call('SET','junk:'..i,'x') end`, 0);
  h = startApp(redis.url, { redis: ['scanCount: 10'] });
  await h.app.whenReady(60_000);
}, 90_000);

afterAll(async () => {
  await h?.stop();
  await redis?.stop();
});

async function scanCalls(): Promise<number> {
  const info = await c.info('commandstats');
  return Number(/cmdstat_scan:calls=(\d+)/.exec(info)?.[1] ?? 0);
}

describe('a blind spot that opens during a reconciliation', () => {
  it('is reconciled after it, as its own gap', async () => {
    const w = h.app.watchers[0]!;
    await waitFor(() => w.subscribed && w.baselined && !w.reconciling, 30_000, 'baselined');
    // Only the baseline has SCANned so far: one pass's calls.
    const perPass = await scanCalls();
    expect(perPass).toBeGreaterThan(JUNK / 10 / 2);

    const blind = h.app.keyspace.markBlind('test_blind', Date.now());
    await waitFor(async () => (await scanCalls()) >= perPass * 1.3, 30_000, 'a third of a pass');
    expect(w.reconciling).toBe(true);

    const droppedAt = Date.now();
    await c.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    const p = c.pipeline();
    for (let i = 0; i < WRITES; i++) p.set(`oauth:access:blind-${i}`, 'v', 'EX', 600);
    p.call('PUBSUB', 'NUMPAT');
    const replies = (await p.exec()) ?? [];
    // The precondition: the writes fell into the first SCAN, with nobody subscribed.
    expect(replies.at(-1)?.[1], 'pattern subscriptions while writing').toBe(0);
    expect(w.reconciling, 'the first SCAN still runs').toBe(true);

    await blind;
    await waitFor(
      async () => {
        await h.app.settle();
        return h.app.inventory.size('access_token') === WRITES;
      },
      20_000,
      'every write in the inventory',
    ).catch((err: unknown) => {
      throw new Error(
        `${(err as Error).message}: inventory ${h.app.inventory.size('access_token')} of ${WRITES}`,
      );
    });
    h.app.ledger.flush();
    const gaps = h.app.ledger.list({ type: 'keyspace.gap' });
    const dropped = gaps.filter((g) => g.attrs.reason === 'subscriber connection closed');
    expect(dropped).toHaveLength(1);
    expect(Number(dropped[0]!.attrs.start)).toBeGreaterThanOrEqual(droppedAt);
    expect(gaps.some((g) => g.attrs.reason === 'test_blind')).toBe(true);
    // Each write recorded once, by one of the two reconciliations.
    const appeared = h.app.ledger
      .list({ type: 'token.appeared' })
      .filter((r) => r.attrs.via === 'reconcile');
    expect(appeared).toHaveLength(WRITES);
    expect(new Set(appeared.map((r) => r.fingerprint)).size).toBe(WRITES);
  }, 90_000);
});
