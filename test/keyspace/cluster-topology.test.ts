import { describe, expect, it } from 'vitest';
import {
  mergeTopology,
  parseNodes,
  parseShards,
  readTopology,
  sameMasters,
} from '../../src/keyspace/cluster-topology.js';
import type { Redis } from 'ioredis';

/** A CLUSTER SHARDS shard as RESP2 delivers it (flat field/value arrays). */
const shard = (slots: number[], nodes: Record<string, string | number>[]): unknown[] => [
  'slots',
  slots,
  'nodes',
  nodes.map((n) => Object.entries(n).flat()),
];
const node = (id: string, port: number, role: string, health: string) => ({
  id,
  ip: '127.0.0.1',
  port,
  role,
  health,
});

describe('parseShards', () => {
  it('returns the healthy masters, and a failed master whose slots nobody serves as unserved', () => {
    const during = [
      shard(
        [0, 5460],
        [node('a', 7000, 'master', 'online'), node('a2', 7003, 'replica', 'online')],
      ),
      shard(
        [5461, 10922],
        [node('b', 7001, 'master', 'fail'), node('b2', 7004, 'replica', 'online')],
      ),
    ];
    const t = parseShards(during);
    expect(t.masters.map((m) => m.port)).toEqual([7000]);
    expect(t.unserved).toEqual([[[5461, 10922]]]);

    // Promoted, as Redis 7.0 lists it (seen on this machine's 7.0.15): the old master alone in a
    // shard without slots; nothing is unserved.
    const after70 = [
      shard([0, 5460], [node('a', 7000, 'master', 'online')]),
      shard([5461, 10922], [node('b2', 7004, 'master', 'online')]),
      shard([], [node('b', 7001, 'master', 'fail')]),
    ];
    expect(parseShards(after70).unserved).toEqual([]);
    expect(parseShards(after70).masters.map((m) => m.port)).toEqual([7000, 7004]);
    // Promoted, as 8.0 lists it: the failed and the promoted master in one shard.
    const after = [
      shard([0, 5460], [node('a', 7000, 'master', 'online')]),
      shard(
        [5461, 10922],
        [node('b', 7001, 'master', 'fail'), node('b2', 7004, 'master', 'online')],
      ),
    ];
    const u = parseShards(after);
    expect(u.masters.map((m) => [m.port, m.slots])).toEqual([
      [7000, [[0, 5460]]],
      [7004, [[5461, 10922]]],
    ]);
    expect(u.unserved).toEqual([]);
  });

  it('does not call a shard without slots, or with only replicas failed, unserved', () => {
    const t = parseShards([
      shard([], [node('c', 7005, 'master', 'fail')]),
      shard([0, 16383], [node('a', 7000, 'master', 'online'), node('a2', 7003, 'replica', 'fail')]),
    ]);
    expect(t.unserved).toEqual([]);
    expect(t.masters.map((m) => m.port)).toEqual([7000]);
  });
});

describe('parseNodes', () => {
  const line = (id: string, port: number, flags: string, slots: string) =>
    `${id} 127.0.0.1:${port}@${port + 10000} ${flags} - 0 0 1 connected ${slots}`.trim();

  it('returns the healthy masters, and a failed master still holding unserved slots as unserved', () => {
    const during = [
      line('a', 7000, 'myself,master', '0-5460'),
      line('b', 7001, 'master,fail', '5461-10922 10923'),
      line('b2', 7004, 'slave', ''),
    ].join('\n');
    const t = parseNodes(during);
    expect(t.masters.map((m) => m.port)).toEqual([7000]);
    expect(t.unserved).toEqual([
      [
        [5461, 10922],
        [10923, 10923],
      ],
    ]);
    // After the promotion the failed master lists no slots any more.
    const after = [
      line('a', 7000, 'myself,master', '0-5460'),
      line('b', 7001, 'master,fail', ''),
      line('b2', 7004, 'master', '5461-10923'),
    ].join('\n');
    expect(parseNodes(after).unserved).toEqual([]);
  });
});

describe('mergeTopology', () => {
  const line = (id: string, port: number, flags: string, slots: string) =>
    `${id} 127.0.0.1:${port}@${port + 10000} ${flags} - 0 0 1 connected ${slots}`.trim();

  it("takes each master's slots from CLUSTER NODES: Redis 7.2-7.4 list a promoted master's shard without slots", () => {
    // redis/redis#13414: the shard's slots come from its first node, the failed old master.
    const shards = parseShards([
      shard([0, 5460], [node('a', 7000, 'master', 'online')]),
      shard([], [node('b', 7001, 'master', 'fail'), node('b2', 7004, 'master', 'online')]),
    ]);
    expect(shards.masters.find((m) => m.id === 'b2')?.slots).toEqual([]);
    const nodes = parseNodes(
      [
        line('a', 7000, 'myself,master', '0-5460'),
        line('b', 7001, 'master,fail', ''),
        line('b2', 7004, 'master', '5461-10922'),
      ].join('\n'),
    );
    const t = mergeTopology(shards, nodes);
    expect(t.masters.map((m) => [m.id, m.slots])).toEqual([
      ['a', [[0, 5460]]],
      ['b2', [[5461, 10922]]],
    ]);
    expect(t.unserved).toEqual([]);
  });

  it('names the slots of a shard whose nodes all failed unserved (8.0 lists such a shard without slots)', () => {
    const shards = parseShards([
      shard([0, 5460], [node('a', 7000, 'master', 'online')]),
      shard([], [node('b', 7001, 'master', 'fail')]),
    ]);
    expect(shards.unserved).toEqual([]);
    const nodes = parseNodes(
      [
        line('a', 7000, 'myself,master', '0-5460'),
        line('b', 7001, 'master,fail', '5461-10922'),
      ].join('\n'),
    );
    const t = mergeTopology(shards, nodes);
    expect(t.masters.map((m) => m.id)).toEqual(['a']);
    expect(t.unserved).toEqual([[[5461, 10922]]]);
  });

  it('keeps the slots CLUSTER SHARDS gave a master CLUSTER NODES does not list', () => {
    const shards = parseShards([shard([0, 16383], [node('a', 7000, 'master', 'online')])]);
    const t = mergeTopology(shards, parseNodes(''));
    expect(t.masters.map((m) => m.slots)).toEqual([[[0, 16383]]]);
  });

  it('tells two reads that name other healthy masters apart (a failover between them)', () => {
    const before = parseNodes(
      [line('a', 7000, 'myself,master', '0-5460'), line('b', 7001, 'master', '5461-16383')].join(
        '\n',
      ),
    );
    const after = parseShards([
      shard([0, 5460], [node('a', 7000, 'master', 'online')]),
      shard([5461, 16383], [node('b', 7001, 'master', 'fail')]),
    ]);
    expect(sameMasters(after, before)).toBe(false);
    expect(sameMasters(before, before)).toBe(true);
    // Merged anyway (after three tries), the failed shard's slots stay unserved.
    expect(mergeTopology(after, before).unserved).toEqual([[[5461, 16383]]]);
  });
});

describe('readTopology', () => {
  const line = (id: string, port: number, flags: string, slots: string) =>
    `${id} 127.0.0.1:${port}@${port + 10000} ${flags} - 0 0 1 connected ${slots}`.trim();
  const healthy = [
    line('a', 7000, 'myself,master', '0-5460'),
    line('b', 7001, 'master', '5461-16383'),
  ].join('\n');
  const failed = [
    line('a', 7000, 'myself,master', '0-5460'),
    line('b', 7001, 'master,fail', '5461-16383'),
  ].join('\n');
  const shardsFailed = [
    shard([0, 5460], [node('a', 7000, 'master', 'online')]),
    shard([5461, 16383], [node('b', 7001, 'master', 'fail')]),
  ];
  /** A client answering CLUSTER NODES / SHARDS from queues (the last answer repeats). */
  function fake(replies: Record<string, (() => unknown)[]>) {
    const calls: string[] = [];
    const client = {
      call: (_c: string, sub: string) => {
        calls.push(sub);
        const q = replies[sub] as (() => unknown)[];
        const f = (q.length > 1 ? q.shift() : q[0]) as () => unknown;
        return new Promise((resolve) => {
          resolve(f());
        });
      },
    } as unknown as Redis;
    return { client, calls };
  }

  it('reads both again while they name other healthy masters, three pairs at most', async () => {
    const f = fake({ NODES: [() => healthy], SHARDS: [() => shardsFailed] });
    const t = await readTopology(f.client);
    expect(f.calls).toEqual(['NODES', 'SHARDS', 'NODES', 'SHARDS', 'NODES', 'SHARDS']);
    expect(t.masters.map((m) => m.id)).toEqual(['a']);
    expect(t.unserved).toEqual([[[5461, 16383]]]);
  });

  it('stops at the first pair that agrees, and names unserved slots once', async () => {
    const f = fake({ NODES: [() => healthy, () => failed], SHARDS: [() => shardsFailed] });
    const t = await readTopology(f.client);
    expect(f.calls).toEqual(['NODES', 'SHARDS', 'NODES', 'SHARDS']);
    expect(t.unserved).toEqual([[[5461, 16383]]]);
  });

  it('answers with the pair read before when a read again fails', async () => {
    const loading = () => {
      throw new Error('LOADING Redis is loading the dataset in memory');
    };
    const f = fake({ NODES: [() => healthy, loading], SHARDS: [() => shardsFailed] });
    const t = await readTopology(f.client);
    expect(t.masters.map((m) => m.id)).toEqual(['a']);
    const first = fake({ NODES: [loading], SHARDS: [() => shardsFailed] });
    await expect(readTopology(first.client)).rejects.toThrow(/LOADING/);
  });

  it('falls back to CLUSTER SHARDS alone when the ACL refuses CLUSTER NODES', async () => {
    const noperm = () => {
      throw new Error("NOPERM User u has no permissions to run the 'cluster|nodes' command");
    };
    const f = fake({ NODES: [noperm], SHARDS: [() => shardsFailed] });
    const t = await readTopology(f.client);
    expect(f.calls).toEqual(['NODES', 'SHARDS']);
    expect(t.masters.map((m) => m.id)).toEqual(['a']);
    expect(t.unserved).toEqual([[[5461, 16383]]]);
  });
});
