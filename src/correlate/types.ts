import type { ProviderEventType, ProviderName } from '../domain/provider-event.js';

/** Source of time (unix ms). Injected: the correlator never reads the wall clock itself. */
export interface Clock {
  now(): number;
}

/**
 * Propagation latency of one revocation or refresh-reuse containment, reported whether the SLA
 * was met or not. Latency runs from `revokedAt` (provider `occurredAt`, clamped to be no later
 * than its `observedAt`) to the `observedAt` of the last matching token leaving Redis, clamped
 * at 0 (tokens that left before the revocation, e.g. seen out of order, count as 0).
 */
export interface RevocationLatency {
  provider: ProviderName;
  providerEventId: string;
  eventType: ProviderEventType;
  /** null when a matching token was dropped from the bounded view, so its fate is unknown. */
  latencySeconds: number | null;
  /** null when unknown (see latencySeconds). */
  metSla: boolean | null;
  slaSeconds: number;
  /** Tokens that had to leave Redis. */
  tokens: number;
  /** Of those, how many had already left before the provider event reached the correlator. */
  tokensGoneBeforeEvent: number;
}

/** Observations drained by the service (histograms), independent of findings. */
export interface CorrelatorObservations {
  revocations: RevocationLatency[];
}

/** Sizes of every bounded structure and how many entries each had to evict. */
export interface CorrelatorStats {
  sizes: {
    liveTokens: number;
    endedTokens: number;
    tokenIdIndex: number;
    sessionIndex: number;
    subjectClientIndex: number;
    subjectIndex: number;
    familyIndex: number;
    pendingObligations: number;
    /** Tokens pending obligations wait for (bounded by them: none outlives its obligation). */
    obligationTokens: number;
    revokedTokenIds: number;
    revokedSessions: number;
    revokedSubjects: number;
    recentIssuances: number;
    pendingAttributions: number;
    seenProviderEvents: number;
    rotationFamilies: number;
    rotationFamilyTokenIds: number;
    churnKinds: number;
    evictionKinds: number;
    openFindings: number;
    bufferedObservations: number;
  };
  evictions: {
    liveTokens: number;
    endedTokens: number;
    pendingObligations: number;
    revocationMemory: number;
    recentIssuances: number;
    pendingAttributions: number;
    seenProviderEvents: number;
    rotationFamilies: number;
    churnKinds: number;
    evictionKinds: number;
    observations: number;
  };
  /** Provider events dropped as already seen (same provider + id). */
  duplicateProviderEvents: number;
  /** Findings not opened because their rule hit `limits.maxOpenFindingsPerRule`. */
  suppressedFindings: number;
}
