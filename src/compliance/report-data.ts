import type Database from 'better-sqlite3';
import type { TrustedKey } from '../audit/signing-keys.js';
import { TokenwatchError } from '../errors.js';
import { VERSION } from '../version.js';
import { ledgerIdOf, recordPages, seqRangeForWindow, yieldToLoop } from './ledger-range.js';
import { nearestRank } from './percentiles.js';
import {
  findingsActive,
  observation,
  revocationSection,
  type PropagationObservation,
} from './report-findings.js';
import { checkRange } from './report-integrity.js';
import {
  ChurnSeries,
  InventoryReplay,
  emptyLifecycle,
  type ReplayRecord,
} from './report-inventory.js';
import type {
  BlindSpot,
  BlindSpotSection,
  FindingRow,
  LifecycleCounts,
  Soc2Report,
  TtlSection,
} from './report-types.js';

export interface ReportOptions {
  /** A connection to the ledger (read-only is enough). */
  db: Database.Database;
  /** Observed-time period [from, to), unix ms. */
  from: number;
  to: number;
  /** Public keys trusted for checkpoint signatures. */
  trusted: readonly TrustedKey[];
  /** Integrity anchors: the external checkpoint log and the database path (report-integrity.ts). */
  anchors?: { dbPath?: string; checkpointLog?: string };
  now?: () => number;
  /** Kind → maximum TTL (seconds) of the token rules, for TTL conformance; optional. */
  ttlPolicy?: Readonly<Record<string, number | undefined>>;
  /** SLA to state when no revocation was measured in the period (config). */
  slaSeconds?: number;
  /** Most churn chart buckets (default 72). */
  maxBuckets?: number;
}

const REPLAY_SQL = `SELECT seq, time, type, kind, fingerprint, attrs FROM records
  WHERE seq >= ? AND seq < ? AND ((type >= 'token.' AND type < 'token.\uffff') OR type = 'keyspace.baseline')
  ORDER BY seq LIMIT 5000`;

type Parsed = ReplayRecord;

/**
 * Computes the SOC 2 report of [from, to) from the ledger (docs/compliance.md#soc-2-report).
 * The report covers every record whose seq lies between the first and the last one observed in
 * the period, exactly the records an evidence bundle of the same period holds.
 */
export async function buildReport(o: ReportOptions): Promise<Soc2Report> {
  if (!(o.from < o.to))
    throw new TokenwatchError('ERR_BAD_REQUEST', 'from must be before to', { status: 400 });
  const now = o.now ?? Date.now;
  const ledgerId = ledgerIdOf(o.db);
  const range = seqRangeForWindow(o.db, o.from, o.to);
  const integrity = await checkRange(o.db, range, ledgerId, o.trusted, o.anchors, o.from);

  const replay = new InventoryReplay();
  const replayFrom = range ? await replayBefore(o.db, range.firstSeq, replay) : 0;
  const start = replay.sizes();
  const startTotal = replay.total();
  const churn = new ChurnSeries(o.from, o.to, o.maxBuckets);
  const lifecycle: Record<string, LifecycleCounts> = {};
  const totals = emptyLifecycle();
  const ttls = new Map<string, number[]>();
  const ttl: TtlSection['perKind'] = {};
  const recordsByType: Record<string, number> = {};
  const providerEvents: Record<string, number> = {};
  const observations: PropagationObservation[] = [];
  const clockSkews: BlindSpotSection['clockSkews'] = [];
  const flushes: Soc2Report['response']['flushes'] = [];
  const adminAccess: Soc2Report['adminAccess'] = { allowed: 0, denied: 0, principals: {} };
  let timeOutliers = 0;

  const ttlOf = (kind: string): TtlSection['perKind'][string] =>
    (ttl[kind] ??= {
      written: 0,
      withTtl: 0,
      noExpiry: 0,
      unknownTtl: 0,
      persisted: 0,
      maxTtlSeconds: null,
      p95TtlSeconds: null,
      policyMaxTtlSeconds: o.ttlPolicy?.[kind] ?? null,
      overPolicy: null,
    });

  if (range) {
    for (const page of recordPages(o.db, range.firstSeq, range.lastSeq)) {
      for (const raw of page) {
        recordsByType[raw.type] = (recordsByType[raw.type] ?? 0) + 1;
        if (raw.time < o.from || raw.time >= o.to) timeOutliers += 1;
        const r: Parsed = { ...raw, attrs: JSON.parse(raw.attrs) as Record<string, unknown> };
        const a = r.attrs;
        const counter = replay.apply(r);
        if (counter && r.kind !== null) {
          (lifecycle[r.kind] ??= emptyLifecycle())[counter] += 1;
          totals[counter] += 1;
          churn.add(r.time, counter);
          churn.live(r.time, replay.total());
        }
        if (r.type === 'token.written' && r.kind !== null) {
          const t = ttlOf(r.kind);
          t.written += 1;
          if (typeof a.ttlMs === 'number') {
            t.withTtl += 1;
            let list = ttls.get(r.kind);
            if (!list) ttls.set(r.kind, (list = []));
            list.push(a.ttlMs);
          } else if (a.ttlMs === null && a.ttlUnknown !== true) t.noExpiry += 1;
          else t.unknownTtl += 1;
        } else if (r.type === 'token.persisted' && r.kind !== null) {
          ttlOf(r.kind).persisted += 1;
        } else if (r.type.startsWith('provider.')) {
          const t = r.type.slice('provider.'.length);
          providerEvents[t] = (providerEvents[t] ?? 0) + 1;
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
  for (const [kind, t] of Object.entries(ttl)) {
    const list = (ttls.get(kind) ?? []).sort((x, y) => x - y);
    t.maxTtlSeconds = list.length > 0 ? (list[list.length - 1] ?? 0) / 1000 : null;
    const p95 = nearestRank(list, 95);
    t.p95TtlSeconds = p95 === null ? null : p95 / 1000;
    const policy = t.policyMaxTtlSeconds;
    t.overPolicy = policy === null ? null : list.filter((ms) => ms > policy * 1000).length;
  }

  const findings = range ? findingsActive(o.db, range.firstSeq, range.lastSeq) : [];
  const byRule = (rule: string): FindingRow[] => findings.filter((f) => f.rule === rule);
  const summary: Soc2Report['findings'] = {};
  for (const f of findings) {
    const s = (summary[f.rule] ??= { opened: 0, resolved: 0, openAtEnd: 0 });
    if (range && f.openedSeq >= range.firstSeq) s.opened += 1;
    if (f.resolvedSeq !== null) s.resolved += 1;
    else s.openAtEnd += 1;
  }

  const kinds = [...replay.kinds].sort();
  const end = replay.sizes();
  const evicted: Record<string, number> = {};
  const adjustments: Record<string, number> = {};
  for (const k of kinds) {
    const l = (lifecycle[k] ??= emptyLifecycle());
    evicted[k] = l.evicted;
    start[k] ??= 0;
    adjustments[k] =
      (end[k] ?? 0) - (start[k] ?? 0) - l.issued + l.revoked + l.expired + l.evicted + l.vanished;
  }
  return {
    format: 'tokenwatch-soc2-report',
    version: 1,
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
    inventory: {
      kinds,
      start,
      end,
      lifecycle,
      totals,
      adjustments,
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
    revocations: revocationSection(observations, findings, o.slaSeconds),
    ttl: {
      perKind: ttl,
      withoutExpiry: byRule('token_without_expiry'),
      overPolicy: byRule('ttl_exceeds_policy'),
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
    blindSpots: blindSpots(o.db, o.from, o.to, clockSkews),
    findings: summary,
    adminAccess,
  };
}

/**
 * Replays token records from the last keyspace.baseline of every node before `firstSeq` (or
 * from the start of the ledger) up to firstSeq - 1. Returns the seq it started at.
 */
async function replayBefore(
  db: Database.Database,
  firstSeq: number,
  replay: InventoryReplay,
): Promise<number> {
  const baselines = db
    .prepare(
      "SELECT seq, attrs FROM records WHERE type = 'keyspace.baseline' AND seq < ? ORDER BY seq",
    )
    .all(firstSeq) as { seq: number; attrs: string }[];
  const lastPerNode = new Map<string, number>();
  for (const b of baselines) {
    const node = (JSON.parse(b.attrs) as { node?: unknown }).node;
    lastPerNode.set(typeof node === 'string' ? node : '', b.seq);
  }
  const first =
    (db.prepare('SELECT MIN(seq) AS seq FROM records').get() as { seq: number | null }).seq ?? 1;
  const from = lastPerNode.size > 0 ? Math.min(...lastPerNode.values()) : first;
  const stmt = db.prepare(REPLAY_SQL);
  let next = from;
  while (next < firstSeq) {
    const rows = stmt.all(next, firstSeq) as (Omit<Parsed, 'attrs'> & { attrs: string })[];
    if (rows.length === 0) break;
    for (const r of rows)
      replay.apply({ ...r, attrs: JSON.parse(r.attrs) as Record<string, unknown> });
    next = (rows[rows.length - 1]?.seq ?? firstSeq) + 1;
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
  db: Database.Database,
  from: number,
  to: number,
  clockSkews: BlindSpotSection['clockSkews'],
): BlindSpotSection {
  const rows = db
    .prepare(
      "SELECT seq, type, attrs FROM records WHERE type IN ('keyspace.gap', 'audit.degraded') AND time >= ? ORDER BY seq",
    )
    .all(from) as { seq: number; type: BlindSpot['type']; attrs: string }[];
  const windows: BlindSpot[] = [];
  for (const r of rows) {
    const a = JSON.parse(r.attrs) as Record<string, unknown>;
    const start = typeof a.start === 'number' ? a.start : NaN;
    const end = typeof a.end === 'number' ? a.end : NaN;
    if (!(start < to && end >= from)) continue;
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
