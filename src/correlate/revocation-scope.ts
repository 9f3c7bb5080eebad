import type { ProviderEvent } from '../domain/provider-event.js';
import type { ResolvedCorrelatorOptions } from './options.js';
import type { TokenQuery } from './token-store.js';

/** Keys after whose revocation any later write is suspicious (`write_after_revocation`). */
export interface RevokedKeys {
  tokenIds: readonly string[];
  sessionId: string | undefined;
  subject: string | undefined;
}

export interface RevocationScope {
  /** The Redis tokens the provider event revoked. */
  query: TokenQuery;
  remember: RevokedKeys;
}

const unique = (ids: readonly string[]): string[] => [...new Set(ids)];

/**
 * Which tokens a revocation reaches. The strongest key the event carries decides, never a
 * weaker one as well: widening a token revocation to its whole session or subject would flag
 * tokens the provider left valid.
 *
 * - token_revoked: its token ids (and rotation.previous); else its session's tokens; else the
 *   (subject, client) grant. Only the token ids are remembered for rule 5, since a session or
 *   grant legitimately gets new tokens after one token is revoked.
 * - session_ended / session_revoked: the session plus any token ids; else (subject, client).
 * - credential_changed / account_disabled: every token of the subject, any client, plus ids
 *   and session. The subject is remembered only for `writeAfterRevocationSubjectTypes`
 *   (re-login after a password change is normal; any write for a disabled account is not).
 */
export function revocationScope(
  ev: ProviderEvent,
  opts: ResolvedCorrelatorOptions,
): RevocationScope | undefined {
  const ids = unique([...ev.tokenIds, ...(ev.rotation?.previous ?? [])]);
  const pair = ev.subject !== undefined && ev.clientId !== undefined;
  const none: RevokedKeys = { tokenIds: [], sessionId: undefined, subject: undefined };
  switch (ev.type) {
    case 'token_revoked':
      if (ids.length > 0) return { query: { tokenIds: ids }, remember: { ...none, tokenIds: ids } };
      if (ev.sessionId !== undefined) return { query: { sessionId: ev.sessionId }, remember: none };
      if (pair) return { query: { subject: ev.subject, clientId: ev.clientId }, remember: none };
      return undefined;
    case 'session_ended':
    case 'session_revoked':
      if (ids.length > 0 || ev.sessionId !== undefined) {
        return {
          query: { tokenIds: ids, sessionId: ev.sessionId },
          remember: { tokenIds: ids, sessionId: ev.sessionId, subject: undefined },
        };
      }
      if (pair) return { query: { subject: ev.subject, clientId: ev.clientId }, remember: none };
      return undefined;
    case 'credential_changed':
    case 'account_disabled':
      if (ev.subject === undefined && ev.sessionId === undefined && ids.length === 0)
        return undefined;
      return {
        query: { tokenIds: ids, sessionId: ev.sessionId, subject: ev.subject, anyClient: true },
        remember: {
          tokenIds: ids,
          sessionId: ev.sessionId,
          subject: opts.writeAfterRevocationSubjectTypes.has(ev.type) ? ev.subject : undefined,
        },
      };
    default:
      // A type configured as revoking but with no scope rule above: strongest key present.
      if (ids.length > 0) return { query: { tokenIds: ids }, remember: { ...none, tokenIds: ids } };
      if (ev.sessionId !== undefined) return { query: { sessionId: ev.sessionId }, remember: none };
      return undefined;
  }
}

/** The moment a provider event took effect: its `occurredAt`, never later than we observed it. */
export function effectiveAt(ev: ProviderEvent): number {
  return Math.min(ev.occurredAt, ev.observedAt);
}
