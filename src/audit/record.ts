import type { DomainEvent } from '../domain/domain-event.js';

/** Who produced an audit record. */
export type AuditSource = 'redis' | 'provider' | 'correlator' | 'system' | 'admin';

/** What callers append. Attributes must never hold a raw token, key or secret. */
export interface AuditInput {
  /** Observed time, unix ms. */
  time: number;
  source: AuditSource;
  /** e.g. `token.written`, `keyspace.gap`, `provider.token_revoked`, `finding.churn_spike`. */
  type: string;
  kind?: string | null;
  fingerprint?: string | null;
  attrs?: Record<string, unknown>;
}

/** A committed record as read back from the ledger. */
export interface AuditRecord {
  seq: number;
  time: number;
  source: AuditSource;
  type: string;
  kind: string | null;
  fingerprint: string | null;
  attrs: Record<string, unknown>;
}

/** A record once its batch committed, with the seq it got. */
export interface Committed {
  seq: number;
  input: AuditInput;
  /** The domain event the record was made from (given to `append`), in memory only. */
  event?: DomainEvent;
}
