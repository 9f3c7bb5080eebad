/** Leaf bytes stored per record from v5: a hint for damage classes, not evidence (below). */
export const LEAF_HINT_BYTES = 4;

/**
 * Whether a computed leaf (hex) agrees with the stored one: the full 32 bytes (rows written
 * before v5) or its first LEAF_HINT_BYTES. Verification never rests on the stored leaf: the
 * chain, which hashes the full computed leaf, is what checkpoints and seals sign; the stored
 * leaf only tells an edited row (content no longer matches) from a broken link.
 */
export function leafMatches(computedHex: string, storedHex: string): boolean {
  return (
    (storedHex.length === 64 || storedHex.length === LEAF_HINT_BYTES * 2) &&
    computedHex.startsWith(storedHex)
  );
}
