import { canonicalRecord, chainHashHex, leafHashHex } from './canonical.js';
import type { ArchivedRow } from './archive-file.js';
import { decodeColumns, leafMatches, type StoredColumns } from './record-codec.js';

/** Where the re-hash of archived rows ended, and the first row that did not re-hash. */
export interface Rehash {
  /** Chain hash (hex) after the last row, recomputed (not read from the file). */
  chain: string;
  rows: number;
  /** First failure, undefined when every row re-hashed. */
  problem: { seq: number; detail: string } | undefined;
}

const hex = (v: unknown): string | undefined =>
  v instanceof Uint8Array ? Buffer.from(v).toString('hex') : undefined;

/**
 * Re-hashes archived rows as the database scan does for a row it re-checks (verify-rows.ts):
 * the stored columns decoded by the storage codec, the canonical text, the leaf hash compared
 * with the stored leaf (or its 4-byte hint), and the chain recomputed from `prevChain` and
 * compared with the stored one. Seqs must follow on from `fromSeq` without a gap. The returned
 * chain is the recomputed one: the caller compares it with the signed checkpoint at the end.
 */
export function rehashArchivedRows(
  prevChain: string,
  fromSeq: number,
  rows: readonly ArchivedRow[],
): Rehash {
  let chain = prevChain;
  let expected = fromSeq;
  for (const r of rows) {
    const [seq, time, source, type, kind, fingerprint, attrs, leafBlob, chainBlob] = r;
    const fail = (detail: string): Rehash => ({
      chain,
      rows: expected - fromSeq,
      problem: { seq: expected, detail },
    });
    if (seq !== expected) return fail(`row for seq ${expected} is ${String(seq)}`);
    const leafStored = hex(leafBlob);
    const chainStored = hex(chainBlob);
    if (typeof time !== 'number' || leafStored === undefined || chainStored === undefined)
      return fail(`record ${expected}: a column holds a value of the wrong type`);
    let leaf: string;
    try {
      const stored: StoredColumns = {
        seq,
        time,
        source: source as string | null,
        type: type as string | null,
        kind: kind as string | null,
        fingerprint: fingerprint as string | null,
        attrs: attrs as string | Uint8Array,
      };
      leaf = leafHashHex(canonicalRecord(decodeColumns(stored)));
    } catch (err) {
      return fail(`record ${expected}: attributes do not decode (${(err as Error).message})`);
    }
    if (!leafMatches(leaf, leafStored))
      return fail(`record ${expected} does not match its leaf hash`);
    chain = chainHashHex(chain, leaf);
    if (chain !== chainStored)
      return fail(`record ${expected}: stored chain hash is not SHA-256(previous chain || leaf)`);
    expected += 1;
  }
  return { chain, rows: expected - fromSeq, problem: undefined };
}
