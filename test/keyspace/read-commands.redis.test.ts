import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READ_COMMANDS, readKeys } from '../../src/keyspace/read-commands.js';
import { waitFor } from '../helpers/app-harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * The hit ratio subtracts the misses (keymiss) of a window from its reads (MONITOR): that holds
 * only if every counted read command publishes exactly one `keymiss` per missing key that
 * readKeys says it reads (issue #21).
 */

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis({ notify: 'Em' });
});
afterAll(async () => {
  await redis.stop();
});

/** One invocation of each counted command on the given keys (the rest of its arguments). */
const INVOCATIONS: Record<string, (k: string[]) => string[]> = {
  get: (k) => [k[0]!],
  getex: (k) => [k[0]!, 'EX', '10'],
  getdel: (k) => [k[0]!],
  getrange: (k) => [k[0]!, '0', '3'],
  strlen: (k) => [k[0]!],
  mget: (k) => k,
  exists: (k) => k,
  hget: (k) => [k[0]!, 'f'],
  hmget: (k) => [k[0]!, 'f', 'g'],
  hgetall: (k) => [k[0]!],
  hexists: (k) => [k[0]!, 'f'],
  hkeys: (k) => [k[0]!],
  hvals: (k) => [k[0]!],
  hlen: (k) => [k[0]!],
  ttl: (k) => [k[0]!],
  pttl: (k) => [k[0]!],
  expiretime: (k) => [k[0]!],
  type: (k) => [k[0]!],
  smembers: (k) => [k[0]!],
  sismember: (k) => [k[0]!, 'm'],
  hstrlen: (k) => [k[0]!, 'f'],
  hrandfield: (k) => [k[0]!],
  scard: (k) => [k[0]!],
  smismember: (k) => [k[0]!, 'a', 'b'],
  srandmember: (k) => [k[0]!],
  substr: (k) => [k[0]!, '0', '3'],
  touch: (k) => k,
};

describe('counted read commands', () => {
  it('each publishes one keymiss per missing key readKeys names, and nothing else', async () => {
    expect(Object.keys(INVOCATIONS).sort()).toEqual([...READ_COMMANDS.keys()].sort());
    const sub = redis.client();
    const seen: string[] = [];
    sub.on('message', (_channel: string, key: string) => seen.push(key));
    await sub.subscribe('__keyevent@0__:keymiss');
    const c = redis.client();
    const expected: string[] = [];
    for (const [name, args] of Object.entries(INVOCATIONS)) {
      const tag = randomBytes(4).toString('hex');
      const line = [name.toUpperCase(), ...args([`${name}:${tag}:a`, `${name}:${tag}:b`])];
      const keys = readKeys(line);
      expect(keys.length, name).toBeGreaterThan(0);
      expected.push(...keys);
      await c.call(line[0]!, ...line.slice(1));
    }
    const marker = `marker:${randomBytes(6).toString('hex')}`;
    await c.get(marker);
    await waitFor(() => seen.includes(marker), 10_000, 'the marker keymiss');
    expect(seen.filter((k) => k !== marker)).toEqual(expected);
  });
});
