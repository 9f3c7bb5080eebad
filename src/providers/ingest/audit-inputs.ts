import { createHash } from 'node:crypto';

import type { AuditInput } from '../../audit/record.js';
import type { RefusalSummary } from '../../http/refusal-limiter.js';
import type { RefusedRequest } from '../../http/refused-request.js';
import type { ProviderEvent, ProviderName } from '../../domain/provider-event.js';
import type { RejectionReason } from '../../metrics/provider-metrics.js';

/** How an event reached tokenwatch: a webhook push or a catch-up poll of the provider's API. */
export type Via = 'push' | 'poll';

/** Audit type prefix of everything providers produce; `provider.*` records are dedup markers. */
export const PROVIDER_RECORD_PREFIX = 'provider.';

/**
 * The audit record of an accepted provider event: type `provider.<type>`, the first token id (or
 * the session id) fingerprint as the record fingerprint, everything else in attrs. `eventId`
 * with `provider` is what the seen-set is rebuilt from after a restart.
 */
export function eventAuditInput(ev: ProviderEvent, via: Via): AuditInput {
  return {
    time: ev.observedAt,
    source: 'provider',
    type: `${PROVIDER_RECORD_PREFIX}${ev.type}`,
    kind: null,
    fingerprint: ev.tokenIds[0] ?? ev.sessionId ?? null,
    // Keys in canonical (sorted) order: the ledger's encoder then needs no sort per record.
    attrs: {
      attributes: ev.attributes,
      clientId: ev.clientId,
      eventId: ev.id,
      occurredAt: ev.occurredAt,
      outcome: ev.outcome,
      provider: ev.provider,
      rotation: ev.rotation,
      sessionId: ev.sessionId,
      subject: ev.subject,
      tokenIds: ev.tokenIds,
      vendorType: ev.vendorType,
      via,
    },
  };
}

/**
 * What a refused delivery leaves behind: route, method, names, lengths and HMAC fingerprints
 * (src/http/refused-request.ts), never a value the sender chose.
 */
export interface Rejection {
  provider: ProviderName;
  reason: RejectionReason;
  code: string;
  status: number;
  request: RefusedRequest;
}

/** The `provider.rejected` record of a refused delivery. */
export function rejectionAuditInput(r: Rejection, time: number): AuditInput {
  return {
    time,
    source: 'provider',
    type: `${PROVIDER_RECORD_PREFIX}rejected`,
    kind: null,
    fingerprint: null,
    attrs: {
      provider: r.provider,
      reason: r.reason,
      code: r.code,
      status: r.status,
      ...r.request,
    },
  };
}

/**
 * The `provider.rejected_suppressed` record: refusals from one source in one window beyond the
 * per-record budget, counted exactly (by reason) instead of recorded one by one.
 */
export function rejectionSummaryAuditInput(
  provider: string,
  summary: RefusalSummary,
  time: number,
): AuditInput {
  return {
    time,
    source: 'provider',
    type: `${PROVIDER_RECORD_PREFIX}rejected_suppressed`,
    kind: null,
    fingerprint: null,
    attrs: { provider, ...summary },
  };
}

/** The record of an SSF stream verification event (SSF 1.0 §8.1.4): proof the stream works. */
export function verificationAuditInput(
  jti: string,
  issuer: string,
  state: string | undefined,
  time: number,
): AuditInput {
  return {
    time,
    source: 'provider',
    type: `${PROVIDER_RECORD_PREFIX}stream_verified`,
    kind: null,
    fingerprint: null,
    attrs: {
      provider: 'ssf',
      eventId: jti,
      issuer,
      // The state is the receiver's nonce; its digest is enough to match a request later.
      stateSha256: state === undefined ? null : createHash('sha256').update(state).digest('hex'),
      via: 'push',
    },
  };
}
