import { checkCoverage, type CoverageReport } from './coverage.js';
import { chooseCopies } from './ledger-copies.js';
import { readOwnership, type LedgerOwnership } from './ownership-records.js';
import { openLedgerStore } from './store/ledger-store.js';
import { verifyLedger, type VerifyOptions, type VerifyReport } from './verify.js';

/** One ledger of a merged verify: where it is and what anchors it (verify.ts options). */
export type MergedLedger = Omit<VerifyOptions, 'clockToleranceMs'>;

/** A ledger's own verdict, with the path it was given as. */
export interface MergedLedgerReport extends VerifyReport {
  path: string;
}

/** What `tokenwatch verify` with several ledgers found (docs/ha-evidence.md). */
export interface MergedVerifyReport {
  /** Every ledger intact and coverage complete. */
  ok: boolean;
  ledgers: MergedLedgerReport[];
  /** Ledgers that did not verify: coverage did not read their records. */
  untrusted: string[];
  coverage: CoverageReport;
}

export interface MergedVerifyOptions {
  ledgers: readonly MergedLedger[];
  /** Default: the first record of any verified ledger .. the last one. */
  from?: number;
  to?: number;
  /** Coverage tolerance for unowned stretches (coverage.ts), default 1000 ms. */
  toleranceMs?: number;
  /** Nodes that must be covered even when no ledger names them (coverage.ts). */
  nodes?: readonly string[];
}

/**
 * Verifies each ledger on its own, exactly as a single `verify` does, then checks coverage over
 * the ownership records of the ledgers that verified. A ledger that does not verify contributes
 * nothing: a record in it (a forged `ownership.acquired` included) is not evidence, and the
 * merged verdict fails on that ledger first.
 */
export async function verifyMerged(o: MergedVerifyOptions): Promise<MergedVerifyReport> {
  const ledgers: MergedLedgerReport[] = [];
  for (const l of o.ledgers) {
    ledgers.push({ path: l.dbPath, ...(await verifyLedger(l)) });
  }
  const untrusted = ledgers.filter((r) => !r.ok).map((r) => r.path);
  // One ledger id given more than once (a copy, an older snapshot): the copy with the most
  // records is read, once.
  const { read, copies } = chooseCopies(
    ledgers.filter((r) => r.ok),
    (r) => r.ledgerId,
    (a, b) => a.records > b.records,
  );
  const owners: LedgerOwnership[] = [];
  for (const r of read) {
    const store = openLedgerStore(r.path);
    try {
      owners.push(readOwnership(store, r.path));
    } finally {
      store.close();
    }
  }
  const trusted = ledgers.filter((r) => r.ok && r.time !== null);
  const from = o.from ?? Math.min(...trusted.map((r) => r.time?.first ?? Infinity));
  const to = o.to ?? Math.max(...trusted.map((r) => r.time?.last ?? -Infinity));
  const coverage = checkCoverage({
    ledgers: owners,
    from: Number.isFinite(from) ? from : 0,
    to: Number.isFinite(to) ? to : 0,
    ...(o.toleranceMs === undefined ? {} : { toleranceMs: o.toleranceMs }),
    ...(o.nodes === undefined ? {} : { nodes: o.nodes }),
  });
  coverage.warnings.unshift(
    ...copies.map(
      ({ copy, of }) =>
        `${copy.path} is the same ledger (${copy.ledgerId}) as ${of.path}: read once, from ${of.path} (${of.records} records)`,
    ),
  );
  return {
    ok: untrusted.length === 0 && coverage.ok,
    ledgers,
    untrusted,
    coverage,
  };
}
