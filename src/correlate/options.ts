import { FINDING_RULES } from '../domain/finding.js';
import type { Criterion, FindingRule, Severity } from '../domain/finding.js';
import type { ProviderEventType } from '../domain/provider-event.js';

/**
 * Which `TokenEvent.keyAttrs` entries carry which provider join key, for one token kind.
 * Values are keyAttrs names (the key template's placeholder names).
 */
export interface KindJoins {
  /**
   * Placeholders whose fingerprints are token ids (`jti`, `token`, ...), matched against
   * `ProviderEvent.tokenIds` and `rotation`. When omitted, every keyAttrs value that looks like a
   * fingerprint (and is not claimed by another join) counts.
   */
  tokenId?: string | readonly string[];
  /** Placeholder whose fingerprint is the provider session id (matched to `ProviderEvent.sessionId`). */
  sessionId?: string;
  /** Placeholder whose plain value is the subject (matched to `ProviderEvent.subject`). */
  subject?: string;
  /** Placeholder whose plain value is the OAuth client id (matched to `ProviderEvent.clientId`). */
  clientId?: string;
  /** Placeholder whose value is the refresh-token family id (matched to `rotation.familyId`). */
  familyId?: string;
}

/** Per token kind (token rule) settings. Kinds not listed get token-id joins only. */
export interface KindRule {
  kind: string;
  joins?: KindJoins;
  /** The token's own `fingerprint` is a token-id join key. Default `true`. */
  fingerprintIsTokenId?: boolean;
  /** Policy maximum TTL; a longer TTL opens `ttl_exceeds_policy`. Default: no limit. */
  maxTtlSeconds?: number;
  /** Every write must be explained by a provider issuance (`unattributed_token`). Default `false`. */
  requireProviderEvent?: boolean;
}

/** Per finding rule overrides. */
export interface RuleSettings {
  /** Default `true`. */
  enabled?: boolean;
  severity?: Severity;
  /** SOC 2 criteria the finding evidences. */
  criteria?: Criterion[];
}

/** `churn_spike` detector: robust (median/MAD) baseline per kind over 1 s buckets. */
export interface ChurnOptions {
  /** Buckets learned before any finding (at most `baselineBuckets`). Default 60. */
  warmupBuckets?: number;
  /** Seconds in the rolling baseline window (median and MAD of the learned buckets). Default 600. */
  baselineBuckets?: number;
  /** Volume floor: no finding below this many events per second. Default 50. */
  minRatePerSecond?: number;
  /** Open when rate > median + openSigmas·σ. Default 6. */
  openSigmas?: number;
  /** A second is calm when rate ≤ median + resolveSigmas·σ. Default 3. */
  resolveSigmas?: number;
  /** Consecutive calm seconds that resolve a spike. Default 10. */
  resolveAfterBuckets?: number;
  /**
   * Fraction of a spike's buckets learned while it is open, 0 ≤ x ≤ 1: 0 freezes the baseline so
   * it cannot learn the spike; 1 lets a lasting level shift become the new normal after about
   * half of `baselineBuckets`. Default 0.
   */
  learnWhileOpen?: number;
  /**
   * Seconds back whose shortfall below the median is credited against a second's excess, 0 to
   * 60: events held up by a stall (tokenwatch's event loop blocked by GC or a large snapshot,
   * a slow disk) are stamped when they are read, leaving one second short and the next one
   * over; those are late, not extra. Default 5; 0 judges every second on its own count.
   */
  carryBuckets?: number;
}

/** Caps on every in-memory structure; the oldest entries are evicted and counted in `stats()`. */
export interface CorrelatorLimits {
  /**
   * Live tokens tracked (LRU by last write). Default 200 000. Budget ~1.1 KB of heap per
   * token (measured, docs/benchmarks-notes.md): ~220 MB at the default cap; raising it needs
   * `--max-old-space-size` to match.
   */
  maxTrackedTokens?: number;
  /** Recently ended tokens kept for late provider events. Default 200 000. */
  maxEndedTokens?: number;
  /** Revocations / reuse detections / rotations awaiting propagation. Default 50 000. */
  maxPendingObligations?: number;
  /** Revoked token ids, sessions and subjects remembered, each. Default 100 000. */
  maxRevocationMemory?: number;
  /** Recent issuance events kept for attribution. Default 100 000. */
  maxRecentIssuances?: number;
  /** Writes awaiting attribution. Default 200 000. */
  maxPendingAttributions?: number;
  /** Provider event keys remembered for de-duplication. Default 100 000. */
  maxSeenProviderEvents?: number;
  /** Refresh-token families remembered (token ids: 4× this). Default 100 000. */
  maxRotationFamilies?: number;
  /** Distinct kinds tracked by churn and eviction-burst detectors. Default 1 000. */
  maxKinds?: number;
  /** Open findings per rule; beyond it new ones are counted as suppressed. Default 10 000. */
  maxOpenFindingsPerRule?: number;
  /** Evidence seqs kept per finding. Default 50. */
  maxEvidenceSeqs?: number;
  /** Observations buffered between `drainObservations()` calls. Default 10 000. */
  maxBufferedObservations?: number;
  /**
   * Entries per section of a snapshot (rotation families, remembered revocations per key type,
   * recent issuances, pending attributions, recently ended tokens); the newest are kept and the
   * rest counted in the snapshot's `truncated`. Default 20 000.
   */
  maxSnapshotEntries?: number;
}

/** Options of the correlation engine. Every field is optional; defaults are in TSDoc. */
export interface CorrelatorOptions {
  kinds?: readonly KindRule[];
  rules?: Partial<Record<FindingRule, RuleSettings>>;
  /** Matching tokens must leave Redis within this after the revocation. Default 5. */
  revocationSlaSeconds?: number;
  /** Provider events that revoke. Default token_revoked, session_ended, session_revoked, credential_changed, account_disabled. */
  revocationEventTypes?: readonly ProviderEventType[];
  /**
   * Out-of-order window: tokens that left Redis up to this long before a revocation (or reuse
   * detection, rotation) arrived count as propagated. Default 300.
   */
  revocationLookbackSeconds?: number;
  /**
   * Clock-skew / in-flight allowance: tokens first seen up to this long after the revocation still
   * belong to it, and writes within it are not `write_after_revocation`. Default 2.
   */
  revocationGraceSeconds?: number;
  /** How long revoked token ids / sessions / subjects are remembered for rule 5. Default 3600. */
  revocationMemorySeconds?: number;
  /** Revocations after which ANY write for the subject is suspicious. Default ['account_disabled']. */
  writeAfterRevocationSubjectTypes?: readonly ProviderEventType[];
  /** Issuance must occur within ± this of the write. Default 30. */
  attributionWindowSeconds?: number;
  /** TTL above maxTtlSeconds by at most this is tolerated. Default 2. */
  ttlToleranceSeconds?: number;
  /** Family tokens must leave Redis within this after reuse detection. Default 5. */
  refreshReuseSlaSeconds?: number;
  /** Rotated-out tokens must leave Redis within this after the refresh. Default 5. */
  rotationSlaSeconds?: number;
  /** Also open `rotation_incomplete` when a cached predecessor's successor is never written. Default false. */
  rotationRequireSuccessor?: boolean;
  /** Evictions closer than this belong to one burst; this much quiet ends it. Default 10. */
  evictionBurstGapSeconds?: number;
  /** Evictions in a burst before a finding opens. Default 1. */
  evictionBurstMinCount?: number;
  churn?: ChurnOptions;
  limits?: CorrelatorLimits;
  /**
   * How often the findings service persists `snapshot()` as a `correlator.snapshot` ledger
   * record (also at shutdown); a crash replays at most this much of the ledger. Default 60.
   */
  snapshotIntervalSeconds?: number;
}

export interface ResolvedKindRule {
  kind: string;
  joins: {
    tokenId: readonly string[] | undefined;
    sessionId: string | undefined;
    subject: string | undefined;
    clientId: string | undefined;
    familyId: string | undefined;
  };
  fingerprintIsTokenId: boolean;
  maxTtlSeconds: number | undefined;
  requireProviderEvent: boolean;
}

export interface ResolvedRuleSettings {
  enabled: boolean;
  severity: Severity;
  criteria: readonly Criterion[];
}

export interface ResolvedCorrelatorOptions {
  kinds: ReadonlyMap<string, ResolvedKindRule>;
  rules: Readonly<Record<FindingRule, ResolvedRuleSettings>>;
  revocationSlaSeconds: number;
  revocationEventTypes: ReadonlySet<ProviderEventType>;
  revocationLookbackSeconds: number;
  revocationGraceSeconds: number;
  revocationMemorySeconds: number;
  writeAfterRevocationSubjectTypes: ReadonlySet<ProviderEventType>;
  attributionWindowSeconds: number;
  ttlToleranceSeconds: number;
  refreshReuseSlaSeconds: number;
  rotationSlaSeconds: number;
  rotationRequireSuccessor: boolean;
  evictionBurstGapSeconds: number;
  evictionBurstMinCount: number;
  churn: Readonly<Required<ChurnOptions>>;
  limits: Readonly<Required<CorrelatorLimits>>;
  snapshotIntervalSeconds: number;
}

/** Severity and SOC 2 mapping of each rule unless overridden. */
export const DEFAULT_RULE_SETTINGS: Readonly<Record<FindingRule, ResolvedRuleSettings>> = {
  revocation_not_propagated: { enabled: true, severity: 'high', criteria: ['CC6.2'] },
  token_without_expiry: { enabled: true, severity: 'medium', criteria: ['CC6.1'] },
  ttl_exceeds_policy: { enabled: true, severity: 'medium', criteria: ['CC6.1'] },
  unattributed_token: { enabled: true, severity: 'medium', criteria: ['CC6.2', 'CC7.2'] },
  write_after_revocation: { enabled: true, severity: 'high', criteria: ['CC7.2'] },
  refresh_reuse_detected: { enabled: true, severity: 'critical', criteria: ['CC7.2'] },
  tokens_evicted: { enabled: true, severity: 'high', criteria: ['A1.2'] },
  rotation_incomplete: { enabled: true, severity: 'medium', criteria: ['CC6.1'] },
  churn_spike: { enabled: true, severity: 'high', criteria: ['CC7.2'] },
  // CC6.2: an index entry that outlives its token is revoked access still referenced.
  orphaned_index_entries: { enabled: true, severity: 'medium', criteria: ['CC6.2'] },
};

export const DEFAULT_REVOCATION_EVENT_TYPES: readonly ProviderEventType[] = [
  'token_revoked',
  'session_ended',
  'session_revoked',
  'credential_changed',
  'account_disabled',
];

export const DEFAULT_CHURN: Readonly<Required<ChurnOptions>> = {
  warmupBuckets: 60,
  baselineBuckets: 600,
  minRatePerSecond: 50,
  openSigmas: 6,
  resolveSigmas: 3,
  resolveAfterBuckets: 10,
  learnWhileOpen: 0,
  carryBuckets: 5,
};

export const DEFAULT_LIMITS: Readonly<Required<CorrelatorLimits>> = {
  maxTrackedTokens: 200_000,
  maxEndedTokens: 200_000,
  maxPendingObligations: 50_000,
  maxRevocationMemory: 100_000,
  maxRecentIssuances: 100_000,
  maxPendingAttributions: 200_000,
  maxSeenProviderEvents: 100_000,
  maxRotationFamilies: 100_000,
  maxKinds: 1_000,
  maxOpenFindingsPerRule: 10_000,
  maxEvidenceSeqs: 50,
  maxBufferedObservations: 10_000,
  maxSnapshotEntries: 20_000,
};

/** Scalar thresholds left out of the options (the documented defaults, declared once). */
export const DEFAULT_THRESHOLDS = {
  revocationSlaSeconds: 5,
  revocationLookbackSeconds: 300,
  revocationGraceSeconds: 2,
  revocationMemorySeconds: 3600,
  attributionWindowSeconds: 30,
  ttlToleranceSeconds: 2,
  refreshReuseSlaSeconds: 5,
  rotationSlaSeconds: 5,
  rotationRequireSuccessor: false,
  evictionBurstGapSeconds: 10,
  evictionBurstMinCount: 1,
  snapshotIntervalSeconds: 60,
} as const;

export const DEFAULT_WRITE_AFTER_REVOCATION_SUBJECT_TYPES: readonly ProviderEventType[] = [
  'account_disabled',
];

/**
 * Applies the defaults. Validation is the config schema's (src/config/correlate-schema.ts, errors
 * naming `correlate.<key>`); programmatic callers are held to the types.
 */
export function resolveCorrelatorOptions(input: CorrelatorOptions = {}): ResolvedCorrelatorOptions {
  const kinds = new Map<string, ResolvedKindRule>();
  for (const k of input.kinds ?? []) {
    if (kinds.has(k.kind)) continue;
    const tokenId = k.joins?.tokenId;
    kinds.set(k.kind, {
      kind: k.kind,
      joins: {
        tokenId:
          tokenId === undefined
            ? undefined
            : typeof tokenId === 'string'
              ? [tokenId]
              : [...tokenId],
        sessionId: k.joins?.sessionId,
        subject: k.joins?.subject,
        clientId: k.joins?.clientId,
        familyId: k.joins?.familyId,
      },
      fingerprintIsTokenId: k.fingerprintIsTokenId ?? true,
      maxTtlSeconds: k.maxTtlSeconds,
      requireProviderEvent: k.requireProviderEvent ?? false,
    });
  }

  const rules = {} as Record<FindingRule, ResolvedRuleSettings>;
  for (const rule of FINDING_RULES) {
    const def = DEFAULT_RULE_SETTINGS[rule];
    const o = input.rules?.[rule];
    rules[rule] = Object.freeze({
      enabled: o?.enabled ?? def.enabled,
      severity: o?.severity ?? def.severity,
      criteria: Object.freeze([...(o?.criteria ?? def.criteria)]),
    });
  }

  const d = DEFAULT_THRESHOLDS;
  const resolved: ResolvedCorrelatorOptions = {
    kinds,
    rules: Object.freeze(rules),
    revocationSlaSeconds: input.revocationSlaSeconds ?? d.revocationSlaSeconds,
    revocationEventTypes: new Set(input.revocationEventTypes ?? DEFAULT_REVOCATION_EVENT_TYPES),
    revocationLookbackSeconds: input.revocationLookbackSeconds ?? d.revocationLookbackSeconds,
    revocationGraceSeconds: input.revocationGraceSeconds ?? d.revocationGraceSeconds,
    revocationMemorySeconds: input.revocationMemorySeconds ?? d.revocationMemorySeconds,
    writeAfterRevocationSubjectTypes: new Set(
      input.writeAfterRevocationSubjectTypes ?? DEFAULT_WRITE_AFTER_REVOCATION_SUBJECT_TYPES,
    ),
    attributionWindowSeconds: input.attributionWindowSeconds ?? d.attributionWindowSeconds,
    ttlToleranceSeconds: input.ttlToleranceSeconds ?? d.ttlToleranceSeconds,
    refreshReuseSlaSeconds: input.refreshReuseSlaSeconds ?? d.refreshReuseSlaSeconds,
    rotationSlaSeconds: input.rotationSlaSeconds ?? d.rotationSlaSeconds,
    rotationRequireSuccessor: input.rotationRequireSuccessor ?? d.rotationRequireSuccessor,
    evictionBurstGapSeconds: input.evictionBurstGapSeconds ?? d.evictionBurstGapSeconds,
    evictionBurstMinCount: input.evictionBurstMinCount ?? d.evictionBurstMinCount,
    churn: Object.freeze({ ...DEFAULT_CHURN, ...definedOnly(input.churn) }),
    limits: Object.freeze({ ...DEFAULT_LIMITS, ...definedOnly(input.limits) }),
    snapshotIntervalSeconds: input.snapshotIntervalSeconds ?? d.snapshotIntervalSeconds,
  };
  return Object.freeze(resolved);
}

/** Drops keys whose value is undefined, so a spread cannot overwrite a default with it. */
function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(
    Object.entries(o ?? {}).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}
