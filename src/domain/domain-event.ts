import type { Finding } from './finding.js';
import type { IndexObservation } from './index-observation.js';
import type { ProviderEvent } from './provider-event.js';
import type { TokenEvent } from './token-event.js';

/**
 * What an audit record was made from, in memory only (never persisted or hashed): the ledger
 * publishes it with the seq its record committed under (src/audit/committed-channel.ts), so
 * the correlator, metrics and cache health get typed events that can cite their evidence.
 */
export type DomainEvent =
  | { type: 'token'; event: TokenEvent }
  | { type: 'provider'; event: ProviderEvent }
  | { type: 'finding'; finding: Finding }
  | { type: 'index'; observations: readonly IndexObservation[] };
