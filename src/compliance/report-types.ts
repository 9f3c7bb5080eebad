import type { PercentileSummary } from './percentiles.js';

/**
 * The SOC 2 report as data: what `GET /v1/reports/soc2?format=json` and `tokenwatch report
 * --format json` return, and what the HTML page renders. Every number is computed from ledger
 * records by the rules in docs/compliance.md#soc-2-report, so an auditor (and
 * test/compliance/report-reconcile.test.ts) can recompute it from a raw export.
 * Times are unix ms; durations ms unless named `Seconds`.
 */
export interface Soc2Report {
  format: 'tokenwatch-soc2-report';
  version: 1;
  generator: { name: 'tokenwatch'; version: string };
  generatedAt: number;
  period: { from: number; to: number };
  ledger: {
    id: string;
    /** The records the report covers: every seq between the first and last observed in the period. */
    range: { firstSeq: number; lastSeq: number; records: number; timeOutliers: number } | null;
    recordsByType: Record<string, number>;
  };
  integrity: IntegritySection;
  inventory: InventorySection;
  providerEvents: Record<string, number>;
  revocations: RevocationSection;
  ttl: TtlSection;
  anomalies: {
    unattributed: FindingRow[];
    writeAfterRevocation: FindingRow[];
    refreshReuse: FindingRow[];
  };
  response: {
    churnSpikes: FindingRow[];
    evictionFindings: FindingRow[];
    evicted: Record<string, number>;
    flushes: { seq: number; time: number; node: string | null }[];
  };
  blindSpots: BlindSpotSection;
  findings: Record<string, { opened: number; resolved: number; openAtEnd: number }>;
  adminAccess: { allowed: number; denied: number; principals: Record<string, number> };
}

export interface IntegritySection {
  /**
   * `verified`: the chain of the range recomputes from its anchor to a checkpoint whose
   * signature verifies under a trusted key; `unsealed`: intact but no checkpoint covers the end
   * yet; `failed`: see problems; `empty`: no records in the period.
   */
  status: 'verified' | 'unsealed' | 'failed' | 'empty';
  /** What the report says in words: only `verified` is verified; otherwise `reason` says why. */
  verdict: 'verified' | 'not verified';
  reason: string | null;
  /**
   * Whether the verdict rests on anchors outside the database: a trusted key that does not sit
   * beside the database and the external checkpoint log (docs/ledger-format.md#threat-model).
   */
  anchored: boolean;
  /** The anchors used, in words (key sources, checkpoint log), and what is missing. */
  anchors: string[];
  recordsChecked: number;
  anchor: { seq: number; chain: string; source: string } | null;
  sealedBy: CheckpointRef | null;
  /** Checkpoints with seq inside the range through the sealing one (first and last 20 listed). */
  checkpointCount: number;
  checkpoints: CheckpointRef[];
  keyIds: string[];
  problems: string[];
}

export interface CheckpointRef {
  n: number;
  seq: number;
  time: number;
  reason: string;
  keyId: string;
  chain: string;
  signature: string;
  signatureValid: boolean | null;
}

export interface LifecycleCounts {
  /** token.written of a fingerprint not live at the time (plus token.appeared). */
  issued: number;
  /** token.written over a live fingerprint, and token.ttl_changed. */
  refreshed: number;
  /** token.deleted. */
  revoked: number;
  expired: number;
  evicted: number;
  /** token.vanished (found gone by reconciliation after a blind spot). */
  vanished: number;
  renamed: number;
  /** token.persisted (TTL removed). */
  persisted: number;
}

export interface InventorySection {
  kinds: string[];
  start: Record<string, number>;
  end: Record<string, number>;
  lifecycle: Record<string, LifecycleCounts>;
  totals: LifecycleCounts;
  /**
   * What baselines and reconciliation corrected, per kind: end - start - issued + revoked +
   * expired + evicted + vanished (a keyspace.baseline replaces its node's count; an end of a
   * token the replay did not know changes nothing).
   */
  adjustments: Record<string, number>;
  churn: { bucketMs: number; buckets: ChurnBucket[]; maxPerBucket: number };
  /** Where the replay started (the last keyspace.baseline before the period, or seq 1). */
  replayFromSeq: number;
}

export interface ChurnBucket {
  start: number;
  issued: number;
  refreshed: number;
  ended: number;
  /** Inventory (all kinds) at the end of the bucket. */
  live: number;
}

export interface RevocationSection {
  slaSeconds: number | null;
  /** Revocations whose propagation was measured (revocation.propagation records). */
  count: number;
  met: number;
  breached: number;
  unknown: number;
  latencySeconds: PercentileSummary;
  histogram: { upToSeconds: number | null; count: number }[];
  breaches: Breach[];
}

export interface Breach {
  providerEventId: string;
  provider: string | null;
  eventType: string | null;
  /** Seq of the revocation.propagation record, when the measurement finished in the period. */
  seq: number | null;
  latencySeconds: number | null;
  slaSeconds: number | null;
  status: 'breached' | 'unknown' | 'open';
  findingId: string | null;
  evidenceSeqs: number[];
}

export interface TtlSection {
  perKind: Record<
    string,
    {
      written: number;
      withTtl: number;
      noExpiry: number;
      unknownTtl: number;
      persisted: number;
      maxTtlSeconds: number | null;
      p95TtlSeconds: number | null;
      policyMaxTtlSeconds: number | null;
      overPolicy: number | null;
    }
  >;
  withoutExpiry: FindingRow[];
  overPolicy: FindingRow[];
}

export interface FindingRow {
  id: string;
  rule: string;
  severity: string;
  criteria: string[];
  openedAt: number;
  openedSeq: number;
  resolvedAt: number | null;
  resolvedSeq: number | null;
  durationMs: number | null;
  summary: string;
  kind: string | null;
  fingerprint: string | null;
  evidenceSeqs: number[];
  attributes: Record<string, unknown>;
}

export interface BlindSpot {
  type: 'keyspace.gap' | 'audit.degraded';
  seq: number;
  start: number;
  end: number;
  durationMs: number;
  /** Part of the window inside the period. */
  inPeriodMs: number;
  reason: string | null;
  node: string | null;
  droppedRecords: number | null;
}

export interface BlindSpotSection {
  windows: BlindSpot[];
  /** Union of the windows inside the period (overlaps counted once). */
  totalMs: number;
  coverage: number;
  clockSkews: { seq: number; time: number; backwardsMs: number }[];
}
