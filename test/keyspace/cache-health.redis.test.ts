import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { ProviderEvent } from '../../src/domain/provider-event.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';

let redis: RedisServer;
let h: Harness | undefined;

const SAMPLING = `
metrics:
  keyMisses: true
  readSampling:
    windowMs: 1500
    everySeconds: 3600
`;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  await h?.stop();
  h = undefined;
  const c = redis.client();
  await c.call('ACL', 'DELUSER', 'tw-nomonitor');
  await c.flushall();
  await c.config('SET', 'notify-keyspace-events', '');
  c.disconnect();
});

async function value(hh: Harness, name: string, labels: Record<string, string>): Promise<number> {
  const m = hh.app.metrics.registry.getSingleMetric(name);
  if (!m) return Number.NaN;
  const v = (await m.get()).values.find((x) =>
    Object.entries(labels).every(([k, l]) => x.labels[k] === l),
  );
  return v?.value ?? Number.NaN;
}

async function committed(hh: Harness, type: string, min: number): Promise<void> {
  await waitFor(
    async () => {
      await hh.app.settle();
      hh.app.ledger.flush();
      return hh.app.ledger.list({ type }).length >= min;
    },
    10_000,
    `${min} ${type} record(s)`,
  );
}

function revocation(hh: Harness, tokenId: string): ProviderEvent {
  const now = Date.now();
  return {
    provider: 'oidc',
    id: `rev-${tokenId}`,
    type: 'token_revoked',
    occurredAt: now,
    observedAt: now,
    tokenIds: [hh.app.fingerprinter.ofLatin1(tokenId)],
    outcome: 'success',
    vendorType: 'revocation',
    attributes: {},
  };
}

/** Everything tokenwatch wrote: the ledger's records and its logs. */
function everythingWritten(hh: Harness): string {
  hh.app.ledger.flush();
  return JSON.stringify(hh.app.ledger.list({})) + hh.logs();
}

describe('misses per kind (keymiss) and misses after end', () => {
  it('counts a scripted read mix exactly, by kind and by how the token ended', async () => {
    h = startApp(redis.url, { yaml: 'metrics:\n  keyMisses: true\n' });
    await h.app.whenReady();
    const c: Redis = redis.client();
    expect(String((await c.config('GET', 'notify-keyspace-events'))[1])).toContain('m');
    for (let i = 0; i < 5; i++) await c.set(`oauth:access:live-${i}`, 'v', 'EX', 600);
    await c.set('oauth:access:revoked-1', 'v', 'EX', 600);
    await c.set('oauth:access:deleted-1', 'v', 'EX', 600);
    await c.set('oauth:access:expiring-1', 'v', 'PX', 30);
    await c.hset('session:sess-live', 'u', '1');
    await c.hset('session:sess-gone', 'u', '1');
    await committed(h, 'token.written', 10);
    // The provider revokes one access token (authenticated delivery is the providers' side).
    h.app.cacheHealth.onProviderEvent(revocation(h, 'revoked-1'));
    await c.del('oauth:access:revoked-1', 'oauth:access:deleted-1', 'session:sess-gone');
    // Redis' active expiry removes it (polling it would be a read, i.e. a miss of our own).
    await committed(h, 'token.deleted', 3);
    await committed(h, 'token.expired', 1);

    // The read mix. Hits never count as misses; other keys never count at all.
    const p = c.pipeline();
    for (let i = 0; i < 5; i++) p.get(`oauth:access:live-${i}`); // 5 hits
    for (let i = 0; i < 7; i++) p.get(`oauth:access:never-${i}`); // 7 plain misses
    for (let i = 0; i < 4; i++) p.get('oauth:access:revoked-1'); // 4 after revocation
    p.mget('oauth:access:deleted-1', 'oauth:access:live-0', 'oauth:access:deleted-1'); // 2 after delete
    p.exists('oauth:access:expiring-1'); // 1 after expiry
    p.hgetall('session:sess-gone'); // 1 session after delete
    p.hget('session:sess-live', 'u'); // hit
    p.get('cache:not-a-token'); // not a token: ignored
    await p.exec();

    await waitFor(
      async () =>
        (await value(h as Harness, 'tokenwatch_token_lookups_total', {
          kind: 'access_token',
          result: 'miss',
        })) >= 14,
    );
    await h.app.settle();
    const miss = (kind: string) =>
      value(h as Harness, 'tokenwatch_token_lookups_total', { kind, result: 'miss' });
    const after = (kind: string, end: string) =>
      value(h as Harness, 'tokenwatch_token_misses_after_end_total', { kind, end });
    expect(await miss('access_token')).toBe(7 + 4 + 2 + 1);
    expect(await miss('session')).toBe(1);
    expect(await miss('refresh_token')).toBe(0);
    expect(await after('access_token', 'revoked')).toBe(4);
    expect(await after('access_token', 'deleted')).toBe(2);
    expect(await after('access_token', 'expired')).toBe(1);
    expect(await after('access_token', 'evicted')).toBe(0);
    expect(await after('session', 'deleted')).toBe(1);

    // The summary record carries counts by kind only.
    h.app.cacheHealth.flushSummary();
    await committed(h, 'cache.misses', 1);
    const rec = h.app.ledger.list({ type: 'cache.misses' })[0];
    expect(rec?.attrs).toMatchObject({
      misses: { access_token: 14, session: 1 },
      afterEnd: { access_token: { revoked: 4, deleted: 2, expired: 1 }, session: { deleted: 1 } },
    });
    const text = everythingWritten(h);
    for (const secret of ['revoked-1', 'deleted-1', 'never-', 'sess-gone', 'not-a-token'])
      expect(text).not.toContain(secret);
  });

  it('leaves the m flag and the metrics alone when keyMisses is off', async () => {
    h = startApp(redis.url);
    await h.app.whenReady();
    const c = redis.client();
    expect(String((await c.config('GET', 'notify-keyspace-events'))[1])).not.toContain('m');
    await c.get('oauth:access:nope');
    await h.app.http.ready();
    // Nothing opted in: /readyz answers exactly as before.
    expect((await h.app.http.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({
      status: 'ready',
    });
    expect(await h.app.metrics.registry.metrics()).not.toContain('tokenwatch_token_lookups_total{');
  });
});

describe('read sampling (MONITOR windows) and the hit ratio', () => {
  it('estimates the hit ratio per kind within the stated error, from exactly aligned windows', async () => {
    h = startApp(redis.url, { yaml: SAMPLING });
    await h.app.whenReady();
    const c = redis.client();
    for (let i = 0; i < 3; i++) await c.set(`oauth:access:hot-${i}`, 'v', 'EX', 600);
    await c.hset('session:s-hot', 'u', '1');
    await committed(h, 'token.written', 4);
    const sampler = h.app.cacheHealth.sampler('127.0.0.1:' + String(redis.port));
    expect(sampler).toBeDefined();
    // A steady mix: access tokens 3 hits : 1 miss (0.75), sessions 1 hit : 1 miss (0.5).
    let stop = false;
    let rounds = 0;
    const load = (async () => {
      const r = redis.client();
      while (!stop) {
        const p = r.pipeline();
        for (let i = 0; i < 3; i++) p.get(`oauth:access:hot-${i}`);
        p.get(`oauth:access:cold-${rounds}`);
        p.hgetall('session:s-hot');
        p.hgetall(`session:s-cold-${rounds}`);
        p.get('cache:other'); // not a token: in no sample
        await p.exec();
        rounds++;
      }
    })();
    const w = await (sampler as NonNullable<typeof sampler>).sample();
    stop = true;
    await load;
    expect(w).toBeDefined();
    const win = w as NonNullable<typeof w>;
    const n = win.reads.access_token ?? 0;
    expect(n).toBeGreaterThan(40);
    const ratio = await value(h, 'tokenwatch_token_hit_ratio', { kind: 'access_token' });
    const se = Math.sqrt((0.75 * 0.25) / n);
    // Markers align both streams exactly: only the round cut at each edge can skew the mix.
    expect(Math.abs(ratio - 0.75)).toBeLessThanOrEqual(Math.max(3 * se, 4 / n));
    expect(await value(h, 'tokenwatch_token_hit_ratio_sample_size', { kind: 'access_token' })).toBe(
      n,
    );
    const ns = win.reads.session ?? 0;
    const sessionRatio = await value(h, 'tokenwatch_token_hit_ratio', { kind: 'session' });
    expect(Math.abs(sessionRatio - 0.5)).toBeLessThanOrEqual(
      Math.max(3 * Math.sqrt(0.25 / ns), 2 / ns),
    );
    // Reads and misses of the window are the same commands: misses never exceed reads.
    expect(win.misses.access_token ?? 0).toBeLessThanOrEqual(n);
    expect(win.reads.refresh_token).toBeUndefined();
    await committed(h, 'cache.read_sample', 1);
    const text = everythingWritten(h);
    expect(text).not.toContain('hot-');
    expect(text).not.toContain('cold-');
    expect(text).not.toContain('s-hot');
  });

  it('drops the values the MONITOR stream carries: none reaches the ledger, logs, /metrics or /readyz', async () => {
    h = startApp(redis.url, { yaml: SAMPLING });
    await h.app.whenReady();
    const c = redis.client();
    const secret = (i: number) => `VALUE-${i}-eyJhbGciOiJSUzI1NiJ9.c2VjcmV0`;
    const sampler = h.app.cacheHealth.sampler('127.0.0.1:' + String(redis.port));
    let stop = false;
    let round = 0;
    const load = (async () => {
      const r = redis.client();
      while (!stop) {
        const p = r.pipeline();
        // Values in writes of tokens, of other keys, in a hash field and as a read's argument.
        p.set(`oauth:access:val-${round % 5}`, secret(round), 'EX', 600);
        p.hset('session:val-s', 'f', secret(round + 1));
        p.set('cache:other', secret(round + 2));
        p.get(`oauth:access:val-${round % 5}`);
        p.hget('session:val-s', 'f');
        p.sismember('session:val-s', secret(round + 3));
        await p.exec();
        round++;
      }
    })();
    const w = await (sampler as NonNullable<typeof sampler>).sample();
    stop = true;
    await load;
    // The window did see these commands (so their values went through the MONITOR stream).
    expect(w?.reads.access_token ?? 0).toBeGreaterThan(0);
    await committed(h, 'cache.read_sample', 1);
    await h.app.http.ready();
    const readyz = (await h.app.http.inject({ method: 'GET', url: '/readyz' })).body;
    const text = everythingWritten(h) + readyz + (await h.app.metrics.registry.metrics());
    expect(text).not.toContain('VALUE-');
    expect(text).not.toContain('c2VjcmV0');
    expect(text).not.toContain('val-');
    expect(await c.exists('cache:other')).toBe(1);
  });

  it('refuses gracefully where MONITOR is not allowed: metric absent, /readyz and a log line say why', async () => {
    const admin = redis.client();
    await admin.call(
      'ACL',
      'SETUSER',
      'tw-nomonitor',
      'on',
      '>pw-nomonitor',
      '%R~*',
      '&__keyevent@0__:*',
      '+@all',
      '-monitor',
    );
    h = startApp(redis.url, {
      yaml: SAMPLING,
      redis: ['username: tw-nomonitor', 'password: pw-nomonitor'],
    });
    await h.app.whenReady();
    const label = '127.0.0.1:' + String(redis.port);
    const w = await h.app.cacheHealth.sampler(label)?.sample();
    expect(w).toBeUndefined();
    await h.app.http.ready();
    const res = await h.app.http.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{
      details: { cacheHealth: { readSampling: Record<string, unknown> } };
    }>();
    expect(body.details.cacheHealth.readSampling[label]).toMatchObject({ state: 'refused' });
    expect(JSON.stringify(body)).toMatch(/NOPERM|no permissions/i);
    expect(h.logs()).toContain('read sampling refused');
    const metrics = await h.app.metrics.registry.metrics();
    expect(metrics).not.toContain('tokenwatch_token_hit_ratio{');
    expect(metrics).toContain(
      `tokenwatch_read_sample_windows_total{node="${label}",outcome="refused"} 1`,
    );
    // Misses still count: only the sampling is refused.
    await admin.get('oauth:access:missing');
    await waitFor(
      async () =>
        (await value(h as Harness, 'tokenwatch_token_lookups_total', {
          kind: 'access_token',
          result: 'miss',
        })) === 1,
    );
  });
});
