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
  /** Deletes every key matching `pattern` on every master, key by key (no cross-slot DEL). */
  deleteKeys(pattern: string): Promise<void>;
  /** The master on `port` left the masters and a replica took its place (as many as at start). */
  failedOver(port: number): Promise<boolean>;
  /** tokenwatch's `redis.cluster` line for this cluster (two seeds, a fast topology refresh). */
  watchConfig(): string;
  stop(): Promise<void>;
}

/** A CLUSTER NODES line's slot fields as ranges (importing/migrating markers left out). */
export function slotRanges(fields: readonly string[]): (readonly [number, number])[] {
  return fields
    .filter((f) => /^\d+(-\d+)?$/.test(f))
    .map((f) => f.split('-').map(Number))
    .map(([a, b]) => [a!, b ?? a!] as const);
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
  /** SCAN pages of keys matching `pattern`, master by master. */
  const eachKeyPage = async (
    pattern: string,
    page: (c: Redis, keys: string[]) => void | Promise<void>,
  ): Promise<void> => {
    for (const m of await masterList()) {
      const c = new Redis({ port: m.port });
      try {
        let cursor = '0';
        do {
          const [next, keys] = await c.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) await page(c, keys);
        } while (cursor !== '0');
      } finally {
        c.disconnect();
      }
    }
  };
  const seeds = nodes.map((n) => `127.0.0.1:${n.port}`);
  return {
    nodes,
    seeds,
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
      await eachKeyPage(pattern, (_c, keys) => {
        total += keys.length;
      });
      return total;
    },
    async deleteKeys(pattern: string) {
      await eachKeyPage(pattern, async (c, keys) => {
        const del = c.pipeline();
        for (const k of keys) del.del(k);
        await del.exec();
      });
    },
    async failedOver(port: number) {
      const now = await masterList().catch(() => []);
      return now.length === masters && !now.some((m) => m.port === port);
    },
    watchConfig() {
      return `cluster: { nodes: [${seeds.slice(0, 2).join(', ')}], refreshIntervalSeconds: 0.5 }`;
    },
    async stop() {
      for (const c of clients) c.disconnect();
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}
