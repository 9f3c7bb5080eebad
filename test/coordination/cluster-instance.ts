import { startApp, type Harness } from '../helpers/app-harness.js';
import type { RedisCluster } from '../helpers/redis-cluster.js';

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
