/**
 * What a Redis Cluster master is for the coordination's assignment (docs/ha.md, "Assignment"):
 * one slot it serves, chosen by a fixed hash of the slot numbers (the slot whose hash is the
 * highest), written `slot:<n>`. The replica promoted in place of a dead master serves the same
 * slots, so it gets the same key, and the dead master's owner stays desired for it. A resharding
 * changes a master's key only when it moves that one slot (moving a master's lowest slots first,
 * as `redis-cli --cluster reshard` does, would change a lowest-slot key at every slot moved).
 */
const CLUSTER_SLOTS = 16384;

/** murmur3's 32-bit finaliser of every slot number: a fixed, well-mixed order of the slots. */
const SLOT_HASH = (() => {
  const t = new Uint32Array(CLUSTER_SLOTS);
  for (let s = 0; s < CLUSTER_SLOTS; s++) {
    let h = s + 0x9e3779b9;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    t[s] = (h ^ (h >>> 16)) >>> 0;
  }
  return t;
})();

/** `slot:<n>` for the slot of `ranges` (inclusive) with the highest hash; undefined for none. */
export function slotIdentity(ranges: readonly (readonly [number, number])[]): string | undefined {
  let best = -1;
  let bestHash = -1;
  for (const [a, b] of ranges)
    for (let s = Math.max(0, a); s <= Math.min(CLUSTER_SLOTS - 1, b); s++) {
      const h = SLOT_HASH[s] as number;
      if (h > bestHash) {
        bestHash = h;
        best = s;
      }
    }
  return best < 0 ? undefined : `slot:${best}`;
}
