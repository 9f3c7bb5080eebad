/**
 * Classes of damage `tokenwatch verify` reports (CloudTrail validate-logs reports modified,
 * deleted and missing files; these are the ledger's equivalents):
 * - `modified`: a record's bytes, leaf or chain changed (or the chain was recomputed after an
 *   edit, which only a signed checkpoint can show);
 * - `missing`: a gap in seq, or in the numbering of checkpoints;
 * - `reordered`: a record sits at a seq other than the one it was hashed at;
 * - `truncated`: a checkpoint covers records beyond the end of the database;
 * - `rollback`: the database is older than the checkpoint log, was replaced, or forked from it;
 * - `bad_signature`: a checkpoint's signature or its link to the previous one does not verify;
 * - `unknown_key`: a checkpoint or seal is signed by a key the verifier does not trust;
 * - `unsealed`: records at the end that neither a checkpoint nor a batch seal signs (appended by
 *   someone without the key: every commit of a current writer is sealed);
 * - `forged_purge`: a retention purge that no signature made when it happened covers, that does
 *   not end at a checkpoint of the external log, or that removed records younger than the
 *   signed retention;
 *   An `audit.archived` record is held to the same signature rules and reported the same way;
 * - `archive_missing`: `verify --archive DIR` found no file where a signed `audit.archived`
 *   record says its records went (and the range is not past the signed retention);
 * - `archive_modified`: the archive file does not hash to the signed SHA-256, its header
 *   disagrees with the record, its rows do not re-hash to the signed checkpoint, or it does not
 *   link to the range before it;
 * - `discontinuity`: a `ledger.discontinuity` record: the service was started over damage it
 *   found (`serve --accept-discontinuity`); what it states is the damage.
 */
export type DamageClass =
  | 'modified'
  | 'missing'
  | 'reordered'
  | 'truncated'
  | 'rollback'
  | 'bad_signature'
  | 'unknown_key'
  | 'unsealed'
  | 'forged_purge'
  | 'archive_missing'
  | 'archive_modified'
  | 'discontinuity';

/** One finding of verification. */
export interface Damage {
  class: DamageClass;
  /** First affected record seq (for checkpoint findings: the seq the checkpoint covers). */
  seq: number;
  /** Last affected seq when the damage spans a range. */
  toSeq?: number;
  /** Checkpoint number, for checkpoint findings. */
  checkpoint?: number;
  detail: string;
}

/** Orders findings by seq, merges adjacent `missing` ranges split across verification chunks. */
export function sortDamage(list: readonly Damage[]): Damage[] {
  const sorted = [...list].sort(
    (a, b) => a.seq - b.seq || (a.checkpoint ?? 0) - (b.checkpoint ?? 0),
  );
  const out: Damage[] = [];
  for (const d of sorted) {
    const prev = out.at(-1);
    if (
      prev &&
      prev.class === 'missing' &&
      d.class === 'missing' &&
      prev.checkpoint === undefined &&
      d.checkpoint === undefined &&
      (prev.toSeq ?? prev.seq) + 1 === d.seq
    ) {
      const toSeq = d.toSeq ?? d.seq;
      out[out.length - 1] = { ...prev, toSeq, detail: missingDetail(prev.seq, toSeq) };
    } else {
      out.push(d);
    }
  }
  return out;
}

/** Detail text of a seq gap. */
export function missingDetail(from: number, to: number): string {
  return from === to
    ? `record ${from} is missing (seq gap)`
    : `records ${from}..${to} are missing (seq gap)`;
}
