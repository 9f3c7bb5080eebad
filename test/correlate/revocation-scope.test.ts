import { describe, expect, it } from 'vitest';
import type { ProviderEvent, ProviderEventType } from '../../src/domain/provider-event.js';
import { resolveCorrelatorOptions } from '../../src/correlate/options.js';
import { effectiveAt, revocationScope } from '../../src/correlate/revocation-scope.js';

const opts = resolveCorrelatorOptions();
const ev = (type: ProviderEventType, over: Partial<ProviderEvent> = {}): ProviderEvent => ({
  provider: 'okta',
  id: 'e1',
  type,
  occurredAt: 1000,
  observedAt: 2000,
  tokenIds: [],
  outcome: 'success',
  vendorType: type,
  attributes: {},
  ...over,
});
const none = { tokenIds: [], sessionId: undefined, subject: undefined };

describe('revocationScope', () => {
  it('token_revoked: its ids (with rotated-out ones, once each), else its session, else its grant', () => {
    expect(
      revocationScope(
        ev('token_revoked', {
          tokenIds: ['a', 'b'],
          rotation: { previous: ['b', 'c'], next: ['d'] },
          sessionId: 's',
          subject: 'u',
          clientId: 'c',
        }),
        opts,
      ),
    ).toEqual({
      query: { tokenIds: ['a', 'b', 'c'] },
      remember: { ...none, tokenIds: ['a', 'b', 'c'] },
    });
    expect(
      revocationScope(ev('token_revoked', { sessionId: 's', subject: 'u', clientId: 'c' }), opts),
    ).toEqual({
      query: { sessionId: 's' },
      remember: none,
    });
    expect(revocationScope(ev('token_revoked', { subject: 'u', clientId: 'c' }), opts)).toEqual({
      query: { subject: 'u', clientId: 'c' },
      remember: none,
    });
    expect(revocationScope(ev('token_revoked', { subject: 'u' }), opts)).toBeUndefined();
    expect(revocationScope(ev('token_revoked', { clientId: 'c' }), opts)).toBeUndefined();
  });

  it('session_ended / session_revoked: the session and ids, else the grant', () => {
    for (const type of ['session_ended', 'session_revoked'] as const) {
      expect(
        revocationScope(ev(type, { sessionId: 's', tokenIds: ['a'], subject: 'u' }), opts),
      ).toEqual({
        query: { tokenIds: ['a'], sessionId: 's' },
        remember: { tokenIds: ['a'], sessionId: 's', subject: undefined },
      });
      expect(revocationScope(ev(type, { tokenIds: ['a'] }), opts)).toEqual({
        query: { tokenIds: ['a'], sessionId: undefined },
        remember: { tokenIds: ['a'], sessionId: undefined, subject: undefined },
      });
      expect(revocationScope(ev(type, { subject: 'u', clientId: 'c' }), opts)).toEqual({
        query: { subject: 'u', clientId: 'c' },
        remember: none,
      });
      expect(revocationScope(ev(type, { subject: 'u' }), opts)).toBeUndefined();
    }
  });

  it('credential_changed / account_disabled: all of the subject; remembers it only when configured', () => {
    expect(revocationScope(ev('account_disabled', { subject: 'u' }), opts)).toEqual({
      query: { tokenIds: [], sessionId: undefined, subject: 'u', anyClient: true },
      remember: { tokenIds: [], sessionId: undefined, subject: 'u' },
    });
    expect(
      revocationScope(ev('credential_changed', { subject: 'u', sessionId: 's' }), opts),
    ).toEqual({
      query: { tokenIds: [], sessionId: 's', subject: 'u', anyClient: true },
      remember: { tokenIds: [], sessionId: 's', subject: undefined },
    });
    expect(
      revocationScope(ev('credential_changed', { sessionId: 's' }), opts)?.query.sessionId,
    ).toBe('s');
    expect(
      revocationScope(ev('credential_changed', { tokenIds: ['a'] }), opts)?.query.tokenIds,
    ).toEqual(['a']);
    expect(revocationScope(ev('account_disabled'), opts)).toBeUndefined();
  });

  it('a type configured as revoking without a rule of its own: the strongest key present', () => {
    expect(
      revocationScope(ev('session_started', { tokenIds: ['a'], sessionId: 's' }), opts),
    ).toEqual({
      query: { tokenIds: ['a'] },
      remember: { ...none, tokenIds: ['a'] },
    });
    expect(revocationScope(ev('session_started', { sessionId: 's', subject: 'u' }), opts)).toEqual({
      query: { sessionId: 's' },
      remember: none,
    });
    expect(
      revocationScope(ev('session_started', { subject: 'u', clientId: 'c' }), opts),
    ).toBeUndefined();
  });

  it('takes effect when it occurred, never later than observed', () => {
    expect(effectiveAt(ev('token_revoked'))).toBe(1000);
    expect(effectiveAt(ev('token_revoked', { occurredAt: 3000 }))).toBe(2000);
  });
});
