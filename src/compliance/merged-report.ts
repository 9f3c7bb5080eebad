import { checkCoverage, type CoverageReport } from '../audit/coverage.js';
import {
  afterCut,
  parsePosition,
  readOwnership,
  type Acquired,
  type Ended,
  type LedgerOwnership,
  type Position,
} from '../audit/ownership-records.js';
import type { TrustedKey } from '../audit/signing-keys.js';
import type { LedgerStore } from '../audit/store/ledger-store.js';
import { TokenwatchError } from '../errors.js';
import { VERSION } from '../version.js';
import type { Policy } from './policy-record.js';
import { buildReport } from './report-data.js';
import type { Soc2Report } from './report-types.js';
import { yieldToLoop } from './yield-to-loop.js';

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

/** Token events of every ledger, each counted once (docs/ha-evidence.md#merged-report). */
export interface MergedTokenCounts {
  /** `token.<event>` → kind → records counted. */
  byType: Record<string, Record<string, number>>;
  counted: number;
  /** Records whose `node/pos` another ledger (or this one) already gave: not counted again. */
  duplicates: number;
  /** Records of a fenced epoch after the next epoch's `from`: the next owner's copies count. */
  fencedExcluded: number;
  /** Counted records without `pos` (an uncoordinated instance, a reconcile, a baseline SCAN). */
  withoutPosition: number;
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
  tokens: MergedTokenCounts;
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
  const owners: LedgerOwnership[] = [];
  const intact: LedgerOwnership[] = [];
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
    const own = readOwnership(l.store, l.path);
    owners.push(own);
    if (report.integrity.status !== 'failed') intact.push(own);
  }
  const coverage = checkCoverage({
    ledgers: intact,
    from: o.from,
    to: o.to,
    ...(o.nodes ? { nodes: o.nodes } : {}),
  });
  const tokens = await countTokens(o, owners);
  return {
    format: 'tokenwatch-soc2-merged-report',
    version: 1,
    generator: { name: 'tokenwatch', version: VERSION },
    generatedAt: now(),
    period: { from: o.from, to: o.to },
    ledgers,
    coverage,
    ownership: timeline(owners, o.from, o.to),
    tokens,
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

/**
 * Where each fenced epoch's records stop counting: the `from` of the next epoch's acquisition
 * (the position after which the next owner replayed from its own buffer).
 */
function fencedCuts(owners: readonly LedgerOwnership[]): Map<string, Position> {
  const fenced: Ended[] = [];
  const acquired = new Map<string, Acquired>();
  for (const l of owners)
    for (const r of l.records) {
      if (r.type === 'fenced') fenced.push(r);
      else if (r.type === 'acquired') acquired.set(`${r.node}/${r.epoch}`, r);
    }
  const cuts = new Map<string, Position>();
  for (const f of fenced) {
    const next = acquired.get(`${f.node}/${f.epoch + 1}`);
    const p = next?.from ? parsePosition(next.from) : undefined;
    if (p) cuts.set(`${f.node}/${f.epoch}`, p);
  }
  return cuts;
}

async function countTokens(
  o: MergedReportOptions,
  owners: readonly LedgerOwnership[],
): Promise<MergedTokenCounts> {
  const cuts = fencedCuts(owners);
  const seen = new Set<string>();
  const t: MergedTokenCounts = {
    byType: {},
    counted: 0,
    duplicates: 0,
    fencedExcluded: 0,
    withoutPosition: 0,
  };
  for (const l of o.ledgers) {
    const range = l.store.seqRangeForWindow(o.from, o.to);
    if (!range) continue;
    for (const page of l.store.replayPages(range.firstSeq, range.lastSeq + 1)) {
      for (const r of page) {
        if (!r.type.startsWith('token.')) continue;
        const node = r.attrs.node;
        const pos = r.attrs.pos;
        const place = typeof pos === 'string' ? parsePosition(pos) : undefined;
        if (typeof node === 'string' && place) {
          const key = `${node}/${pos as string}`;
          if (seen.has(key)) {
            t.duplicates += 1;
            continue;
          }
          // The epoch of the owner that wrote the record (attrs.epoch), not the marker's in pos.
          const epoch = r.attrs.epoch;
          const cut = typeof epoch === 'number' ? cuts.get(`${node}/${epoch}`) : undefined;
          if (cut && afterCut(place, cut)) {
            // Not marked seen: the next owner's copy of the same event is the one counted.
            t.fencedExcluded += 1;
            continue;
          }
          seen.add(key);
        } else {
          t.withoutPosition += 1;
        }
        const kinds = (t.byType[r.type] ??= {});
        const kind = r.kind ?? '(none)';
        kinds[kind] = (kinds[kind] ?? 0) + 1;
        t.counted += 1;
      }
      await yieldToLoop();
    }
  }
  return t;
}
