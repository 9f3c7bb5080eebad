import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPosition } from '../../src/domain/position.js';
import { keySlot, tagForSlots } from '../../src/keyspace/cluster-slot.js';
import {
  DEFAULT_KEY_PREFIX,
  type StreamPositionTracker,
  writeMarker,
} from '../../src/keyspace/stream-position.js';
import { waitFor } from '../helpers/app-harness.js';
import { mk, TEST_MARKER_AUTH, tracker as newTracker } from '../helpers/markers.js';
import { startCluster, type RedisCluster } from '../helpers/redis-cluster.js';

/**
 * Issue #20 on a real Redis Cluster: notifications are node-local, so each master's stream has
 * its own markers. A marker carries a hash tag of a slot its master serves and is written over
 * that master's own connection; only that master's stream sees it.
 */

interface Master {
  port: number;
  tag: string;
  commands: Redis;
  subscriber: Redis;
  tracker: StreamPositionTracker;
  /** Position of every notification received, formatted ('-' unknown), with its key. */
  seen: { key: string; pos: string }[];
}

/** Marker TTL that outlives the test: no `expired` among the counted notifications. */
const LONG = 600_000;

let cluster: RedisCluster;
const masters: Master[] = [];

function ranges(slots: string[]): [number, number][] {
  return slots
    .filter((s) => !s.startsWith('['))
    .map((s) => {
      const [a, b] = s.split('-').map(Number) as [number, number | undefined];
      return [a, b ?? a];
    });
}

beforeAll(async () => {
  cluster = await startCluster(3, 0);
  for (const m of await cluster.masters()) {
    const commands = new Redis({ port: m.port, host: '127.0.0.1' });
    await commands.config('SET', 'notify-keyspace-events', 'Eg$x');
    const subscriber = new Redis({ port: m.port, host: '127.0.0.1' });
    const tracker = newTracker();
    const entry: Master = {
      port: m.port,
      tag: tagForSlots(ranges(m.slots))!,
      commands,
      subscriber,
      tracker,
      seen: [],
    };
    subscriber.on('pmessageBuffer', (_p: Buffer, channel: Buffer, key: Buffer) => {
      const pos = tracker.observe(channel.toString('latin1', '__keyevent@0__:'.length), key);
      entry.seen.push({ key: key.toString('latin1'), pos: pos ? formatPosition(pos) : '-' });
    });
    await subscriber.psubscribe('__keyevent@0__:*');
    masters.push(entry);
  }
}, 60_000);
afterAll(async () => {
  for (const m of masters) {
    m.subscriber.disconnect();
    m.commands.disconnect();
  }
  await cluster?.stop();
});

describe('stream position markers on a real Redis Cluster', () => {
  it('land on the master whose slot their tag names, and only its stream counts from them', async () => {
    expect(masters).toHaveLength(3);
    const [m0, m1] = masters as [Master, Master, Master];
    expect(new Set(masters.map((m) => m.tag)).size).toBe(3);

    await writeMarker(m0.commands, TEST_MARKER_AUTH, 3, 1, m0.tag, DEFAULT_KEY_PREFIX, LONG);
    // Another master's tag on this master's connection: MOVED, never a marker elsewhere.
    await expect(
      writeMarker(m0.commands, TEST_MARKER_AUTH, 3, 2, m1.tag, DEFAULT_KEY_PREFIX, LONG),
    ).rejects.toThrow(/MOVED/);

    // Token writes through a cluster client land on whichever master serves their slot.
    const client = cluster.client();
    const onM0 = `at:{${m0.tag}}:a`;
    const onM1 = `at:{${m1.tag}}:b`;
    expect(keySlot(onM0)).toBe(keySlot(mk(3, 1, m0.tag)));
    await client.set(onM1, '1');
    await client.set(onM0, '1', 'EX', 100);
    await waitFor(() => m0.seen.length === 4, 20_000, 'm0 notifications');
    await waitFor(() => m1.seen.some((s) => s.key === onM1), 20_000, 'm1 notification');

    // m0: marker set (0) + expire (1), the token's set (2) + expire (3).
    expect(m0.seen.map((s) => s.pos)).toEqual(['3.1.0', '3.1.1', '3.1.2', '3.1.3']);
    expect(m0.tracker.base).toEqual({ epoch: 3, marker: 1 });
    // m1 never saw a marker: its stream has no positions.
    expect(m1.seen.map((s) => s.pos)).toEqual(['-']);
    expect(m1.tracker.base).toBeUndefined();

    await writeMarker(m1.commands, TEST_MARKER_AUTH, 3, 1, m1.tag, DEFAULT_KEY_PREFIX, LONG);
    await client.del(onM1);
    await waitFor(() => m1.seen.length === 4, 20_000, 'm1 marker and del');
    expect(m1.seen.map((s) => s.pos)).toEqual(['-', '3.1.0', '3.1.1', '3.1.2']);
    expect(m0.seen).toHaveLength(4);
  }, 60_000);
});
