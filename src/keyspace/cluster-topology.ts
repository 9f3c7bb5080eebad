import type { Redis } from 'ioredis';

const CLUSTER_SLOTS = 16384;

/** A Cluster master as CLUSTER SHARDS / CLUSTER NODES describe it. */
export interface ClusterMaster {
  id: string;
  host: string;
  port: number;
  /** Slot ranges [start, end] the master serves. */
  slots: [number, number][];
}

/** One read of a Cluster's topology. */
export interface ClusterTopology {
  /** The healthy masters: notifications are node-local, so each one needs a subscriber. */
  masters: ClusterMaster[];
  /**
   * Slot ranges of failed masters that no healthy master serves yet (a failover under way, or a
   * shard down), one entry per failed master. Read from the Cluster itself, so every instance
   * (one started during the failover too) sees the same: the coordination weighs them as
   * vacant nodes (KeyspaceService.vacantAssignmentKeys).
   */
  unserved: [number, number][][];
}

/**
 * Reads the topology of a Redis Cluster. CLUSTER SHARDS (Redis >= 7.0) names every shard's
 * nodes with role, health and endpoints; CLUSTER NODES is the fallback for servers that lack
 * it, and the source of each master's slots in every case (mergeTopology).
 */
export async function readTopology(client: Redis): Promise<ClusterTopology> {
  let good: ClusterTopology | undefined;
  for (let attempt = 1; ; attempt++) {
    let nodes: ClusterTopology;
    let shards: ClusterTopology;
    try {
      // An ACL without `cluster|nodes` (docs list it): the shards' own slots, as before.
      const nodesText = await refusable(client.call('CLUSTER', 'NODES'), /NOPERM/i);
      if (nodesText === undefined)
        return parseShards((await client.call('CLUSTER', 'SHARDS')) as unknown[]);
      nodes = parseNodes(nodesText as string);
      const reply = await refusable(
        client.call('CLUSTER', 'SHARDS'),
        /unknown subcommand|unknown command|NOPERM/i,
      );
      if (reply === undefined) return nodes;
      shards = parseShards(reply as unknown[]);
    } catch (err) {
      // A read again that failed (LOADING, a reset): the pair read before is still an answer.
      if (good) return good;
      throw err;
    }
    // Two reads, two moments: a failover between them names other healthy masters in each.
    // Read again (a failover settles within a few round trips); then take the later one's
    // masters with what the other knows of them.
    good = mergeTopology(shards, nodes);
    if (sameMasters(shards, nodes) || attempt >= 3) return good;
  }
}

/** The reply, or undefined when the server refuses the command with an error `refused` matches. */
async function refusable(reply: Promise<unknown>, refused: RegExp): Promise<unknown> {
  try {
    return await reply;
  } catch (err) {
    if (refused.test((err as Error).message)) return undefined;
    throw err;
  }
}

/** Both reads name the same healthy masters. */
export function sameMasters(a: ClusterTopology, b: ClusterTopology): boolean {
  const ids = (t: ClusterTopology) =>
    t.masters
      .map((m) => m.id)
      .sort()
      .join(' ');
  return ids(a) === ids(b);
}

/**
 * The healthy masters of CLUSTER SHARDS with their slots as CLUSTER NODES lists them per node,
 * and the unserved slots of CLUSTER NODES. CLUSTER SHARDS reports slots per shard, taken from
 * one node of it: on Redis 7.2-7.4 the failed old master, so a promoted master's shard has no
 * slots (redis/redis#13414); from 8.0 a shard whose nodes all failed has none. CLUSTER NODES
 * lists what each node serves, the failed master's slots included until its replica is
 * promoted. A master CLUSTER NODES does not list keeps the slots CLUSTER SHARDS gave it.
 */
export function mergeTopology(shards: ClusterTopology, nodes: ClusterTopology): ClusterTopology {
  const slotsOf = new Map(nodes.masters.map((m) => [m.id, m.slots]));
  const masters = shards.masters.map((m) => ({ ...m, slots: slotsOf.get(m.id) ?? m.slots }));
  const unserved = new Map<string, [number, number][]>();
  for (const r of [...nodes.unserved, ...shards.unserved])
    if (!servedBy(r, masters)) unserved.set(JSON.stringify(r), r);
  return { masters, unserved: [...unserved.values()] };
}

function pairs(flat: unknown): Map<string, unknown> {
  const m = new Map<string, unknown>();
  if (!Array.isArray(flat)) return m;
  for (let i = 0; i + 1 < flat.length; i += 2) m.set(String(flat[i]), flat[i + 1]);
  return m;
}

export function parseShards(reply: unknown[]): ClusterTopology {
  const out: ClusterMaster[] = [];
  const unserved: [number, number][][] = [];
  for (const shard of reply) {
    const s = pairs(shard);
    const slotList = (s.get('slots') as unknown[] | undefined) ?? [];
    const slots: [number, number][] = [];
    for (let i = 0; i + 1 < slotList.length; i += 2)
      slots.push([Number(slotList[i]), Number(slotList[i + 1])]);
    let healthy = false;
    let failed = false;
    for (const node of (s.get('nodes') as unknown[] | undefined) ?? []) {
      const n = pairs(node);
      if (n.get('role') !== 'master') continue;
      if (n.get('health') === 'fail') {
        failed = true;
        continue;
      }
      const ip = n.get('ip') ?? n.get('endpoint');
      const host = typeof ip === 'string' ? ip : '';
      const port = Number(n.get('port') ?? n.get('tls-port'));
      if (!host || !port) continue;
      healthy = true;
      out.push({ id: String(n.get('id')), host, port, slots });
    }
    if (failed && !healthy && slots.length > 0) unserved.push(slots);
  }
  return { masters: out.sort((a, b) => a.id.localeCompare(b.id)), unserved };
}

export function parseNodes(text: string): ClusterTopology {
  const out: ClusterMaster[] = [];
  const failed: [number, number][][] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length < 8) continue;
    const flags = (f[2] ?? '').split(',');
    if (!flags.includes('master')) continue;
    const slots: [number, number][] = [];
    for (const r of f.slice(8)) {
      if (r.startsWith('[')) continue; // migrating/importing markers
      const [a, b] = r.split('-');
      slots.push([Number(a), Number(b ?? a)]);
    }
    if (flags.includes('fail') || flags.includes('noaddr')) {
      if (slots.length > 0) failed.push(slots);
      continue;
    }
    const m = /^(.*):(\d+)@/.exec(f[1] ?? '');
    if (!m) continue;
    out.push({ id: f[0] as string, host: m[1] as string, port: Number(m[2]), slots });
  }
  // A failed master's slots stay on it until its replica is promoted (then they move).
  const unserved = failed.filter((r) => !servedBy(r, out));
  return { masters: out.sort((a, b) => a.id.localeCompare(b.id)), unserved };
}

/** Whether every slot of `ranges` is served by one of `masters`. */
export function servedBy(
  ranges: readonly (readonly [number, number])[],
  masters: Iterable<ClusterMaster>,
): boolean {
  const seen = new Uint8Array(CLUSTER_SLOTS);
  for (const m of masters)
    for (const [a, b] of m.slots) seen.fill(1, Math.max(0, a), Math.min(CLUSTER_SLOTS, b + 1));
  return ranges.every(([a, b]) => {
    for (let s = a; s <= b; s++) if (seen[s] !== 1) return false;
    return true;
  });
}
