import { checkCoverage, type CoverageReport } from '../audit/coverage.js';
import { chooseCopies } from '../audit/ledger-copies.js';
import { readOwnership, type LedgerOwnership } from '../audit/ownership-records.js';
import type { TrustedKey } from '../audit/signing-keys.js';
import type { LedgerStore } from '../audit/store/ledger-store.js';
import { TokenwatchError } from '../errors.js';
import { VERSION } from '../version.js';
import type { Policy } from './policy-record.js';
import { buildReport } from './report-data.js';
import type { Soc2Report } from './report-types.js';
import { countTokens, type MergedTokenCounts } from './token-dedup.js';

/** One instance's ledger given to a merged report. */
export interface MergedReportLedger {
  /** How the user named it (the file path). */
  path: string;
  store: LedgerStore;
  trusted: readonly TrustedKey[];
  checkpointLog?: string | undefined;
  /** What the whole-ledger check found (src/audit/ledger-check.ts), described. */
  damage: readonly string[];
}

export interface MergedReportOptions {
  ledgers: readonly MergedReportLedger[];
  /** Observed-time period [from, to), unix ms. */
  from: number;
  to: number;
  /** Nodes coverage must prove even when no ledger names them (`report --node`). */
  nodes?: readonly string[];
  /** Overrides the ledgers' `config.policy` records (`report --config`), as in buildReport. */
  policy?: Policy;
  now?: () => number;
}

/** One change of a node's owner, as the ledgers record it. */
export interface OwnershipEvent {
  time: number;
  node: string;
  event: 'acquired' | 'released' | 'fenced';
  epoch: number;
  instance: string | null;
  ledger: string;
  path: string;
  /** Acquired only: `first` (no previous owner), `handover` (the previous one released), `takeover`. */
  change?: 'first' | 'handover' | 'takeover';
  previous?: { epoch: number; instance: string | null } | null;
  from?: string | null;
  replayed?: number | null;
  through?: string | null;
  reason?: string | null;
}

/**
 * The SOC 2 report of several instances' ledgers: what is merged (ownership, coverage, token
 * event counts) and, per ledger, its own report. Version 1.
 */
export interface MergedSoc2Report {
  format: 'tokenwatch-soc2-merged-report';
  version: 1;
  generator: { name: 'tokenwatch'; version: string };
  generatedAt: number;
  period: { from: number; to: number };
  ledgers: { path: string; id: string; report: Soc2Report }[];
  coverage: CoverageReport;
  ownership: OwnershipEvent[];
  tokens: Omit<MergedTokenCounts, 'notCounted'>;
  /** What this report does not merge across ledgers (each ledger's own report has it). */
  notMerged: string[];
}

export const NOT_MERGED = [
  'inventory (start, end, lifecycle, churn, adjustments): each ledger replays its own baselines',
  'TTL conformance, findings, revocation latency, anomalies, response, blind spots, admin access, cache health',
];

/**
 * Builds the merged report: each ledger's own report (buildReport, unchanged), then one pass
 * over the token records of each ledger's period range for the deduplicated counts. Coverage
 * reads only ledgers without damage: a damaged ledger's records are not evidence.
 */
export async function buildMergedReport(o: MergedReportOptions): Promise<MergedSoc2Report> {
  if (!(o.from < o.to)) throw new TokenwatchError('ERR_BAD_REQUEST', 'from must be before to');
  const now = o.now ?? Date.now;
  const ledgers: MergedSoc2Report['ledgers'] = [];
  const given: { l: MergedReportLedger; id: string; intact: boolean; size: number }[] = [];
  for (const l of o.ledgers) {
    const report = await buildReport({
      store: l.store,
      from: o.from,
      to: o.to,
      trusted: l.trusted,
      ledgerDamage: l.damage,
      ...(o.policy ? { policy: o.policy } : {}),
      anchors: { dbPath: l.path, ...(l.checkpointLog ? { checkpointLog: l.checkpointLog } : {}) },
      now,
    });
    ledgers.push({ path: l.path, id: report.ledger.id, report });
    given.push({
      l,
      id: report.ledger.id,
      intact: report.integrity.status !== 'failed',
      size: l.store.maxSeq() ?? 0,
    });
  }
  // One ledger id given more than once (a copy, an older snapshot): one copy is read, an intact
  // one before a damaged one, then the one with the most records (src/audit/ledger-copies.ts).
  const { read, copies } = chooseCopies(
    given,
    (g) => g.id,
    (a, b) => (a.intact !== b.intact ? a.intact : a.size > b.size),
  );
  // The records of a damaged ledger are not evidence: coverage does not read them, and neither
  // do the cuts of fenced epochs (a forged `from` would drop another ledger's real events).
  const owners = read.map((g) => readOwnership(g.l.store, g.l.path));
  const intact = owners.filter((_, i) => read[i]?.intact === true);
  const coverage = checkCoverage({
    ledgers: intact,
    from: o.from,
    to: o.to,
    ...(o.nodes ? { nodes: o.nodes } : {}),
  });
  coverage.warnings.unshift(
    ...copies.map(
      ({ copy, of }) =>
        `${copy.l.path} is the same ledger (${copy.id}) as ${of.l.path}: read once, from ${of.l.path}`,
    ),
  );
  const tokens = await countTokens(
    read.map((g) => ({ ledger: g.id, store: g.l.store })),
    intact,
    o.from,
    o.to,
  );
  return {
    format: 'tokenwatch-soc2-merged-report',
    version: 1,
    generator: { name: 'tokenwatch', version: VERSION },
    generatedAt: now(),
    period: { from: o.from, to: o.to },
    ledgers,
    coverage,
    ownership: timeline(owners, o.from, o.to),
    tokens: {
      byType: tokens.byType,
      counted: tokens.counted,
      duplicates: tokens.duplicates,
      fencedExcluded: tokens.fencedExcluded,
      withoutPosition: tokens.withoutPosition,
    },
    notMerged: NOT_MERGED,
  };
}

/** Acquisitions, releases and fencings in the period, in time order. */
export function timeline(
  owners: readonly LedgerOwnership[],
  from: number,
  to: number,
): OwnershipEvent[] {
  const released = new Set<string>();
  for (const l of owners)
    for (const r of l.records) if (r.type === 'released') released.add(`${r.node}\u0000${r.epoch}`);
  const out: OwnershipEvent[] = [];
  for (const l of owners) {
    for (const r of l.records) {
      if (r.type === 'gap' || r.time < from || r.time >= to) continue;
      const base = {
        time: r.time,
        node: r.node,
        epoch: r.epoch,
        instance: r.instance,
        ledger: l.ledger,
        path: l.label,
      };
      if (r.type === 'acquired') {
        out.push({
          ...base,
          event: 'acquired',
          change:
            r.previous === null
              ? 'first'
              : released.has(`${r.node}\u0000${r.previous.epoch}`)
                ? 'handover'
                : 'takeover',
          previous: r.previous,
          from: r.from,
          replayed: r.replayed,
        });
      } else {
        out.push({ ...base, event: r.type, through: r.through, reason: r.reason });
      }
    }
  }
  return out.sort((a, b) => a.time - b.time || a.node.localeCompare(b.node) || a.epoch - b.epoch);
}
