import type { PercentileSummary } from './percentiles.js';
import type { Policy } from './policy-record.js';
import type { CacheHealthSection } from './report-cache-health.js';

/**
 * The SOC 2 report as data: what `GET /v1/reports/soc2?format=json` and `tokenwatch report
 * --format json` return, and what the HTML page renders. Every number is computed from ledger
 * records by the rules in docs/compliance.md#soc-2-report, so an auditor (and
 * test/compliance/report-reconcile.test.ts) can recompute it from a raw export.
 * Times are unix ms; durations ms unless named `Seconds`. `null` means unknown, never zero.
 * Version 2: `config.policy` records (`policy`), `deleted` instead of `revoked`, unknown starts,
 * reconciliation of blind spots, `findingList`.
 */
export interface Soc2Report {
  format: 'tokenwatch-soc2-report';
  version: 2;
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
  policy: PolicySection;
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
  /** Per rule: opened in the range, resolved in the range, still open at its end. */
  findings: Record<string, { opened: number; resolved: number; openAtEnd: number }>;
  /** Every finding active in the range, all rules, in the order they opened. */
  findingList: FindingRow[];
  adminAccess: { allowed: number; denied: number; principals: Record<string, number> };
  /** Per-kind hit ratio, misses after revocation, orphaned indexes (src/compliance/report-cache-health.ts). */
  cacheHealth?: CacheHealthSection;
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
  /**
   * Ranges of the period moved to archive files (their `audit.archived` records in the
   * database): not re-hashed by the report; `tokenwatch verify --archive DIR` re-hashes them.
   */
  archived: ArchivedRange[];
  /**
   * Records 1..toSeq of the period were archived by earlier passes, whose `audit.archived`
   * records now sit inside the file `namedIn` (each archive pass moves the previous record into
   * its own file), so the database alone cannot list them; null when nothing of the period is
   * older than the ranges listed (or it was pruned by retention).
   */
  archivedEarlier: { toSeq: number; namedIn: string } | null;
  recordsChecked: number;
  anchor: { seq: number; chain: string; source: string } | null;
  sealedBy: CheckpointRef | null;
  /** Checkpoints with seq inside the range through the sealing one (first and last 20 listed). */
  checkpointCount: number;
  checkpoints: CheckpointRef[];
  keyIds: string[];
  problems: string[];
}

/** An archived range as a report lists it. */
export interface ArchivedRange {
  fromSeq: number;
  toSeq: number;
  records: number;
  firstTime: number;
  lastTime: number;
  file: string;
  sha256: string;
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

/**
 * The policy the report judged by (docs/compliance.md#policy-in-force): the `config.policy`
 * record in force at the start of the range and every one inside it, or one given with
 * `report --config` for the whole period.
 */
export interface PolicySection {
  /** `ledger`: config.policy records; `config`: an override; `none`: neither (TTL conformance unknown). */
  source: 'ledger' | 'config' | 'none';
  /** In order: the policy in force at the start (if any), then each change inside the range. */
  inForce: Policy[];
  /** Token records of the range written before any policy was in force (judged as unknown). */
  recordsWithoutPolicy: number;
}

export interface LifecycleCounts {
  /** token.written of a fingerprint not live at the time (plus token.appeared). */
  issued: number;
  /** token.written over a live fingerprint, and token.ttl_changed. */
  refreshed: number;
  /**
   * token.deleted: a DEL/UNLINK (logout, rotation, revocation, an operator). Not a revocation
   * count: provider revocations and the tokens they matched are in `revocations`.
   */
  deleted: number;
  expired: number;
  evicted: number;
  /** token.vanished (found gone by reconciliation after a blind spot). */
  vanished: number;
  renamed: number;
  /** token.persisted (TTL removed). */
  persisted: number;
  /** token.present: live tokens a baseline SCAN found (known from then on; not issuances). */
  present: number;
}

export interface InventorySection {
  kinds: string[];
  /**
   * Live tokens per kind at the start of the range; null (unknown) unless every node the replay
   * knows had a keyspace.baseline before it: tokens that predate tokenwatch's first baseline are
   * not zero, they are unseen.
   */
  start: Record<string, number | null>;
  startKnown: boolean;
  /** Live tokens per kind at the end of the range; null unless every node had a baseline by then. */
  end: Record<string, number | null>;
  endKnown: boolean;
  lifecycle: Record<string, LifecycleCounts>;
  totals: LifecycleCounts;
  /**
   * What baselines and reconciliation corrected, per kind: end - start - issued + deleted +
   * expired + evicted + vanished (a keyspace.baseline replaces its node's count; an end of a
   * token the replay did not know changes nothing). null when start or end is unknown.
   */
  adjustments: Record<string, number | null>;
  /** keyspace.baseline records of the range: what each start-up / post-gap SCAN counted. */
  baselines: { seq: number; time: number; node: string | null; counts: Record<string, number> }[];
  churn: { bucketMs: number; buckets: ChurnBucket[]; maxPerBucket: number };
  /** Where the replay started (the last keyspace.baseline before the period, or seq 1). */
  replayFromSeq: number;
}

export interface ChurnBucket {
  start: number;
  issued: number;
  refreshed: number;
  ended: number;
  /** Inventory (all kinds) at the end of the bucket; null while unknown (no baseline yet). */
  live: number | null;
}

export interface RevocationSection {
  slaSeconds: number | null;
  /**
   * Provider revocation events recorded in the period (types the policy in force names as
   * revocations), measured or not; null when no policy states those types.
   */
  received: number | null;
  /** Revocations whose propagation was measured (revocation.propagation records). */
  count: number;
  /** Tokens those revocations matched in Redis (sum of the records' `tokens`). */
  tokens: number;
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
      /** token.written records. */
      written: number;
      /**
       * Records that state a TTL: written, appeared, ttl_changed and present with `ttlMs` a
       * number (withTtl) or null (noExpiry), and token.persisted (noExpiry).
       */
      withTtl: number;
      noExpiry: number;
      /** written / appeared / ttl_changed / present records that do not state the TTL. */
      unknownTtl: number;
      persisted: number;
      /** Over the withTtl records. */
      maxTtlSeconds: number | null;
      p95TtlSeconds: number | null;
      /** The maximum in force at the end of the range; null: none (see policyKnown). */
      policyMaxTtlSeconds: number | null;
      /** The correlator's ttlToleranceSeconds in force at the end of the range. */
      toleranceSeconds: number | null;
      /** false when some record of the kind was written under no known policy. */
      policyKnown: boolean;
      /** Distinct tokens the records stated a TTL (or no expiry) for. */
      tokens: number;
      /**
       * Distinct tokens with a TTL above max + tolerance of the policy in force at the record,
       * plus those whose `ttl_exceeds_policy` finding was open when the range began: the set
       * the findings of the range name. null when the policy is unknown.
       */
      overPolicy: number | null;
      /** Distinct tokens stated without expiry, plus open `token_without_expiry` carried in. */
      noExpiryTokens: number;
      /** (tokens - over policy - without expiry) / tokens; null when unknown or no tokens. */
      conformance: number | null;
    }
  >;
  withoutExpiry: FindingRow[];
  overPolicy: FindingRow[];
  /**
   * Whether the table and the findings name the same tokens: tokens counted over policy (or
   * without expiry) that no finding of the range names, and tokens a finding names that the
   * table did not count. Both 0 when the correlator and the report agree.
   */
  agreement: {
    overPolicy: { withoutFinding: number; findingNotCounted: number };
    withoutExpiry: { withoutFinding: number; findingNotCounted: number };
  };
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
  /**
   * What reconciliation found for a keyspace.gap, per change and kind (from the record's
   * `appeared`, `vanished`, `ttl_changed` maps); null when the record states none (a
   * tokenwatch restart is reconciled by the start-up baseline, see `reconciledBySeq`).
   */
  found: {
    appeared: Record<string, number>;
    vanished: Record<string, number>;
    ttlChanged: Record<string, number>;
  } | null;
  /** Keys the reconciliation SCAN read; null when not stated. */
  scanned: number | null;
  /** For a tokenwatch restart: the first keyspace.baseline after the window, if any. */
  reconciledBySeq: number | null;
}

export interface BlindSpotSection {
  windows: BlindSpot[];
  /** Union of the windows inside the period (overlaps counted once). */
  totalMs: number;
  coverage: number;
  clockSkews: { seq: number; time: number; backwardsMs: number }[];
}
