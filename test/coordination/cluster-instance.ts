import { afterAll, beforeAll } from 'vitest';
import { assignNodes } from '../../src/coordination/assignment.js';
import { slotIdentity } from '../../src/keyspace/slot-identity.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';
import { slotRanges, startCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * An in-process instance with coordination on, watching `cluster` (lease `leaseMs`, 3 s unless given). `coordination`:
 * a separate coordination Redis (docs/ha.md advises one for a Cluster); unset, the Cluster itself.
 * Every instance of a test shares `hmacKey` (fingerprints and marker tags must agree).
 */
export function startClusterInstance(
  cluster: RedisCluster,
  id: string,
  o: { hmacKey: string; coordination?: string; leaseMs?: number },
): Harness {
  return startApp('redis://127.0.0.1:1', {
    redis: [cluster.watchConfig()],
    yaml: `
coordination:
  enabled: true
  instanceId: ${id}
  leaseMs: ${o.leaseMs ?? 3000}
${o.coordination ? `  redis: ${o.coordination}\n` : ''}`,
    env: { TOKENWATCH_HMAC_KEY: o.hmacKey },
  });
}

/** The nodes `h` owns now. */
export const ownedBy = (h: Harness): string[] =>
  Object.entries(h.app.coordinator?.roles() ?? {})
    .filter(([, r]) => r === 'owner')
    .map(([n]) => n);

/**
 * A real Cluster (3 masters + 3 replicas) and a separate coordination Redis for the file's
 * tests, started before them and stopped (with every instance `start` made) after them.
 * `start(id, leaseMs?)` makes an instance with the file's shared HMAC key.
 */
export function clusterWithCoordination(hmacKey: string): {
  cluster: () => RedisCluster;
  start: (id: string, leaseMs?: number) => Harness;
} {
  let cluster: RedisCluster | undefined;
  let coordination: RedisServer | undefined;
  const running: Harness[] = [];
  beforeAll(async () => {
    cluster = await startCluster(3, 1);
    coordination = await startRedis();
  }, 60_000);
  afterAll(async () => {
    for (const h of running) await h.stop().catch(() => undefined);
    await cluster?.stop();
    await coordination?.stop();
  });
  return {
    cluster: () => cluster as RedisCluster,
    start: (id, leaseMs) => {
      const h = startClusterInstance(cluster as RedisCluster, id, {
        hmacKey,
        coordination: coordination?.url,
        leaseMs,
      });
      running.push(h);
      return h;
    },
  };
}

/** A Cluster node's label as the watchers name it. */
export const label = (port: number): string => `127.0.0.1:${port}`;

/** A Cluster master's assignment key, as KeyspaceService.assignmentKey names it. */
export const masterKey = (m: { slots: string[] }): string =>
  slotIdentity(slotRanges(m.slots)) as string;

/**
 * Waits until each of `masters` is owned by the instance (`hs[x]`, id `ids[x]`) the assignment
 * desires for it (handovers done); the desired map, assignment key -> instance id.
 */
export async function desiredOwnersSettled(
  hs: readonly Harness[],
  ids: readonly string[],
  masters: readonly { port: number; slots: string[] }[],
): Promise<Map<string, string>> {
  const desired = assignNodes(masters.map(masterKey), ids);
  await waitFor(
    () =>
      hs.every((h, x) =>
        masters.every(
          (m) => ownedBy(h).includes(label(m.port)) === (desired.get(masterKey(m)) === ids[x]),
        ),
      ),
    30_000,
    'each master owned by its desired instance',
  );
  return desired;
}
