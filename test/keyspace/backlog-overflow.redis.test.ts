import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import type { AuditRecord } from '../../src/audit/record.js';
import { keyBits } from '../../src/keyspace/notification-batch.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startApp, waitFor, type Harness, type StartOptions } from '../helpers/app-harness.js';

/**
 * A node whose notifications arrive faster than they are applied, for long: the backlog of
 * received notifications is bounded (redis.maxPendingNotifications). Past it, what waits is
 * dropped, counted and reconciled as a blind spot, and the inventory and the ledger end equal to
 * what Redis did, including what the dropped notifications did to tokens of the chunk that was
 * being applied when they were dropped.
 */
let redis: RedisServer;
let h: Harness | undefined;
let c: Redis;

const MAX = 1000;

beforeAll(async () => {
  redis = await startRedis();
  c = redis.client();
});

afterEach(async () => {
  await h?.stop();
  h = undefined;
  await c.flushall();
});

afterAll(async () => {
  await redis?.stop();
});

async function start(options: StartOptions = {}): Promise<Harness> {
  h = startApp(redis.url, {
    ...options,
    redis: [`maxPendingNotifications: ${MAX}`, ...(options.redis ?? [])],
  });
  await h.app.whenReady();
  const w = h.app.watchers[0]!;
  await waitFor(() => w.subscribed && w.baselined && !w.reconciling, 30_000, 'baselined');
  return h;
}

async function metric(hh: Harness, name: string, node: string): Promise<number> {
  const text = await hh.app.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{node="${node}"}`));
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const fingerprintOf = (hh: Harness, key: string): string => hh.app.rules.classify(key)!.fingerprint;

/** The ledger's `type` records of the token `key`. */
function recordsOf(hh: Harness, key: string, type: string): AuditRecord[] {
  const fp = fingerprintOf(hh, key);
  return hh.app.ledger.list({ type }).filter((r) => r.fingerprint === fp);
}

const gapAttrs = (hh: Harness) => hh.app.ledger.list({ type: 'keyspace.gap' }).map((g) => g.attrs);

/** The run's one gap is the overflow's, with `changes`, and the tokens `vanished` vanished in it. */
function expectOverflowGap(hh: Harness, changes: Record<string, unknown>, vanished: string[]) {
  expect(gapAttrs(hh)).toEqual([
    expect.objectContaining({ reason: 'backlog_overflow', ...changes }),
  ]);
  expect(hh.app.ledger.list({ type: 'token.vanished' }).map((r) => r.fingerprint)).toEqual(
    vanished.map((k) => fingerprintOf(hh, k)),
  );
}

/**
 * Holds the watcher's next expiry look-up (a real EVALSHA) until release(): the chunk it belongs
 * to stays in flight while later notifications arrive. `when: 'answer'` holds Redis' answer
 * (Redis ran it before what follows); `'request'` holds it before it is sent (Redis runs it
 * after what follows, as for everything queued behind a chunk).
 */
function holdNextLookup(
  hh: Harness,
  when: 'answer' | 'request' = 'answer',
): { answered: () => boolean; release: () => void } {
  const cmds = hh.app.watchers[0]!.commands as unknown as {
    call: (...a: unknown[]) => Promise<unknown>;
  };
  const call = cmds.call.bind(cmds);
  let held = false;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  cmds.call = async (...a: unknown[]) => {
    if (a[0] !== 'EVALSHA' || held) return call(...a);
    if (when === 'request') {
      held = true;
      await released;
      return call(...a);
    }
    // Only an answer: a first EVALSHA refused with NOSCRIPT (the script not loaded yet on a
    // fresh server) is retried after SCRIPT LOAD, and that one is held.
    const r = await call(...a);
    held = true;
    await released;
    return r;
  };
  return { answered: () => held, release };
}

/**
 * Waits until the watcher logged an overflow, asks for a reconciliation meanwhile (as a re-check,
 * a takeover or a topology change would), lets the held look-up go, and settles.
 */
async function overflowThenRelease(hh: Harness, release: () => void): Promise<void> {
  const w = hh.app.watchers[0]!;
  await waitFor(() => hh.logs().includes('keyspace backlog full'), 5000, 'overflow');
  const asked = w.rebaseline();
  await new Promise((r) => setTimeout(r, 100));
  // No reconciliation while what came before the drop is not applied yet.
  expect(w.reconciling).toBe(false);
  release();
  await asked;
  await waitFor(
    () => hh.app.ledger.list({ type: 'keyspace.gap' }).length > 0,
    15_000,
    'overflow gap',
  );
  await hh.app.settle();
  hh.app.ledger.flush();
}

/**
 * One script writes `count` tokens: 2 x count notifications (set, expire), the first chunk's
 * look-up held until the overflow, so that everything after it waits. Resolves once the
 * overflow's gap is recorded and everything is applied.
 */
async function flood(hh: Harness, name: string, count: number): Promise<void> {
  const lookup = holdNextLookup(hh, 'request');
  await c.eval(
    `for i=1,${count} do redis.call('SET','oauth:access:${name}'..i,'v','EX',600) end`,
    0,
  );
  await waitFor(() => hh.logs().includes('keyspace backlog full'), 10_000, 'overflow');
  lookup.release();
  await waitFor(
    () =>
      hh.app.ledger
        .list({ type: 'keyspace.gap' })
        .some((r) => r.attrs.reason === 'backlog_overflow'),
    30_000,
    'backlog_overflow gap',
  );
  await hh.app.settle();
  hh.app.ledger.flush();
}

const JUNK = `for i=1,${MAX} do redis.call('SET','junk:'..i,'x') end`;

describe('a keyspace backlog past redis.maxPendingNotifications', () => {
  it('drops what waits, records a backlog_overflow gap, and reconciles to equal Redis', async () => {
    const hh = await start();
    const node = `127.0.0.1:${redis.port}`;
    const tokens = 20_000;
    expect(await metric(hh, 'tokenwatch_keyspace_notifications_dropped_total', node)).toBe(0);
    await flood(hh, 'of', tokens);
    const dropped = await metric(hh, 'tokenwatch_keyspace_notifications_dropped_total', node);
    expect(dropped).toBeGreaterThan(MAX);
    expect(dropped).toBeLessThan(2 * tokens);
    // Reconciled: the inventory equals Redis.
    expect(hh.app.inventory.size('access_token')).toBe(tokens);
    // Every token is in the ledger once: as a live record (its `set`, or its `expire` when the
    // `set` was dropped: ttl_changed), or as appeared in a gap.
    const gaps = hh.app.ledger.list({ type: 'keyspace.gap' });
    const appeared = gaps.reduce(
      (n, g) => n + ((g.attrs.appeared as Record<string, number>).access_token ?? 0),
      0,
    );
    const live = new Set(
      [
        ...hh.app.ledger.list({ type: 'token.written' }),
        ...hh.app.ledger.list({ type: 'token.ttl_changed' }),
      ].map((r) => r.fingerprint),
    );
    expect(appeared).toBeGreaterThan(0);
    expect(live.size + appeared).toBe(tokens);
    // Every gap of the run is this one's (the subscriber never disconnected).
    expect(new Set(gaps.map((g) => g.attrs.reason))).toEqual(new Set(['backlog_overflow']));
    // No TTL changed: the gaps say none did (a reply doubted for nothing would show here).
    expect(gaps.map((g) => g.attrs.ttl_changed)).toEqual(gaps.map(() => ({})));
    // Live again after it: a later write is recorded as it happens.
    await c.set('oauth:access:after', 'v', 'EX', 600);
    await waitFor(
      () => hh.app.inventory.size('access_token') === tokens + 1,
      10_000,
      'live write after the overflow',
    );
  }, 60_000);

  it('reconciles what the dropped notifications did to the tokens of the chunk in flight', async () => {
    const hh = await start();
    const fp = (k: string) => fingerprintOf(hh, k);
    const [k1, k2] = ['oauth:access:k1', 'oauth:access:k2'];
    const lookup = holdNextLookup(hh);
    // The chunk [set k1, set k2] waits for its look-up's answer...
    await c.eval(
      `redis.call('SET',KEYS[1],'v','EX',600); redis.call('SET',KEYS[2],'v','EX',600)`,
      2,
      k1,
      k2,
    );
    await waitFor(lookup.answered, 5000, 'look-up held');
    // ... while k1 is deleted and k2 gets another TTL, then enough notifications to overflow.
    await c.eval(
      `redis.call('DEL',KEYS[1]); redis.call('PEXPIRE',KEYS[2],1200000); ${JUNK}`,
      2,
      k1,
      k2,
    );
    await overflowThenRelease(hh, lookup.release);
    expect(hh.app.inventory.get('access_token', fp(k1))).toBeUndefined();
    expect(hh.app.inventory.get('access_token', fp(k2))?.due).toBe(
      Number(await c.call('PEXPIRETIME', k2)),
    );
    // The ledger says so: k1 written live, then vanished in the gap; k2's new TTL found by it.
    expectOverflowGap(hh, { vanished: { access_token: 1 }, ttl_changed: { access_token: 1 } }, [
      k1,
    ]);
  });

  it('does not take a look-up Redis ran after dropped notifications for the write TTL', async () => {
    const hh = await start();
    const k = 'oauth:access:k';
    const lookup = holdNextLookup(hh, 'request');
    await c.set(k, 'v', 'EX', 600);
    await waitFor(lookup.answered, 5000, 'look-up about to be sent');
    // Published before the look-up runs, then dropped: its answer shows the new TTL.
    await c.eval(`redis.call('PEXPIRE',KEYS[1],1200000); ${JUNK}`, 1, k);
    await overflowThenRelease(hh, lookup.release);
    const mine = (type: string) => recordsOf(hh, k, type);
    // The write's TTL is unknown (not the 1 200 s a later PEXPIRE set); the gap records the TTL
    // Redis has.
    expect(mine('token.written').map((r) => r.attrs.ttlMs)).toEqual([undefined]);
    const changed = mine('token.ttl_changed').map((r) => Number(r.attrs.ttlMs));
    expect(changed).toHaveLength(1);
    expect(changed[0]).toBeGreaterThan(1_190_000);
    expect(changed[0]).toBeLessThanOrEqual(1_200_000);
    expect(gapAttrs(hh)).toEqual([
      expect.objectContaining({ reason: 'backlog_overflow', ttl_changed: { access_token: 1 } }),
    ]);
  });

  it('counts the notification that found the queue full among those it dropped', async () => {
    const hh = await start();
    const k = 'oauth:access:k';
    const lookup = holdNextLookup(hh, 'request');
    await c.set(k, 'v', 'EX', 600);
    await waitFor(lookup.answered, 5000, 'look-up about to be sent');
    // MAX notifications fill the queue; the PEXPIRE after them finds it full.
    await c.eval(`${JUNK}; redis.call('PEXPIRE',KEYS[1],1200000)`, 1, k);
    await overflowThenRelease(hh, lookup.release);
    const node = `127.0.0.1:${redis.port}`;
    expect(await metric(hh, 'tokenwatch_keyspace_notifications_dropped_total', node)).toBe(MAX + 1);
    const mine = (type: string) => recordsOf(hh, k, type);
    expect(mine('token.written').map((r) => r.attrs.ttlMs)).toEqual([undefined]);
    expect(mine('token.ttl_changed')).toHaveLength(1);
  });

  it('keeps the look-up of a token the dropped notifications did not name', async () => {
    const hh = await start();
    // A key whose hash bit one of the dropped keys shares: ruled in by the bit, out exactly.
    const junkBits = new Set(
      Array.from({ length: MAX }, (_, i) => `junk:${i + 1}`).map((j) =>
        keyBits(Buffer.from(j), 0, j.length),
      ),
    );
    let k = '';
    for (let n = 0; !junkBits.has(keyBits(Buffer.from(k), 0, k.length)); n++)
      k = `oauth:access:c${n}`;
    const lookup = holdNextLookup(hh, 'answer');
    await c.set(k, 'v', 'EX', 600);
    await waitFor(lookup.answered, 5000, 'look-up answered, held');
    await c.eval(`${JUNK}; redis.call('SET','junk:last','x')`, 0);
    await overflowThenRelease(hh, lookup.release);
    const mine = (type: string) => recordsOf(hh, k, type);
    const written = mine('token.written').map((r) => Number(r.attrs.ttlMs));
    expect(written).toHaveLength(1);
    expect(written[0]).toBeGreaterThan(590_000);
    // No TTL change that never happened.
    expect(mine('token.ttl_changed')).toEqual([]);
    expect(gapAttrs(hh).map((g) => g.ttl_changed)).toEqual([{}]);
  });

  it('keeps the look-up of a token whose dropped notifications left its expiry alone', async () => {
    const hh = await start();
    const k = 'oauth:access:appended';
    const lookup = holdNextLookup(hh, 'answer');
    await c.set(k, 'v', 'EX', 600);
    await waitFor(lookup.answered, 5000, 'look-up answered, held');
    await c.eval(`redis.call('APPEND',KEYS[1],'w'); ${JUNK}`, 1, k);
    await overflowThenRelease(hh, lookup.release);
    const written = recordsOf(hh, k, 'token.written').map((r) => Number(r.attrs.ttlMs));
    expect(written).toHaveLength(1);
    expect(written[0]).toBeGreaterThan(590_000);
    expect(gapAttrs(hh).map((g) => g.ttl_changed)).toEqual([{}]);
  });

  it('gives back a renamed token whose rename_to was dropped: it vanishes in the gap', async () => {
    const hh = await start();
    const fp = (k: string) => fingerprintOf(hh, k);
    const [a, b, cKey] = ['oauth:access:A', 'oauth:access:B', 'oauth:access:C'];
    await c.set(a, 'v');
    await waitFor(() => hh.app.inventory.get('access_token', fp(a)) !== undefined, 5000, 'A');
    // The real RENAME, unannounced; its two notifications are published below, split by the
    // overflow: rename_from ends the chunk in flight, rename_to is dropped.
    const flags = (await c.config('GET', 'notify-keyspace-events'))[1]!;
    await c
      .multi()
      .config('SET', 'notify-keyspace-events', '')
      .rename(a, b)
      .config('SET', 'notify-keyspace-events', flags)
      .exec();
    const lookup = holdNextLookup(hh);
    await c.eval(
      `redis.call('SET','oauth:access:X','v','EX',600); redis.call('PUBLISH','__keyevent@0__:rename_from',KEYS[1])`,
      1,
      a,
    );
    await waitFor(lookup.answered, 5000, 'look-up held');
    await c.eval(`redis.call('PUBLISH','__keyevent@0__:rename_to',KEYS[1]); ${JUNK}`, 1, b);
    await overflowThenRelease(hh, lookup.release);
    expect(hh.app.inventory.get('access_token', fp(a))).toBeUndefined();
    expect(hh.app.inventory.get('access_token', fp(b))).toBeDefined();
    expectOverflowGap(hh, { vanished: { access_token: 1 }, appeared: { access_token: 1 } }, [a]);
    // A later RENAME of a non-token onto a token key is a write, not A's rename.
    await c.set('plain', 'v');
    await c.rename('plain', cKey);
    await waitFor(() => hh.app.inventory.get('access_token', fp(cKey)) !== undefined, 5000, 'C');
    await hh.app.settle();
    hh.app.ledger.flush();
    expect(hh.app.ledger.list({ type: 'token.renamed' })).toEqual([]);
  });

  it('with coordination on, the owner counts the drops and records the gap', async () => {
    const hh = await start({
      yaml: `
coordination:
  enabled: true
  instanceId: solo
  keyPrefix: 'twov:'
  leaseMs: 3000
  safetyMs: 500
`,
      env: { TOKENWATCH_HMAC_KEY: 'backlog-overflow-test-hmac-key' },
    });
    const node = `127.0.0.1:${redis.port}`;
    await waitFor(() => hh.app.coordinator?.role(node) === 'owner', 15_000, 'ownership');
    await flood(hh, 'co', 5000);
    expect(
      await metric(hh, 'tokenwatch_keyspace_notifications_dropped_total', node),
    ).toBeGreaterThan(MAX);
    expect(hh.app.inventory.size('access_token')).toBe(5000);
  }, 60_000);
});
