import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';

let redis: RedisServer;
let h: Harness | undefined;

/**
 * The least-privilege ACL documented in README.md ("Redis permissions"): the whole suite runs
 * once as the default user and once as exactly this user.
 */
export const TOKENWATCH_ACL = [
  'on',
  '>tw-acl-password',
  'resetkeys',
  '%R~*',
  'resetchannels',
  '&__keyevent@0__:*',
  '-@all',
  '+psubscribe',
  '+punsubscribe',
  '+ping',
  '+client|setname',
  '+select',
  '+info',
  '+scan',
  '+pexpiretime',
  '+evalsha',
  '+script|load',
  '+time',
  '+config|get',
  '+config|set',
  '+cluster|shards',
  '+cluster|nodes',
  '+readonly',
];

let mode: 'default' | 'acl' = 'default';

beforeAll(async () => {
  redis = await startRedis();
  const c = redis.client();
  await c.call('ACL', 'SETUSER', 'tokenwatch', ...TOKENWATCH_ACL);
  c.disconnect();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  await h?.stop();
  h = undefined;
  const c = redis.client();
  await c.flushall();
  await c.config('SET', 'notify-keyspace-events', '');
  c.disconnect();
});

function aclLines(): string[] {
  return mode === 'acl' ? ['username: tokenwatch', 'password: tw-acl-password'] : [];
}

async function ready(): Promise<{ h: Harness; c: Redis }> {
  h = startApp(redis.url, { redis: aclLines() });
  await h.app.whenReady();
  return { h, c: redis.client() };
}

/** Wait until the ledger holds a record matching `pred`, flushing pending batches. */
async function records(hh: Harness, min: number, type = 'token.*') {
  let rows = hh.app.ledger.list({ type });
  await waitFor(
    async () => {
      await hh.app.settle();
      hh.app.ledger.flush();
      rows = hh.app.ledger.list({ type });
      return rows.length >= min;
    },
    10_000,
    `${min} ${type} records`,
  );
  return rows;
}

async function metric(
  hh: Harness,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await hh.app.metrics.registry.metrics();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (want.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return Number.NaN;
}

for (const m of ['default', 'acl'] as const)
  describe(`keyspace watcher against a real redis-server (${m} user)`, () => {
    beforeAll(() => {
      mode = m;
    });

    it('turns on the notification flags it needs, merged with the user flags', async () => {
      const c0 = redis.client();
      await c0.config('SET', 'notify-keyspace-events', 'Kl');
      const { c } = await ready();
      const [, flags] = (await c.config('GET', 'notify-keyspace-events')) as [string, string];
      for (const f of 'KlEg$xeh') expect(flags).toContain(f);
      expect(
        await metric(h!, 'tokenwatch_keyspace_notifications_enabled', {
          node: `127.0.0.1:${redis.port}`,
        }),
      ).toBe(1);
    });

    it('records each lifecycle event with the right type, TTL and metrics', async () => {
      const { h, c } = await ready();
      await c.set('oauth:access:tokA', 'v', 'EX', 600);
      await c.set('session:sidB', 'v'); // no TTL: immortal
      // Recorded before the EXPIRE below runs: a look-up that ran after a later change of the
      // key would (rightly) leave the write's TTL unknown rather than claim the later one.
      await records(h, 2);
      // (an expire right after a write of the same key is folded into the write, as SET EX emits)
      await c.set('oauth:refresh:tokC', 'v', 'PX', 50);
      await c.expire('session:sidB', 120); // ttl_changed
      await c.persist('session:sidB'); // persisted
      await c.hset('oauth:refresh:hashD', 'a', '1'); // first hset = written
      await c.hset('oauth:refresh:hashD', 'b', '2'); // not a new write
      await c.rename('oauth:access:tokA', 'oauth:access:tokA2');
      await c.del('oauth:access:tokA2');
      await new Promise((r) => setTimeout(r, 120));
      await c.get('oauth:refresh:tokC'); // lazy expiry fires `expired`
      const rows = await records(h, 9);
      const types = rows.map((r) => `${r.kind}:${r.type}`);
      expect(types).toEqual([
        'access_token:token.written',
        'session:token.written',
        'refresh_token:token.written',
        'session:token.ttl_changed',
        'session:token.persisted',
        'refresh_token:token.written',
        'access_token:token.renamed',
        'access_token:token.deleted',
        'refresh_token:token.expired',
      ]);
      const written = rows[0]!;
      expect(written.attrs.ttlMs).toBeGreaterThan(590_000);
      // TTL is due minus our clock: exact up to the Redis clock offset estimate (half an RTT).
      expect(written.attrs.ttlMs).toBeLessThanOrEqual(600_010);
      expect(written.fingerprint).toMatch(/^hmac-sha256:[^:]+:[0-9a-f]{64}$/);
      expect(rows[1]!.attrs.ttlMs).toBeNull(); // TTL-less write is visible as such
      expect(rows[1]!.attrs.dueAt).toBeNull();
      expect(rows[4]!.attrs.dueAt).toBeNull(); // persisted
      // ttl_changed: the 120 s expiry, or unknown when PERSIST superseded it before the look-up
      const ttlChangedDue = rows[3]!.attrs.dueAt as number | undefined;
      expect(ttlChangedDue === undefined || ttlChangedDue > Date.now() + 100_000).toBe(true);
      expect(rows[6]!.attrs.renamedFrom).toEqual({
        kind: 'access_token',
        fingerprint: written.fingerprint,
      });
      expect(rows[7]!.attrs.lifetimeMs).toBeGreaterThanOrEqual(0);
      expect(rows[8]!.attrs.expiryLagMs).toBeTypeOf('number');

      expect(
        await metric(h, 'tokenwatch_token_events_total', { kind: 'session', event: 'persisted' }),
      ).toBe(1);
      expect(
        await metric(h, 'tokenwatch_token_events_total', {
          kind: 'refresh_token',
          event: 'written',
        }),
      ).toBe(2);
      expect(
        await metric(h, 'tokenwatch_token_events_total', {
          kind: 'refresh_token',
          event: 'expired',
        }),
      ).toBe(1);
      expect(
        await metric(h, 'tokenwatch_token_events_total', {
          kind: 'access_token',
          event: 'deleted',
        }),
      ).toBe(1);
      expect(await metric(h, 'tokenwatch_tokens_live', { kind: 'session' })).toBe(1);
      expect(await metric(h, 'tokenwatch_tokens_live', { kind: 'refresh_token' })).toBe(1);
      expect(await metric(h, 'tokenwatch_tokens_live', { kind: 'access_token' })).toBe(0);
      expect(await metric(h, 'tokenwatch_token_ttl_seconds_count', { kind: 'access_token' })).toBe(
        1,
      );
      expect(
        await metric(h, 'tokenwatch_token_lifetime_seconds_count', {
          kind: 'access_token',
          end: 'deleted',
        }),
      ).toBe(1);
      expect(
        await metric(h, 'tokenwatch_expiry_lag_seconds_count', { kind: 'refresh_token' }),
      ).toBe(1);
      expect(await metric(h, 'tokenwatch_event_to_audit_seconds_count')).toBeGreaterThanOrEqual(9);
    });

    it('ends the token a RENAME overwrites (Redis publishes no del for it)', async () => {
      const { h, c } = await ready();
      await c.set('oauth:access:overX', 'v', 'EX', 600);
      await c.set('oauth:access:overY', 'v', 'EX', 600);
      await records(h, 2);
      await c.rename('oauth:access:overX', 'oauth:access:overY');
      const rows = await records(h, 4);
      expect(rows.map((r) => `${r.type}:${String(r.attrs.redisEvent)}`)).toEqual([
        'token.written:set',
        'token.written:set',
        'token.deleted:rename_to',
        'token.renamed:rename_to',
      ]);
      // The deleted one is the old overY; the renamed one carries overX's identity over.
      expect(rows[2]!.fingerprint).toBe(rows[1]!.fingerprint);
      expect(rows[3]!.attrs.renamedFrom).toEqual({
        kind: 'access_token',
        fingerprint: rows[0]!.fingerprint,
      });
      expect(h.app.inventory.size('access_token')).toBe(1);
      expect(await c.dbsize()).toBe(1);
      expect(
        await metric(h, 'tokenwatch_token_events_total', {
          kind: 'access_token',
          event: 'deleted',
        }),
      ).toBe(1);
    });

    it('records evictions under memory pressure', async () => {
      const { h, c } = await ready();
      for (let i = 0; i < 50; i++) await c.set(`session:evict${i}`, 'x'.repeat(10_000), 'EX', 600);
      await c.config('SET', 'maxmemory-policy', 'volatile-lru');
      const used = Number(/used_memory:(\d+)/.exec(await c.info('memory'))![1]);
      await c.config('SET', 'maxmemory', String(used - 200_000));
      await c.set('unrelated:trigger', 'x'); // a write makes Redis evict
      const rows = await records(h, 1, 'token.evicted');
      expect(rows[0]!.kind).toBe('session');
      expect(rows[0]!.attrs.lifetimeMs).toBeTypeOf('number');
      await c.config('SET', 'maxmemory', '0');
      expect(
        await metric(h, 'tokenwatch_token_events_total', { kind: 'session', event: 'evicted' }),
      ).toBeGreaterThan(0);
    });

    it('builds its inventory from a SCAN baseline at start', async () => {
      const c = redis.client();
      await c.set('oauth:access:pre1', 'v', 'EX', 100);
      await c.set('oauth:access:pre2', 'v');
      await c.set('session:pre3', 'v', 'EX', 100);
      await c.set('not-a-token', 'v');
      const { h } = await ready();
      const [baseline] = await records(h, 1, 'keyspace.baseline');
      expect(baseline!.attrs.counts).toEqual({
        access_token: 2,
        refresh_token: 0,
        session: 1,
        tenant_refresh: 0,
        grant: 0,
      });
      expect(baseline!.attrs.unmatched).toBe(1);
      expect(h.app.inventory.sizes()).toMatchObject({ access_token: 2, session: 1 });
    });

    it('baselines SCAN pages larger than one expiry script call, with every expiry exact', async () => {
      const c = redis.client();
      const p = c.pipeline();
      for (let i = 0; i < 3500; i++) {
        if (i % 3 === 0) p.set(`oauth:access:big${i}`, 'v');
        else p.set(`oauth:access:big${i}`, 'v', 'PX', 600_000 + i);
      }
      await p.exec();
      h = startApp(redis.url, { redis: [...aclLines(), 'scanCount: 5000'] });
      await h.app.whenReady();
      expect(h.app.inventory.size('access_token')).toBe(3500);
      for (const i of [0, 1, 999, 1000, 1001, 2500, 3499]) {
        const due = await c.pexpiretime(`oauth:access:big${i}`);
        const entry = h.app.inventory.get('access_token', h.app.fingerprinter.ofLatin1(`big${i}`));
        expect(entry?.due).toBe(due === -1 ? null : due);
      }
    });

    it('fingerprints multi-placeholder templates and keeps non-secret attributes', async () => {
      const { h, c } = await ready();
      await c.set('tenant:acme:rt:secretRT', 'v', 'EX', 60);
      await c.set('grant:user42:read', 'v', 'EX', 60);
      const rows = await records(h, 2);
      expect(rows[0]!.kind).toBe('tenant_refresh');
      expect(rows[0]!.attrs.key).toEqual({ tenant: 'acme', token: rows[0]!.fingerprint });
      expect(h.app.fingerprinter.matches('secretRT', rows[0]!.fingerprint!)).toBe(true);
      expect(rows[1]!.kind).toBe('grant');
      expect(rows[1]!.attrs.key).toEqual({ sub: 'user42', scope: 'read' });
    });

    it('survives hostile keys: binary bytes, 1 MB names, near-matches', async () => {
      const { h, c } = await ready();
      await c.set(
        Buffer.from([
          0x6f, 0x61, 0x75, 0x74, 0x68, 0x3a, 0x61, 0x63, 0x63, 0x65, 0x73, 0x73, 0x3a, 0xff, 0x00,
          0xfe,
        ]),
        'v',
        'EX',
        60,
      );
      await c.set(`oauth:access:${'A'.repeat(1024 * 1024)}`, 'v');
      await c.set('oauth:access:', 'v'); // empty placeholder: not a token
      await c.set('oauth:accessX:tok', 'v');
      await c.set('session:', 'v');
      await c.set('tenant::rt:x', 'v'); // empty tenant
      await c.set('oauth:access:after', 'v', 'EX', 60);
      const rows = await records(h, 2);
      expect(rows.map((r) => r.type)).toEqual(['token.written', 'token.written']);
      expect(
        h.app.fingerprinter.matches(Buffer.from([0xff, 0x00, 0xfe]), rows[0]!.fingerprint!),
      ).toBe(true);
      expect(h.app.fingerprinter.matches('after', rows[1]!.fingerprint!)).toBe(true);
      expect(await metric(h, 'tokenwatch_keys_unmatched_total')).toBeGreaterThanOrEqual(5);
      expect(h.app.notReadyReasons()).toEqual([]);
    });

    it('records a gap and reconciles when the subscriber is killed inside a MULTI that writes and deletes', async () => {
      const { h, c } = await ready();
      await c.set('oauth:access:keep', 'v', 'EX', 600);
      await c.set('oauth:access:doomed', 'v', 'EX', 600);
      await c.set('session:changeme', 'v', 'EX', 600);
      await records(h, 3);
      const gapStart = Date.now();
      await c
        .multi()
        .set('oauth:access:before-kill', 'v', 'EX', 600)
        .call('CLIENT', 'KILL', 'TYPE', 'pubsub')
        .set('oauth:access:blind1', 'v', 'EX', 600)
        .set('oauth:refresh:blind2', 'v')
        .del('oauth:access:doomed')
        .expire('session:changeme', 30)
        .exec();
      const [gap] = await records(h, 1, 'keyspace.gap');
      expect(gap!.attrs.start).toBeGreaterThanOrEqual(gapStart - 5);
      expect(gap!.attrs.end).toBeGreaterThanOrEqual(gap!.attrs.start as number);
      expect(gap!.attrs.appeared).toMatchObject({ access_token: 2, refresh_token: 1 });
      expect(gap!.attrs.vanished).toEqual({ access_token: 1 });
      expect(gap!.attrs.ttl_changed).toEqual({ session: 1 });
      // After reconciliation the live inventory equals Redis exactly.
      await h.app.settle();
      expect(h.app.inventory.sizes()).toMatchObject({
        access_token: 3,
        refresh_token: 1,
        session: 1,
      });
      const vanished = h.app.ledger.list({ type: 'token.vanished' });
      expect(vanished).toHaveLength(1);
      expect(h.app.fingerprinter.matches('doomed', vanished[0]!.fingerprint!)).toBe(true);
      expect(
        await metric(h, 'tokenwatch_keyspace_gaps_total', { node: `127.0.0.1:${redis.port}` }),
      ).toBe(1);
      // And watching goes on after the gap.
      await c.del('oauth:access:keep');
      await waitFor(
        () => h.app.inventory.size('access_token') === 2,
        5000,
        'live delete after gap',
      );
    });

    it('restores a wiped notification config within the re-check interval and records the blind spot', async () => {
      const { h, c } = await ready();
      await c.config('SET', 'notify-keyspace-events', '');
      await c.set('oauth:access:during-wipe', 'v', 'EX', 60); // unobservable
      await waitFor(
        async () => {
          const [, flags] = (await c.config('GET', 'notify-keyspace-events')) as [string, string];
          return flags.includes('E') && flags.includes('x');
        },
        3000,
        'flags restored',
      );
      const [gap] = await records(h, 1, 'keyspace.gap');
      expect(gap!.attrs.reason).toBe('notifications_disabled');
      expect(gap!.attrs.appeared).toEqual({ access_token: 1 });
    });

    it('reports disabled notifications when configureNotifications is false', async () => {
      h = startApp(redis.url, { redis: ['configureNotifications: false', ...aclLines()] });
      await waitFor(() => h!.app.watchers[0]?.notifications !== undefined, 5000, 'first check');
      expect(h.app.watchers[0]!.notifications!.enabled).toBe(false);
      expect(
        await metric(h, 'tokenwatch_keyspace_notifications_enabled', {
          node: `127.0.0.1:${redis.port}`,
        }),
      ).toBe(0);
      expect(h.app.notReadyReasons().join(' ')).toMatch(/configureNotifications is false/);
      const c = redis.client();
      const [, flags] = (await c.config('GET', 'notify-keyspace-events')) as [string, string];
      expect(flags).toBe('');
    });

    it('never writes a raw token to the SQLite file, /metrics or the logs', async () => {
      const { h, c } = await ready();
      const secrets = ['rawAccessTokenValue123', 'rawRefreshTokenValue456', 'rawSessionIdValue789'];
      await c.set(`oauth:access:${secrets[0]}`, 'v', 'EX', 60);
      await c.set(`oauth:refresh:${secrets[1]}`, 'v');
      await c.set(`session:${secrets[2]}`, 'v', 'EX', 60);
      await c.del(`oauth:access:${secrets[0]}`);
      await c.rename(`session:${secrets[2]}`, `session:${secrets[2]}x`);
      await c.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await records(h, 1, 'keyspace.gap');
      const metricsText = await h.app.metrics.registry.metrics();
      const res = await h.app.http.inject({ method: 'GET', url: '/metrics' });
      await h.app.stop('test');
      const bytes = Buffer.concat(readdirSync(h.dir).map((f) => readFileSync(join(h.dir, f))));
      for (const s of secrets) {
        expect(bytes.includes(Buffer.from(s))).toBe(false);
        expect(metricsText).not.toContain(s);
        expect(res.body).not.toContain(s);
        expect(h.logs()).not.toContain(s);
      }
      expect(bytes.length).toBeGreaterThan(0);
    });
  });

describe('mass invalidation', () => {
  beforeAll(() => {
    mode = 'acl';
  });

  it('detects FLUSHDB (no per-key events) and records what vanished per kind', async () => {
    const { h, c } = await ready();
    await c.set('oauth:access:f1', 'v', 'EX', 600);
    await c.set('oauth:access:f2', 'v', 'EX', 600);
    await c.set('session:f3', 'v', 'EX', 600);
    await records(h, 3);
    await c.flushdb();
    await c.set('oauth:access:after-flush', 'v', 'EX', 600);
    const [flush] = await records(h, 1, 'keyspace.flush');
    expect(flush!.attrs.reason).toBe('flush');
    expect(flush!.attrs.vanished).toEqual({ access_token: 2, session: 1 });
    await h.app.settle();
    expect(h.app.inventory.sizes()).toMatchObject({ access_token: 1, session: 0 });
    expect(h.app.ledger.list({ type: 'token.vanished' })).toHaveLength(3);
    expect(h.app.ledger.list({ type: 'keyspace.gap' })).toHaveLength(0);
  });
});
