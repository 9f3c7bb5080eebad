import { describe, expect, it } from 'vitest';
import { parseNodes, parseShards } from '../../src/keyspace/cluster-topology.js';

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

    // Promoted: the shard has a healthy master again, nothing is unserved.
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
