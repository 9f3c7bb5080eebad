import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Fingerprinter } from '../../src/audit/fingerprint.js';
import { tokenRuleSchema } from '../../src/config/schema.js';
import { formatPosition } from '../../src/domain/position.js';
import type { TokenEvent } from '../../src/domain/token-event.js';
import { Inventory } from '../../src/keyspace/inventory.js';
import { NodeWatcher, type WatcherSink } from '../../src/keyspace/node-watcher.js';
import { StandbyBuffer } from '../../src/keyspace/standby-buffer.js';
import {
  DEFAULT_KEY_PREFIX,
  type StreamPositionTracker,
  writeMarker,
} from '../../src/keyspace/stream-position.js';
import { TokenRules } from '../../src/keyspace/token-rules.js';
import { waitFor } from '../helpers/app-harness.js';
import { mk, TEST_MARKER_AUTH, tracker } from '../helpers/markers.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * Issue #20: two instances subscribed to one real redis-server name every notification alike once
 * both have seen a marker, whatever each one's batching and timing, because Redis publishes the
 * node's notifications to both in one order.
 */

const fingerprinter = new Fingerprinter([{ id: 'k1', key: randomBytes(32) }]);
const rules = new TokenRules(
  [
    tokenRuleSchema.parse({ kind: 'access_token', key: 'at:{token}' }),
    tokenRuleSchema.parse({ kind: 'session', key: 'sess:{sid}' }),
  ],
  fingerprinter,
);

/** One instance's view of the node: watcher, tracker, standby buffer and what it received. */
interface Instance {
  name: string;
  watcher: NodeWatcher;
  tracker: StreamPositionTracker;
  buffer: StandbyBuffer;
  events: TokenEvent[];
  resets: number;
  baselines: number;
}

let redis: RedisServer;
let writer: Redis;
const instances: Instance[] = [];

beforeAll(async () => {
  redis = await startRedis();
  writer = redis.client();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  await Promise.all(instances.splice(0).map((i) => i.watcher.close()));
  await writer.flushall();
});

function conn(name: string, subscriber: boolean): Redis {
  const c = new Redis({
    host: '127.0.0.1',
    port: redis.port,
    lazyConnect: true,
    connectionName: name,
    retryStrategy: () => 50,
    ...(subscriber ? { autoResubscribe: false, maxRetriesPerRequest: null } : {}),
  });
  c.on('error', () => undefined);
  return c;
}

async function startInstance(name: string): Promise<Instance> {
  const inst = { name, events: [] as TokenEvent[], resets: 0, baselines: 0 } as Instance;
  inst.buffer = new StandbyBuffer({ maxEvents: 10_000, maxAgeMs: 600_000, now: Date.now });
  inst.tracker = tracker({
    onReset: () => {
      inst.resets += 1;
      inst.buffer.discontinuity();
    },
  });
  const sink: WatcherSink = {
    token(ev) {
      inst.events.push(ev);
      inst.buffer.push(ev);
    },
    unmatched: () => undefined,
    baseline: () => (inst.baselines += 1),
    gap: () => undefined,
    status: () => undefined,
    hitMiss: () => undefined,
  };
  inst.watcher = new NodeWatcher({
    nodeIndex: 0,
    label: `127.0.0.1:${redis.port}`,
    db: 0,
    subscriber: conn(`${name}-sub`, true),
    commands: conn(`${name}-cmd`, false),
    rules,
    inventory: new Inventory(['access_token', 'session'], fingerprinter.prefix),
    sink,
    maxKeyBytes: 512,
    maxPendingNotifications: 1_000_000,
    expiryBacklogToleranceMs: 2000,
    scanCount: 100,
    configureNotifications: true,
    recheckIntervalMs: 600_000,
    infoIntervalMs: 600_000,
    flushCheckIntervalMs: 600_000,
    now: Date.now,
    logger: pino({ level: 'silent' }),
    streamPositions: inst.tracker,
  });
  instances.push(inst);
  inst.watcher.start();
  await waitFor(() => inst.baselines > 0, 20_000, `${name} baseline`);
  return inst;
}

/**
 * A marker that outlives the test: its `expired` must not land among the notifications whose
 * offsets the assertions count (the default 10 s TTL could pass on a loaded machine).
 */
const mark = (epoch: number, n: number): Promise<void> =>
  writeMarker(writer, TEST_MARKER_AUTH, epoch, n, undefined, DEFAULT_KEY_PREFIX, 600_000);

const fp = (key: string): string => rules.classify(key)!.fingerprint;

/** Waits until the instance received a token event of `type` for `key`. */
async function seen(inst: Instance, type: string, key: string): Promise<void> {
  const f = fp(key);
  await waitFor(
    () => inst.events.some((e) => e.type === type && e.fingerprint === f),
    20_000,
    `${inst.name}: ${type} ${key}`,
  );
}

/** type fingerprint position.index of each positioned event ('-' when unknown). */
const named = (evs: readonly TokenEvent[]): string[] =>
  evs.map(
    (e) =>
      `${e.type} ${e.fingerprint} ${e.position ? formatPosition(e.position, e.positionIndex) : '-'}`,
  );

const positionOf = (inst: Instance, type: string, key: string): string | undefined => {
  const e = inst.events.find((x) => x.type === type && x.fingerprint === fp(key));
  return e?.position ? formatPosition(e.position, e.positionIndex) : undefined;
};

describe('stream positions on a real redis-server', () => {
  it('two instances give identical events identical positions once both saw a marker', async () => {
    const a = await startInstance('a');
    await writer.set('at:early', '1');
    await mark(1, 1);
    await writer.set('at:a1', '1', 'EX', 100);
    await seen(a, 'written', 'at:a1');

    const b = await startInstance('b');
    await writer.set('at:b0', '1'); // b has seen no marker yet
    await mark(1, 2);
    await writer.set('at:x1', '1', 'EX', 100);
    await writer.del('at:a1');
    await writer.multi().set('at:m1', '1').set('at:m2', '1', 'PX', 100_000).del('at:x1').exec();
    await mark(0, 99); // a fenced owner's late marker: stale epoch
    await writer.set('at:y', '1');
    await mark(1, 1); // stale n
    await writer.set('not-a-token', '1');
    await writer.call('GET', 'tokenwatch:marker:missing'); // no keymiss flag: no notification
    await writer.rename('at:y', 'at:m1'); // over a live token: deleted + renamed, one notification
    await writer.set('sess:s1', '1', 'PX', 50);
    // Expiry: touch the key until Redis deletes it (lazily) and publishes `expired`.
    await waitFor(async () => (await writer.exists('sess:s1')) === 0, 20_000, 'sess:s1 expiry');
    await mark(2, 0); // a new owner's epoch starts over at n = 0
    await writer.set('at:z', '1', 'EX', 100);
    await writer.del('at:z');
    for (const i of [a, b]) await seen(i, 'deleted', 'at:z');

    // b joined after marker 1.1: what it got before marker 1.2 has no position; a's has.
    expect(positionOf(b, 'written', 'at:b0')).toBeUndefined();
    expect(positionOf(a, 'written', 'at:b0')).toBe('1.1.4.0'); // marker set, expire; a1 set, expire; b0
    expect(positionOf(a, 'written', 'at:early')).toBeUndefined();

    // From marker 1.2 on: the very same list on both.
    const fromM2 = (i: Instance) => i.events.filter((e) => e.position && e.position.epoch >= 1);
    const bNamed = named(b.events.filter((e) => e.position !== undefined));
    expect(bNamed.length).toBeGreaterThanOrEqual(9);
    expect(named(fromM2(a)).slice(-bNamed.length)).toEqual(bNamed);
    expect(b.events.filter((e) => e.position === undefined).length).toBe(
      b.events.filter((e) => e.fingerprint === fp('at:b0') || e.redisEvent === 'scan').length,
    );

    // Exact offsets: marker 1.2's set (0) and expire (1), then at:x1 set (2) + expire (3).
    for (const i of [a, b]) {
      expect(positionOf(i, 'written', 'at:x1')).toBe('1.2.2.0');
      expect(positionOf(i, 'deleted', 'at:a1')).toBe('1.2.4.0');
      // MULTI/EXEC: set m1 (5), set m2 (6) + expire (7), del x1 (8).
      expect(positionOf(i, 'written', 'at:m1')).toBe('1.2.5.0');
      expect(positionOf(i, 'written', 'at:m2')).toBe('1.2.6.0');
      expect(positionOf(i, 'deleted', 'at:x1')).toBe('1.2.8.0');
      // The stale markers moved nothing: 0.99's set + expire are 9, 10; at:y is 11.
      expect(positionOf(i, 'written', 'at:y')).toBe('1.2.11.0');
      // 1.1's set + expire 12, 13; not-a-token 14; rename_from 15, rename_to 16.
      const renamed = i.events.filter((e) => e.redisEvent === 'rename_to');
      expect(named(renamed)).toEqual([
        `deleted ${fp('at:m1')} 1.2.16.0`,
        `renamed ${fp('at:m1')} 1.2.16.1`,
      ]);
      // sess:s1 set + expire 17, 18; nothing else is written until Redis expired it: 19.
      expect(positionOf(i, 'written', 'sess:s1')).toBe('1.2.17.0');
      expect(positionOf(i, 'expired', 'sess:s1')).toBe('1.2.19.0');
      expect(positionOf(i, 'deleted', 'at:z')).toMatch(/^2\.0\.\d+\.0$/);
      const bases = new Set(i.events.flatMap((e) => (e.position ? [e.position.epoch] : [])));
      expect([...bases].every((e) => e >= 1)).toBe(true);
    }
    expect(a.tracker.markersSeen).toBe(3);
    expect(b.tracker.markersSeen).toBe(2);

    // b's standby buffer replays, after a's commit point, exactly what a recorded after it.
    const committed = a.events.find((e) => e.fingerprint === fp('at:m2'))!.position!;
    const r = b.buffer.eventsAfter(committed);
    expect(r.ok).toBe(true);
    const after = a.events.filter((e) => e.position !== undefined);
    const aAfter = after.slice(after.findIndex((e) => e.fingerprint === fp('at:m2')) + 1);
    expect(r.ok && named(r.events)).toEqual(named(aAfter));
    // ...but not from before it ever saw a marker.
    const early = b.buffer.eventsAfter({ epoch: 1, marker: 1, offset: 4 });
    expect(early).toMatchObject({ ok: false, reason: 'not_reached' });

    // The default marker: `<prefix>marker:<epoch>:<n>:<tag>`, gone by itself after 10 s.
    await writeMarker(writer, TEST_MARKER_AUTH, 9, 1);
    const pttl = await writer.pttl(mk(9, 1));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(10_000);
  });

  it('forgets positions when its subscriber is cut off, until the next marker', async () => {
    const a = await startInstance('a');
    const b = await startInstance('b');
    await mark(5, 1);
    await writer.set('at:p1', '1');
    for (const i of [a, b]) await seen(i, 'written', 'at:p1');
    expect(b.buffer.depth).toBe(1);

    // Cut b's subscriber: pub/sub keeps nothing for it while it is away.
    const before = b.baselines;
    await writer.call(
      'CLIENT',
      'KILL',
      'USER',
      'default',
      'SKIPME',
      'yes',
      'LADDR',
      `127.0.0.1:${redis.port}`,
      'ID',
      await clientId('b-sub'),
    );
    await waitFor(() => b.resets > 0, 20_000, 'b reset');
    expect(b.buffer.depth).toBe(0);
    await waitFor(() => b.watcher.subscribed && !b.watcher.reconciling, 20_000, 'b resubscribed');
    expect(b.baselines).toBe(before);
    await writer.set('at:p2', '1');
    await mark(5, 2);
    await writer.set('at:p3', '1');
    for (const i of [a, b]) await seen(i, 'written', 'at:p3');
    expect(positionOf(b, 'written', 'at:p2')).toBeUndefined();
    expect(positionOf(a, 'written', 'at:p2')).toBe('5.1.3.0'); // marker set, expire; p1; p2
    expect(positionOf(b, 'written', 'at:p3')).toBe('5.2.2.0');
    expect(positionOf(a, 'written', 'at:p3')).toBe('5.2.2.0');
    expect(a.resets).toBe(0);
    // b's buffer starts over at marker 5.2: it cannot replay from a's earlier commit point.
    expect(b.buffer.eventsAfter({ epoch: 5, marker: 1, offset: 2 })).toMatchObject({
      ok: false,
      reason: 'not_reached',
    });
  });

  it('takes no marker replayed into the hole after CLIENT KILL TYPE pubsub: no position names two events', async () => {
    const a = await startInstance('a');
    const b = await startInstance('b');
    await mark(6, 1);
    await writer.set('at:q1', '1');
    await writer.set('at:q2', '1');
    for (const i of [a, b]) await seen(i, 'written', 'at:q2');
    // Whoever can write the watched Redis cuts every subscriber and, while they come back,
    // writes the genuine marker 6.1 it saw again (SET of the same key: a fresh `set`).
    await writer.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    for (const i of [a, b]) {
      await waitFor(() => i.resets > 0, 20_000, `${i.name} reset`);
      await waitFor(() => i.watcher.subscribed && !i.watcher.reconciling, 20_000, 'resubscribed');
    }
    await writer.set(mk(6, 1), '1', 'PX', 600_000);
    await writer.set('at:q3', '1');
    await writer.set('at:q4', '1');
    for (const i of [a, b]) await seen(i, 'written', 'at:q4');
    // Believed, 6.1 would name at:q3 / at:q4 like at:q1 / at:q2 before the hole (6.1.2.0,
    // 6.1.3.0): merged by node/pos, one of each pair would vanish from the counts.
    for (const i of [a, b]) {
      expect(positionOf(i, 'written', 'at:q1')).toBe('6.1.2.0');
      expect(positionOf(i, 'written', 'at:q3')).toBeUndefined();
      expect(positionOf(i, 'written', 'at:q4')).toBeUndefined();
    }
    await mark(6, 2);
    await writer.set('at:q5', '1');
    for (const i of [a, b]) await seen(i, 'written', 'at:q5');
    for (const i of [a, b]) expect(positionOf(i, 'written', 'at:q5')).toBe('6.2.2.0');
  });
});

async function clientId(name: string): Promise<string> {
  const list = (await writer.call('CLIENT', 'LIST')) as string;
  const line = list.split('\n').find((l) => l.includes(` name=${name} `));
  const id = /\bid=(\d+)/.exec(line ?? '')?.[1];
  if (id === undefined) throw new Error(`no client named ${name}`);
  return id;
}
