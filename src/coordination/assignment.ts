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
 * the instance that owned it (docs/ha.md, "Assignment").
 */
export function assignNodes(
  nodes: readonly string[],
  instances: readonly string[],
  keyOf: (node: string) => string = (n) => n,
): Map<string, string> {
  const out = new Map<string, string>();
  const insts = [...new Set(instances)].sort();
  const ns = [...new Set(nodes)].sort();
  if (insts.length === 0) return out;
  const floor = Math.floor(ns.length / insts.length);
  // Instances that may hold one more than `floor`: then every node finds room (M in total).
  let extra = ns.length - floor * insts.length;
  const pairs: { n: string; i: string; w: bigint }[] = [];
  for (const n of ns) {
    const key = keyOf(n);
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
  return out;
}
