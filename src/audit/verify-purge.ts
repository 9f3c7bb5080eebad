import type { Checkpoint } from './checkpoint.js';
import type { Damage } from './damage.js';
import { DAY_MS } from './retention.js';
import type { Purge } from './verify-meta.js';

export interface PurgeCheckInput {
  /** The purge whose range ends right before the first record of the database. */
  purge: Purge;
  /**
   * `archive`: the record is an `audit.archived` one. Rules 1 and 2 below hold for it as they do
   * for a purge; rule 3 does not apply: archived records are not gone, their file re-hashes to
   * the signed checkpoint (verify-archive.ts), and how soon a ledger archives is not signed.
   */
  kind?: 'purge' | 'archive';
  /** Authentic checkpoints (signature verified under a trusted key), any order. */
  valid: readonly Checkpoint[];
  /** Numbers of the authentic checkpoints found in the external log; null: no log given. */
  logged: ReadonlySet<number> | null;
  /**
   * Highest seq whose chain a valid checkpoint or batch seal signs (the record scan compares
   * the stored chains with them): records up to it were written by the key holder.
   */
  signedUpTo: number;
}

export interface PurgeCheck {
  problems: Damage[];
  warnings: string[];
  /** Retention the purge was checked against (days), null when none is signed. */
  retentionDays: number | null;
}

/**
 * A retention purge is evidence only when signed data says it may happen (audit-integrity.md
 * threat model: nothing a DB writer inserts may widen what verification accepts):
 * 1. its record is covered by a signature made when it was written (a batch seal or a later
 *    checkpoint), so whoever can only write the file cannot append one;
 * 2. the pruned range ends exactly at a signed checkpoint with the same chain, and that
 *    checkpoint is in the external log (the log is what the DB writer cannot rewrite);
 * 3. the checkpoint that sealed the range was signed more than the retention before the purge,
 *    the retention read from the newest checkpoint signed before the purge record, never from
 *    the purge record.
 * Ledgers whose checkpoints never state a retention (written before schema v3) get (3) as a
 * warning. An `audit.archived` record (kind `archive`) is held to (1) and (2).
 */
export function checkPurge(i: PurgeCheckInput): PurgeCheck {
  const { purge } = i;
  const problems: Damage[] = [];
  const warnings: string[] = [];
  const archive = i.kind === 'archive';
  const what = archive ? 'audit.archived' : 'audit.retention_purge';
  const forged = (detail: string): void => {
    problems.push({
      class: 'forged_purge',
      seq: purge.fromSeq,
      toSeq: purge.toSeq,
      detail: `${what} record ${purge.seq} (seq ${purge.fromSeq}..${purge.toSeq}): ${detail}`,
    });
  };
  if (purge.seq > i.signedUpTo) {
    forged(
      `no checkpoint or batch seal signs it (signatures reach seq ${i.signedUpTo}): it was not written by the ledger`,
    );
  }
  const sealing = i.valid.filter((c) => c.seq === purge.toSeq);
  let retentionDays: number | null = null;
  if (sealing.length === 0) {
    forged(`no signed checkpoint at seq ${purge.toSeq}: the pruned range does not end at one`);
  } else if (sealing.some((c) => c.chain !== purge.chain)) {
    forged(`the chain it states for seq ${purge.toSeq} is not the one the checkpoint signs`);
  } else {
    if (i.logged === null) {
      warnings.push(
        `${archive ? 'archive' : 'retention purge'} record ${purge.seq}: no external checkpoint log given, so whether checkpoint #${sealing[0]?.n ?? '?'} was published cannot be checked`,
      );
    } else if (!sealing.some((c) => i.logged?.has(c.n))) {
      forged(
        `checkpoint #${sealing[0]?.n ?? '?'} at seq ${purge.toSeq} is not in the external checkpoint log`,
      );
    }
    if (archive) return { problems, warnings, retentionDays };
    const signedAt = Math.min(...sealing.map((c) => c.time));
    const before = i.valid
      .filter((c) => c.seq < purge.seq && c.retentionDays !== undefined)
      .sort((a, b) => a.n - b.n)
      .at(-1);
    const anyStated = i.valid.some((c) => c.retentionDays !== undefined);
    if (before?.retentionDays !== undefined) {
      retentionDays = before.retentionDays;
      const cutoff = purge.time - before.retentionDays * DAY_MS;
      if (!(signedAt < cutoff)) {
        forged(
          `the pruned records were sealed at ${new Date(signedAt).toISOString()}, less than the signed retention of ${before.retentionDays} days (checkpoint #${before.n}) before the purge at ${new Date(purge.time).toISOString()}`,
        );
      }
    } else if (anyStated) {
      forged('no checkpoint signed before it states the retention the ledger ran under');
    } else {
      warnings.push(
        `retention purge record ${purge.seq}: no checkpoint states a signed retention (ledger written before schema v3); the age of the pruned records is not checked`,
      );
    }
  }
  return { problems, warnings, retentionDays };
}
