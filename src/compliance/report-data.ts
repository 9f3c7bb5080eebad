import type { TrustedKey } from '../audit/signing-keys.js';
import type { LedgerStore } from '../audit/store/ledger-store.js';
import { TokenwatchError } from '../errors.js';
import { VERSION } from '../version.js';
import {
  POLICY_RECORD_TYPE,
  policyBefore,
  policyFromRecord,
  type Policy,
} from './policy-record.js';
import {
  findingsActive,
  observation,
  measureRevocations,
  type PropagationObservation,
} from './report-findings.js';
import { CacheHealthTally } from './report-cache-health.js';
import { checkRange } from './report-integrity.js';
import {
  ChurnSeries,
  InventoryReplay,
  emptyLifecycle,
  type ReplayRecord,
} from './report-inventory.js';
import { TtlTally } from './report-ttl.js';
import { yieldToLoop } from './yield-to-loop.js';
import type {
  BlindSpot,
  BlindSpotSection,
  FindingRow,
  LifecycleCounts,
  PolicySection,
  Soc2Report,
} from './report-types.js';

export interface ReportOptions {
  /** The ledger's reads (a read-only connection is enough). */
  store: LedgerStore;
  /** Observed-time period [from, to), unix ms. */
  from: number;
  to: number;
  /** Public keys trusted for checkpoint signatures. */
  trusted: readonly TrustedKey[];
  /**
   * Damage the whole-ledger check (src/audit/ledger-check.ts) found, described: any makes the
   * integrity section `failed`, since the report also reads records outside its period.
   */
  ledgerDamage?: readonly string[];
  /** Integrity anchors: the external checkpoint log and the database path (report-integrity.ts). */
  anchors?: { dbPath?: string; checkpointLog?: string };
  now?: () => number;
  /**
   * Overrides the `config.policy` records of the ledger for the whole period (`report
   * --config`). Without it the report judges each record by the policy recorded before it.
   */
  policy?: Policy;
  /** Most churn chart buckets (default 72). */
  maxBuckets?: number;
}

type Parsed = ReplayRecord;

/**
 * Computes the SOC 2 report of [from, to) from the ledger (docs/compliance.md#soc-2-report).
 * The report covers every record whose seq lies between the first and the last one observed in
 * the period, exactly the records an evidence bundle of the same period holds.
 */
export async function buildReport(o: ReportOptions): Promise<Soc2Report> {
  if (!(o.from < o.to)) throw new TokenwatchError('ERR_BAD_REQUEST', 'from must be before to');
  const now = o.now ?? Date.now;
  const ledgerId = o.store.ledgerId();
  const range = o.store.seqRangeForWindow(o.from, o.to);
  const integrity = await checkRange(o.store, range, ledgerId, o.trusted, o.anchors, o.from, o.to);
  if (o.ledgerDamage && o.ledgerDamage.length > 0) {
    const whole = o.ledgerDamage.map((d) => `ledger: ${d}`);
    integrity.problems.push(...whole);
    integrity.status = 'failed';
    integrity.verdict = 'not verified';
    integrity.reason = integrity.reason ?? whole[0] ?? null;
  }

  const replay = new InventoryReplay();
  const replayFrom = range ? await replayBefore(o.store, range.firstSeq, replay) : 0;
  const startKnown = replay.known();
  const start = replay.sizesOrUnknown();
  const startTotal = startKnown ? replay.total() : null;
  // The policy in force: an override for the whole period, else the ledger's own records.
  let policy: Policy | null = o.policy ?? (range ? policyBefore(o.store, range.firstSeq) : null);
  const inForce: Policy[] = policy ? [policy] : [];
  const ttl = new TtlTally();
  const baselines: Soc2Report['inventory']['baselines'] = [];
  const churn = new ChurnSeries(o.from, o.to, o.maxBuckets);
  const lifecycle: Record<string, LifecycleCounts> = {};
  const totals = emptyLifecycle();
  const recordsByType: Record<string, number> = {};
  const providerEvents: Record<string, number> = {};
  let received: number | null = null;
  const observations: PropagationObservation[] = [];
  const clockSkews: BlindSpotSection['clockSkews'] = [];
  const flushes: Soc2Report['response']['flushes'] = [];
  const adminAccess: Soc2Report['adminAccess'] = { allowed: 0, denied: 0, principals: {} };
  let timeOutliers = 0;
  const cacheHealth = new CacheHealthTally();

  if (range) {
    for (const page of o.store.recordPages(range.firstSeq, range.lastSeq)) {
      for (const raw of page) {
        recordsByType[raw.type] = (recordsByType[raw.type] ?? 0) + 1;
        if (raw.time < o.from || raw.time >= o.to) timeOutliers += 1;
        const r: Parsed = { ...raw, attrs: JSON.parse(raw.attrs) as Record<string, unknown> };
        const a = r.attrs;
        if (cacheHealth.add(r.type, a)) continue;
        const counter = replay.apply(r);
        if (counter && r.kind !== null) {
          (lifecycle[r.kind] ??= emptyLifecycle())[counter] += 1;
          totals[counter] += 1;
          churn.add(r.time, counter);
        }
        if (counter || r.type === 'keyspace.baseline')
          churn.live(r.time, replay.known() ? replay.total() : null);
        if (r.type.startsWith('token.')) {
          ttl.add(r, policy);
        } else if (r.type === 'keyspace.baseline') {
          baselines.push({
            seq: r.seq,
            time: r.time,
            node: typeof a.node === 'string' ? a.node : null,
            counts: numbers(a.counts),
          });
        } else if (r.type === POLICY_RECORD_TYPE) {
          if (!o.policy) inForce.push((policy = policyFromRecord(r.seq, r.time, a)));
        } else if (r.type.startsWith('provider.')) {
          const t = r.type.slice('provider.'.length);
          providerEvents[t] = (providerEvents[t] ?? 0) + 1;
          const types = policy?.revocationEventTypes;
          if (types) received = (received ?? 0) + (types.includes(t) ? 1 : 0);
        } else if (r.type === 'revocation.propagation') {
          observations.push(observation(r.seq, a));
        } else if (r.type === 'audit.clock_skew') {
          clockSkews.push({
            seq: r.seq,
            time: r.time,
            backwardsMs: typeof a.backwardsMs === 'number' ? a.backwardsMs : 0,
          });
        } else if (r.type === 'keyspace.flush') {
          flushes.push({
            seq: r.seq,
            time: r.time,
            node: typeof a.node === 'string' ? a.node : null,
          });
        } else if (r.type === 'admin.access') {
          if (a.outcome === 'allowed') adminAccess.allowed += 1;
          else adminAccess.denied += 1;
          const who = typeof a.principal === 'string' ? a.principal : 'anonymous';
          adminAccess.principals[who] = (adminAccess.principals[who] ?? 0) + 1;
        } else if (r.type === 'admin.access_suppressed') {
          // Refusals beyond the per-source bound, counted in one record (never allowed ones).
          const n = typeof a.suppressed === 'number' ? a.suppressed : 0;
          adminAccess.denied += n;
          adminAccess.principals.anonymous = (adminAccess.principals.anonymous ?? 0) + n;
        }
      }
      await yieldToLoop();
    }
  }
  churn.finish(startTotal);
  const policySection: PolicySection = {
    source: o.policy ? 'config' : inForce.length > 0 ? 'ledger' : 'none',
    inForce,
    recordsWithoutPolicy: ttl.withoutPolicy,
  };

  const findings = range ? findingsActive(o.store, range.firstSeq, range.lastSeq) : [];
  if (range) ttl.carriedIn(findings, range.firstSeq);
  const byRule = (rule: string): FindingRow[] => findings.filter((f) => f.rule === rule);
  const summary: Soc2Report['findings'] = {};
  for (const f of findings) {
    const s = (summary[f.rule] ??= { opened: 0, resolved: 0, openAtEnd: 0 });
    if (range && f.openedSeq >= range.firstSeq) s.opened += 1;
    if (f.resolvedSeq !== null) s.resolved += 1;
    else s.openAtEnd += 1;
  }

  const kinds = [...replay.kinds].sort();
  const endKnown = replay.known();
  const end = replay.sizesOrUnknown();
  const evicted: Record<string, number> = {};
  const adjustments: Record<string, number | null> = {};
  for (const k of kinds) {
    const l = (lifecycle[k] ??= emptyLifecycle());
    evicted[k] = l.evicted;
    if (!(k in start)) start[k] = startKnown ? 0 : null;
    const s = start[k] ?? null;
    const e = end[k] ?? null;
    adjustments[k] =
      s === null || e === null
        ? null
        : e - s - l.issued + l.deleted + l.expired + l.evicted + l.vanished;
  }
  return {
    format: 'tokenwatch-soc2-report',
    version: 2,
    generator: { name: 'tokenwatch', version: VERSION },
    generatedAt: now(),
    period: { from: o.from, to: o.to },
    ledger: {
      id: ledgerId,
      range: range && {
        firstSeq: range.firstSeq,
        lastSeq: range.lastSeq,
        records: range.lastSeq - range.firstSeq + 1,
        timeOutliers,
      },
      recordsByType,
    },
    integrity,
    policy: policySection,
    inventory: {
      kinds,
      start,
      startKnown,
      end,
      endKnown,
      lifecycle,
      totals,
      adjustments,
      baselines,
      churn: {
        bucketMs: churn.bucketMs,
        buckets: churn.buckets,
        maxPerBucket: Math.max(
          0,
          ...churn.buckets.map((b) => Math.max(b.issued + b.refreshed, b.ended)),
        ),
      },
      replayFromSeq: replayFrom,
    },
    providerEvents,
    revocations: {
      ...measureRevocations(
        observations,
        findings,
        (o.policy ?? policy)?.revocationSlaSeconds ?? undefined,
      ),
      received: received ?? (policy?.revocationEventTypes ? 0 : null),
    },
    ttl: {
      perKind: ttl.result(policy),
      withoutExpiry: byRule('token_without_expiry'),
      overPolicy: byRule('ttl_exceeds_policy'),
      agreement: ttl.agreement(findings),
    },
    anomalies: {
      unattributed: byRule('unattributed_token'),
      writeAfterRevocation: byRule('write_after_revocation'),
      refreshReuse: byRule('refresh_reuse_detected'),
    },
    response: {
      churnSpikes: byRule('churn_spike'),
      evictionFindings: byRule('tokens_evicted'),
      evicted,
      flushes,
    },
    blindSpots: blindSpots(o.store, o.from, o.to, clockSkews),
    findings: summary,
    findingList: findings,
    adminAccess,
    cacheHealth: cacheHealth.result(byRule('orphaned_index_entries')),
  };
}

/**
 * Replays token records from the run of the last keyspace.baseline of every node before
 * `firstSeq` (its `system.started`: the baseline's `token.present` records precede it), or from
 * the start of the ledger, up to firstSeq - 1. Returns the seq it started at.
 */
async function replayBefore(
  store: LedgerStore,
  firstSeq: number,
  replay: InventoryReplay,
): Promise<number> {
  const baselines = store.recordsOfTypeBefore('keyspace.baseline', firstSeq);
  const lastPerNode = new Map<string, number>();
  for (const b of baselines) {
    const node = (JSON.parse(b.attrs) as { node?: unknown }).node;
    lastPerNode.set(typeof node === 'string' ? node : '', b.seq);
  }
  const first = store.minSeq() ?? 1;
  const from =
    lastPerNode.size > 0
      ? Math.min(
          ...[...lastPerNode.values()].map(
            (b) => store.lastSeqOfTypeBefore('system.started', b) ?? first,
          ),
        )
      : first;
  for (const rows of store.replayPages(from, firstSeq)) {
    for (const r of rows) replay.apply(r);
    await yieldToLoop();
  }
  return from;
}

/**
 * Every window in which tokenwatch saw nothing (keyspace.gap) or could not write
 * (audit.degraded) that overlaps the period, wherever in the ledger it was recorded (a window
 * still open at the end of the period is recorded after it).
 */
function blindSpots(
  store: LedgerStore,
  from: number,
  to: number,
  clockSkews: BlindSpotSection['clockSkews'],
): BlindSpotSection {
  const rows = store.blindWindowsSince(from);
  const windows: BlindSpot[] = [];
  for (const r of rows) {
    const a = JSON.parse(r.attrs) as Record<string, unknown>;
    const start = typeof a.start === 'number' ? a.start : NaN;
    const end = typeof a.end === 'number' ? a.end : NaN;
    if (!(start < to && end >= from)) continue;
    const restart = typeof a.reason === 'string' && a.reason.startsWith('tokenwatch_');
    const scanned = typeof a.scanned === 'number' ? a.scanned : null;
    // A restart's window is reconciled by the next start-up SCAN, not by its gap record.
    const byBaseline = r.type === 'keyspace.gap' && restart && !(scanned !== null && scanned > 0);
    const found =
      r.type === 'keyspace.gap' &&
      !byBaseline &&
      ('appeared' in a || 'vanished' in a || 'ttl_changed' in a)
        ? {
            appeared: numbers(a.appeared),
            vanished: numbers(a.vanished),
            ttlChanged: numbers(a.ttl_changed),
          }
        : null;
    windows.push({
      type: r.type,
      seq: r.seq,
      start,
      end,
      durationMs: Math.max(0, end - start),
      inPeriodMs: Math.max(0, Math.min(end, to) - Math.max(start, from)),
      reason: typeof a.reason === 'string' ? a.reason : null,
      node: typeof a.node === 'string' ? a.node : null,
      droppedRecords: typeof a.droppedRecords === 'number' ? a.droppedRecords : null,
      found,
      scanned,
      reconciledBySeq: byBaseline ? store.firstSeqOfTypeAfter('keyspace.baseline', r.seq) : null,
    });
  }
  // Union of the clipped windows: two nodes blind at once are one blind stretch of time.
  const spans = windows
    .map((w) => [Math.max(w.start, from), Math.min(w.end, to)] as const)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let curStart = -Infinity;
  let curEnd = -Infinity;
  for (const [s, e] of spans) {
    if (s > curEnd) {
      if (curEnd > curStart) total += curEnd - curStart;
      curStart = s;
      curEnd = e;
    } else curEnd = Math.max(curEnd, e);
  }
  if (curEnd > curStart) total += curEnd - curStart;
  return { windows, totalMs: total, coverage: 1 - total / (to - from), clockSkews };
}

/** A `{name: number}` map from attrs, dropping anything else. */
function numbers(v: unknown): Record<string, number> {
  const out: Record<string, number> = {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return out;
  for (const [k, n] of Object.entries(v as Record<string, unknown>))
    if (typeof n === 'number' && Number.isFinite(n)) out[k] = n;
  return out;
}
