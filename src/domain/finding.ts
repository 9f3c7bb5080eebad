/** A correlation finding: something an auditor or on-call engineer must see. */
export type FindingRule =
  | 'revocation_not_propagated'
  | 'token_without_expiry'
  | 'ttl_exceeds_policy'
  | 'unattributed_token'
  | 'write_after_revocation'
  | 'refresh_reuse_detected'
  | 'tokens_evicted'
  | 'rotation_incomplete'
  | 'churn_spike'
  | 'orphaned_index_entries';

export const FINDING_RULES: readonly FindingRule[] = [
  'revocation_not_propagated',
  'token_without_expiry',
  'ttl_exceeds_policy',
  'unattributed_token',
  'write_after_revocation',
  'refresh_reuse_detected',
  'tokens_evicted',
  'rotation_incomplete',
  'churn_spike',
  'orphaned_index_entries',
];

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';

/** SOC 2 Trust Services Criteria a finding evidences. */
export type Criterion = 'CC6.1' | 'CC6.2' | 'CC6.3' | 'CC7.2' | 'CC7.3' | 'CC7.4' | 'A1.2';

export interface Finding {
  /** Stable id of this finding across its open/resolved records. */
  id: string;
  rule: FindingRule;
  state: 'opened' | 'resolved';
  severity: Severity;
  criteria: Criterion[];
  /** unix ms (correlator clock). */
  at: number;
  /** When it opened (same as `at` for `opened`). */
  openedAt: number;
  summary: string;
  kind?: string;
  fingerprint?: string;
  subject?: string;
  sessionId?: string;
  /** Audit seqs of the records that evidence the finding, when known. */
  evidenceSeqs: number[];
  attributes: Record<string, string | number | boolean | null>;
}
