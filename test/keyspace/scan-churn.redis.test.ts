import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isChurn } from '../../src/correlate/rules/churn-spike.js';
import type { TokenEvent } from '../../src/domain/token-event.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * Issue #16.3 against a real redis-server under soak-like load: a SCAN (anyone's, or ours after
 * a subscriber kill) makes Redis flush its lazy-expiry backlog at once. Mixed into that flush are
 * keys due less than `expiryBacklogToleranceSeconds` ago, which their lag alone does not tell
 * from an expiration on time; counted as churn they opened churn_spike (the soak's false openings
 * at the outside SCAN and ~2 s after each CLIENT KILL TYPE pubsub). A true burst still opens it.
 */

let redis: RedisServer;
let h: Harness | undefined;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await h?.stop();
  await redis.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const USERS = 30_000;

/**
 * soak-load.mjs's steady mix, in-process, with shorter TTLs so expirations start within seconds:
 * with tens of thousands of long-TTL keys Redis's active expire cycle falls behind and the
 * short-TTL keys pile up past due (a lazy-expiry backlog), as in the soak.
 */
function load(c: Redis, rate: number): { stop(): void; burst(ms: number): void } {
  let n = 0;
  let user = 0;
  let burstUntil = 0;
  const live: string[] = [];
  const perTick = Math.round((rate * 20) / 1000);
  const timer = setInterval(() => {
    for (let k = 0; k < perTick; k++) {
      const i = n++;
      const m = i % 10;
      if (m < 4) {
        void c.set(`oauth:access:l${i}`, 'v', 'EX', 6);
        live.push(`oauth:access:l${i}`);
      } else if (m < 6) void c.set(`oauth:refresh:l${i}`, 'v', 'EX', 12);
      else if (m < 8) void c.set(`session:l${i}`, 'v', 'EX', 10);
      else if (m === 8) void c.set(`session:l${i}`, 'v', 'PX', 3000);
      else {
        const key = live.shift();
        if (key) void c.del(key);
      }
    }
    // A 10x refresh burst: pre-seeded users' pairs rotated (deleted and rewritten, long TTLs).
    if (Date.now() < burstUntil)
      for (let k = 0; k < (perTick * 9) / 4; k++) {
        const u = user++ % USERS;
        void c
          .multi()
          .del(`oauth:access:seed${u}`, `oauth:refresh:seed${u}`)
          .set(`oauth:access:seed${u}`, 'v', 'EX', 3000)
          .set(`oauth:refresh:seed${u}`, 'v', 'EX', 86400)
          .exec();
      }
  }, 20);
  return {
    stop: () => clearInterval(timer),
    burst: (ms) => (burstUntil = Date.now() + ms),
  };
}

/** Per second and kind: what the committed token events were (type/redisEvent/backlog/lag). */
function breakdown(events: readonly TokenEvent[], from: number, to: number): string {
  const lines: string[] = [];
  for (let s = Math.floor(from / 1000); s <= Math.floor(to / 1000); s++) {
    const byKind: Record<string, Record<string, number>> = {};
    for (const e of events) {
      if (Math.floor(e.observedAt / 1000) !== s) continue;
      const lag =
        e.type !== 'expired'
          ? ''
          : e.expiryLagMs === undefined
            ? ' lag?'
            : ` lag${e.expiryLagMs > 2000 ? '>' : '<='}2s`;
      const tag = `${isChurn(e) ? 'churn' : 'not'} ${e.type}/${e.redisEvent}${e.backlog ? ' backlog' : ''}${lag}`;
      const k = (byKind[e.kind] ??= {});
      k[tag] = (k[tag] ?? 0) + 1;
    }
    lines.push(`${s}: ${JSON.stringify(byKind)}`);
  }
  return lines.join('\n');
}

describe('a lazy-expiry flush is not churn', () => {
  it('neither an outside SCAN nor our reconciliation after CLIENT KILL opens churn_spike; a burst does', async () => {
    const c = redis.client();
    for (let b = 0; b < USERS; b += 1000) {
      const p = c.pipeline();
      for (let u = b; u < b + 1000; u++) {
        p.set(`oauth:access:seed${u}`, 'v', 'EX', 3000);
        p.set(`oauth:refresh:seed${u}`, 'v', 'EX', 86400);
      }
      await p.exec();
    }
    h = startApp(redis.url, {
      yaml: `correlate:\n  churn: { warmupBuckets: 10, baselineBuckets: 120 }\n`,
    });
    const app = h.app;
    const events: TokenEvent[] = [];
    app.onCommitted((batch) => {
      for (const r of batch)
        if (r.input.type.startsWith('token.') && r.event?.type === 'token')
          events.push(r.event.event);
    });
    await app.whenReady();
    const traffic = load(redis.client(), 400);
    try {
      // Warm-up; by now every short-TTL kind has been expiring (lazily) for a while.
      await sleep(20_000);
      const other = redis.client();
      const scanAt = Date.now();
      let cursor = '0';
      do [cursor] = await other.scan(cursor, 'COUNT', 1000);
      while (cursor !== '0');
      await sleep(5_000);

      const killAt = Date.now();
      expect(await other.call('CLIENT', 'KILL', 'TYPE', 'pubsub')).toBe(1);
      await waitFor(
        async () => {
          await app.settle();
          app.ledger.flush();
          return app.ledger.list({ type: 'keyspace.gap' }).length > 0;
        },
        20_000,
        'the gap record',
      );
      await sleep(5_000);

      const burstAt = Date.now();
      traffic.burst(3_000);
      await sleep(5_000);
      traffic.stop();
      await app.settle();
      app.ledger.flush();

      const opened = app.ledger
        .list({ type: 'finding.churn_spike' })
        .filter((f) => f.attrs.state === 'opened');
      const detail = [
        `outside SCAN:\n${breakdown(events, scanAt - 1000, scanAt + 3000)}`,
        `CLIENT KILL:\n${breakdown(events, killAt - 1000, killAt + 4000)}`,
        `openings: ${opened.map((f) => `${f.kind} +${f.time - scanAt} ms`).join(', ')}`,
      ].join('\n');

      // The drill holds what it must: each flush delivered expirations due less than the
      // tolerance ago (they, not the long-due backlog, used to be counted as churn).
      const flushed = (from: number, to: number) =>
        events.filter(
          (e) =>
            e.type === 'expired' &&
            e.observedAt >= from &&
            e.observedAt < to &&
            e.expiryLagMs !== undefined &&
            e.expiryLagMs <= 2000,
        );
      expect(flushed(scanAt, scanAt + 1500).length, detail).toBeGreaterThan(20);
      expect(flushed(killAt, killAt + 3000).length, detail).toBeGreaterThan(20);
      // Of those, only what Redis expires on time anyway may stay churn (0-4/s here, ~40/s while
      // a cohort of keys first comes due); before the fix it was every one of them (1405 here).
      expect(
        [...flushed(scanAt, scanAt + 1500), ...flushed(killAt, killAt + 3000)].filter(isChurn)
          .length,
        detail,
      ).toBeLessThan(100);

      expect(
        opened.filter((f) => f.time < burstAt).map((f) => `${f.kind} +${f.time - scanAt} ms`),
        detail,
      ).toEqual([]);
      expect(
        opened.filter((f) => f.time >= burstAt).map((f) => f.kind),
        detail,
      ).toContain('refresh_token');
    } finally {
      traffic.stop();
    }
  }, 120_000);
});
