import { Counter, Histogram, type Registry } from 'prom-client';

import {
  PROVIDER_EVENT_TYPES,
  type ProviderName,
  type ProviderOutcome,
} from '../domain/provider-event.js';

/**
 * Why a webhook delivery was refused: a fixed vocabulary, so the label stays bounded.
 * `unavailable` is ours, not the sender's (signing keys could not be fetched, internal error).
 */
export type RejectionReason =
  | 'unauthorized'
  | 'signature'
  | 'malformed'
  | 'content_type'
  | 'too_large'
  | 'invalid_token'
  | 'replay'
  | 'degraded'
  | 'unavailable';

/** Every {@link RejectionReason}, for pre-initialised series. */
export const REJECTION_REASONS: readonly RejectionReason[] = [
  'unauthorized',
  'signature',
  'malformed',
  'content_type',
  'too_large',
  'invalid_token',
  'replay',
  'degraded',
  'unavailable',
];

/**
 * Why a poll run failed (or a stored cursor was refused): a fixed vocabulary. `offsite_*`: a
 * next link, a stored cursor or a built URL pointing off the configured origin/path
 * (src/outbound/origin-guard.ts); `redirect`: a 3xx, never followed.
 */
export type PollErrorReason =
  | 'offsite_link'
  | 'offsite_cursor'
  | 'offsite_url'
  | 'redirect'
  | 'http'
  | 'auth'
  | 'rate_limit'
  | 'timeout'
  | 'malformed'
  | 'other';

/** Every {@link PollErrorReason}, for pre-initialised series. */
export const POLL_ERROR_REASONS: readonly PollErrorReason[] = [
  'offsite_link',
  'offsite_cursor',
  'offsite_url',
  'redirect',
  'http',
  'auth',
  'rate_limit',
  'timeout',
  'malformed',
  'other',
];

const OUTCOMES: readonly ProviderOutcome[] = ['success', 'failure', 'unknown'];

/** Provider time to tokenwatch time: seconds for pushes, up to days for catch-up polls. */
const LAG_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86_400, 7 * 86_400];

/** Metrics of provider ingestion. Labels: provider names, domain types, fixed reasons. */
export interface ProviderMetrics {
  events: Counter<'provider' | 'type' | 'outcome'>;
  eventLag: Histogram<'provider'>;
  duplicates: Counter<'provider'>;
  pollErrors: Counter<'provider' | 'reason'>;
  rejections: Counter<'provider' | 'reason'>;
}

/**
 * Registers the provider metrics on `registry` (the app's, never prom-client's global one) and
 * pre-initialises the series of the configured `providers` to 0.
 */
export function createProviderMetrics(
  registry: Registry,
  providers: readonly ProviderName[],
  polled: readonly ProviderName[] = [],
): ProviderMetrics {
  const m: ProviderMetrics = {
    events: new Counter({
      name: 'tokenwatch_provider_events_total',
      help: 'Provider events committed to the audit ledger (duplicates excluded), by provider, domain type and outcome.',
      labelNames: ['provider', 'type', 'outcome'],
      registers: [registry],
    }),
    eventLag: new Histogram({
      name: 'tokenwatch_provider_event_lag_seconds',
      help: 'Time from the provider timestamp of an event to tokenwatch observing it, by provider.',
      labelNames: ['provider'],
      buckets: LAG_BUCKETS,
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'tokenwatch_provider_duplicates_total',
      help: 'Provider events received again (redelivery, or push and poll of one event) and not re-recorded.',
      labelNames: ['provider'],
      registers: [registry],
    }),
    pollErrors: new Counter({
      name: 'tokenwatch_provider_poll_errors_total',
      help: 'Failed provider API poll runs (and refused stored cursors), by provider and reason.',
      labelNames: ['provider', 'reason'],
      registers: [registry],
    }),
    rejections: new Counter({
      name: 'tokenwatch_webhook_rejections_total',
      help: 'Webhook deliveries refused, by provider and reason.',
      labelNames: ['provider', 'reason'],
      registers: [registry],
    }),
  };
  for (const provider of providers) {
    for (const type of PROVIDER_EVENT_TYPES) {
      for (const outcome of OUTCOMES) m.events.inc({ provider, type, outcome }, 0);
    }
    m.duplicates.inc({ provider }, 0);
    for (const reason of REJECTION_REASONS) m.rejections.inc({ provider, reason }, 0);
  }
  for (const provider of polled)
    for (const reason of POLL_ERROR_REASONS) m.pollErrors.inc({ provider, reason }, 0);
  return m;
}
