import { TokenwatchError } from '../errors.js';
import type { Damage } from './damage.js';
import type { TrustedKey } from './signing-keys.js';
import { verifyLedger } from './verify.js';

/**
 * The whole-ledger verification a report or an export rests on. A report reads records before
 * its period (the policy in force, the inventory replay, findings still open) and after it (gaps
 * recorded late), and an export's range is linked through checkpoints the external log must
 * still hold: checking the period's own rows against the database's own checkpoints is not
 * enough (a rolled-back copy, a forged purge, an edited policy record or an unsealed row outside
 * the period would pass). So both run `tokenwatch verify`'s full check first, with the same
 * anchors. It reads the checkpoint log before the database, so a live ledger that commits
 * meanwhile never looks rolled back.
 *
 * What it trusts: the given public keys and checkpoint log; nothing inside the database.
 */
export async function ledgerDamage(o: {
  dbPath: string;
  checkpointLog?: string | undefined;
  trusted: readonly TrustedKey[];
  /** Start of the period the caller reads: a discontinuity recorded before it does not block. */
  from: number;
}): Promise<Damage[]> {
  const v = await verifyLedger({
    dbPath: o.dbPath,
    checkpointLog: o.checkpointLog,
    trusted: o.trusted,
    threads: 1,
  });
  // A `ledger.discontinuity` says the records before it could not be verified when the service
  // started over them; a period that begins after the record was written rests on sealed records
  // written after the break.
  const before = new Set(v.discontinuities.filter((d) => d.time < o.from).map((d) => d.seq));
  return v.problems.filter((d) => !(d.class === 'discontinuity' && before.has(d.seq)));
}

/** One line per damage, as reports and refusals show it. */
export function describeDamage(d: Damage): string {
  return `${d.class} at seq ${d.seq}${d.toSeq !== undefined && d.toSeq !== d.seq ? `..${d.toSeq}` : ''}: ${d.detail}`;
}

/**
 * "A damaged ledger is never exported as evidence" (docs/compliance.md): throws
 * ERR_LEDGER_INTEGRITY (HTTP 409, CLI exit 1) naming the first damage.
 */
export function refuseDamaged(damage: readonly Damage[]): void {
  const first = damage[0];
  if (!first) return;
  throw new TokenwatchError(
    'ERR_LEDGER_INTEGRITY',
    `the ledger does not verify (${describeDamage(first)}${damage.length > 1 ? `; ${damage.length - 1} more` : ''}): run tokenwatch verify; a damaged ledger is not exported as evidence`,
  );
}
