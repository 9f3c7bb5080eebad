/**
 * One OAuth/OIDC provider event, normalised at the edge (src/providers/) from the vendor's
 * JSON. The core never sees vendor payloads. Token and session ids are fingerprinted with the
 * same HMAC keys as Redis key placeholders so they join the Redis tokens that carry them.
 */
export type ProviderName = 'okta' | 'auth0' | 'keycloak' | 'ssf' | 'oidc';

export type ProviderEventType =
  | 'token_issued'
  | 'token_refreshed'
  | 'token_revoked'
  | 'refresh_reuse_detected'
  | 'session_started'
  | 'session_ended'
  | 'session_revoked'
  | 'credential_changed'
  | 'account_disabled'
  | 'other';

export const PROVIDER_EVENT_TYPES: readonly ProviderEventType[] = [
  'token_issued',
  'token_refreshed',
  'token_revoked',
  'refresh_reuse_detected',
  'session_started',
  'session_ended',
  'session_revoked',
  'credential_changed',
  'account_disabled',
  'other',
];

export type ProviderOutcome = 'success' | 'failure' | 'unknown';

export interface ProviderEvent {
  provider: ProviderName;
  /** The provider's own event id (dedup key together with `provider`). */
  id: string;
  type: ProviderEventType;
  /** Provider's timestamp (unix ms). */
  occurredAt: number;
  /** When tokenwatch received it (unix ms). */
  observedAt: number;
  /** Subject (user id) as the provider names it. Not a secret. */
  subject?: string;
  clientId?: string;
  /** Fingerprint of the provider's session id (`hmac-sha256:<keyId>:<hex>`). */
  sessionId?: string;
  /** Fingerprints of token identifiers (jti, token_id, refresh_token_id, ...). */
  tokenIds: string[];
  /**
   * For refresh rotations: fingerprints of the token ids that were retired (`previous`) and of
   * their replacements (`next`). Present only when the provider tells.
   */
  rotation?: { previous: string[]; next: string[]; familyId?: string };
  outcome: ProviderOutcome;
  /** Vendor event type as received (e.g. `sertft`, `REFRESH_TOKEN`). Bounded to 128 chars. */
  vendorType: string;
  /** Extra non-secret attributes (ip, user agent, reason...). Never raw tokens. */
  attributes: Record<string, string | number | boolean | null>;
}
