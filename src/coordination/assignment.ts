import { createHash } from 'node:crypto';

/**
 * Rendezvous (highest random weight) score of `instance` for `node`: every instance computes
 * the same value, with no coordination.
 */
export function rendezvousWeight(node: string, instance: string): bigint {
  return createHash('sha256')
    .update(node)
    .update('\0')
    .update(instance)
    .digest()
    .readBigUInt64BE(0);
}

/** Instances ordered by descending weight for `node` (ties, never in practice: by id). */
function ranking(node: string, instances: readonly string[]): string[] {
  return [...instances]
    .map((i) => ({ i, w: rendezvousWeight(node, i) }))
    .sort((a, b) => (a.w === b.w ? (a.i < b.i ? -1 : 1) : a.w > b.w ? -1 : 1))
    .map((x) => x.i);
}

/** Pure rendezvous hashing: each node to its highest-weight instance (may be uneven). */
export function rendezvousOwners(
  nodes: readonly string[],
  instances: readonly string[],
): Map<string, string> {
  const out = new Map<string, string>();
  if (instances.length === 0) return out;
  for (const n of nodes) out.set(n, ranking(n, instances)[0] as string);
  return out;
}

/**
 * Desired owner per node: rendezvous hashing, balanced so that each instance gets floor(M/K) or
 * ceil(M/K) of the M nodes. With few nodes pure rendezvous can be uneven;
 * nodes are then placed in a deterministic order: all (node, instance) pairs by descending
 * weight, a pair taken when its node is still free and its instance has room (floor(M/K), and M mod K
 * of them one more, first come first served). Every
 * instance computes the same map from the same sorted inputs.
 *
 * `keyOf` names what a node is for the weights (default: the node id itself). A Cluster master
 * is weighed by the slots it serves, so that the replica promoted in its place is desired for
 * the instance that owned it (docs/ha.md, "Assignment"). `vacant`: keys of nodes gone for a
 * while (a failed Cluster master whose slots nobody serves yet), weighed and placed like nodes
 * but left out of the map, so that the other nodes keep their desired owners meanwhile; a vacant
 * key that a node has too is that node's alone.
 */
export function assignNodes(
  nodes: readonly string[],
  instances: readonly string[],
  keyOf: (node: string) => string = (n) => n,
  vacant: readonly string[] = [],
): Map<string, string> {
  const out = new Map<string, string>();
  const insts = [...new Set(instances)].sort();
  const keys = new Map([...new Set(nodes)].map((n) => [n, keyOf(n)]));
  const taken = new Set(keys.values());
  // A vacant key's stand-in id is never a node id (labels have no NUL).
  for (const k of vacant) if (!taken.has(k)) keys.set(`${VACANT}${k}`, k);
  const ns = [...keys.keys()].sort();
  if (insts.length === 0) return out;
  const floor = Math.floor(ns.length / insts.length);
  // Instances that may hold one more than `floor`: then every node finds room (M in total).
  let extra = ns.length - floor * insts.length;
  const pairs: { n: string; i: string; w: bigint }[] = [];
  for (const n of ns) {
    const key = keys.get(n) as string;
    for (const i of insts) pairs.push({ n, i, w: rendezvousWeight(key, i) });
  }
  pairs.sort((a, b) =>
    a.w !== b.w ? (a.w > b.w ? -1 : 1) : a.n !== b.n ? (a.n < b.n ? -1 : 1) : a.i < b.i ? -1 : 1,
  );
  const load = new Map<string, number>();
  for (const p of pairs) {
    if (out.has(p.n)) continue;
    const l = load.get(p.i) ?? 0;
    if (l > floor || (l === floor && extra === 0)) continue;
    if (l === floor) extra--;
    out.set(p.n, p.i);
    load.set(p.i, l + 1);
  }
  for (const n of out.keys()) if (n.startsWith(VACANT)) out.delete(n);
  return out;
}

const VACANT = 'vacant\0';
