import { spawnSync } from 'node:child_process';
import { Cluster, Redis } from 'ioredis';
import { startRedis, type RedisServer } from './redis-server.js';

export interface RedisCluster {
  nodes: RedisServer[];
  seeds: string[];
  /** A cluster-aware client (closed by stop()). */
  client(): Cluster;
  /** Ports of the current masters, from CLUSTER NODES. */
  masters(): Promise<{ id: string; port: number; slots: string[] }[]>;
  /** Total keys matching `pattern` across masters. */
  countKeys(pattern: string): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A real Redis Cluster on loopback: `masters` masters with one replica each, created with
 * `redis-cli --cluster create`. A short cluster-node-timeout makes failover fast in tests.
 */
export async function startCluster(masters = 3, replicas = 1): Promise<RedisCluster> {
  const total = masters * (1 + replicas);
  const nodes = await Promise.all(
    Array.from({ length: total }, () =>
      startRedis({
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-node-timeout',
          '1000',
          '--cluster-config-file',
          'nodes.conf',
          '--appendonly',
          'no',
        ],
      }),
    ),
  );
  const create = spawnSync(
    'redis-cli',
    [
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (create.status !== 0)
    throw new Error(`cluster create failed: ${create.stdout}${create.stderr}`);
  // Wait until every node agrees the cluster is ok.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const states = await Promise.all(
      nodes.map(async (n) => {
        const c = new Redis({ port: n.port, lazyConnect: true });
        try {
          await c.connect();
          const ok = ((await c.call('CLUSTER', 'INFO')) as string).includes('cluster_state:ok');
          // A replica that never finished its first sync cannot be promoted on failover.
          const repl = (await c.call('INFO', 'replication')) as string;
          const synced = !repl.includes('role:slave') || repl.includes('master_link_status:up');
          return ok && synced;
        } finally {
          c.disconnect();
        }
      }),
    );
    if (states.every(Boolean)) break;
    if (Date.now() > deadline) throw new Error('cluster did not become ok');
    await new Promise((r) => setTimeout(r, 100));
  }
  const clients: Cluster[] = [];
  const masterList = async (): Promise<{ id: string; port: number; slots: string[] }[]> => {
    for (const n of nodes) {
      // Bounded: a SIGSTOPped node accepts the connection and never answers.
      const c = new Redis({
        port: n.port,
        lazyConnect: true,
        retryStrategy: () => null,
        connectTimeout: 2000,
        commandTimeout: 2000,
      });
      c.on('error', () => undefined);
      try {
        await c.connect();
        const text = (await c.call('CLUSTER', 'NODES')) as string;
        return text
          .trim()
          .split('\n')
          .map((l) => l.split(' '))
          .filter((f) => (f[2] ?? '').includes('master') && !(f[2] ?? '').includes('fail'))
          .map((f) => ({ id: f[0]!, port: Number(/:(\d+)@/.exec(f[1]!)![1]), slots: f.slice(8) }));
      } catch {
        // node down: ask the next one
      } finally {
        c.disconnect();
      }
    }
    throw new Error('no cluster node answered');
  };
  return {
    nodes,
    seeds: nodes.map((n) => `127.0.0.1:${n.port}`),
    client() {
      const c = new Cluster(
        nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
        {
          clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
        },
      );
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    masters: masterList,
    async countKeys(pattern: string) {
      let total = 0;
      for (const m of await masterList()) {
        const c = new Redis({ port: m.port });
        let cursor = '0';
        do {
          const [next, keys] = await c.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = next;
          total += keys.length;
        } while (cursor !== '0');
        c.disconnect();
      }
      return total;
    },
    async stop() {
      for (const c of clients) c.disconnect();
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}
