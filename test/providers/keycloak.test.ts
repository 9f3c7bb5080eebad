import { describe, expect, it } from 'vitest';

import { Fingerprinter } from '../../src/audit/fingerprint.js';
import { normalizeKeycloak } from '../../src/providers/keycloak.js';
import {
  caught,
  fixtureJson,
  providerContext,
  providerFingerprinter,
} from '../helpers/provider-fixtures.js';

const fp = providerFingerprinter();
const ctx = providerContext();
const USER = '5b1d6c0e-8a2f-4b7d-9c3e-1f6a8b2d4e70';
const SESSION = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
const OLD_RT = 'onrtrt:9c5b3d1f-4e8a-4b2c-8d6f-0a2e4c6b8d13';
const NEW_RT = 'onrtrt:6f4d2b0a-8e9c-4d1b-a3f5-c7e9b1d3f502';
const NEW_AT = 'onrtrt:2d8a6c4e-0f1b-4a3c-9e5d-7b9f1a3c5e68';

describe('normalizeKeycloak: admin API event list', () => {
  const events = normalizeKeycloak(fixtureJson('keycloak', 'events-admin-api.json'), ctx);

  it('maps event types, with *_ERROR as a failure of the same type', () => {
    expect(events.map((e) => [e.vendorType, e.type, e.outcome])).toEqual([
      ['LOGIN', 'session_started', 'success'],
      ['CODE_TO_TOKEN', 'token_issued', 'success'],
      ['REFRESH_TOKEN', 'token_refreshed', 'success'],
      ['REFRESH_TOKEN_ERROR', 'token_refreshed', 'failure'],
      ['REVOKE_GRANT', 'token_revoked', 'success'],
      ['CLIENT_LOGIN', 'token_issued', 'success'],
      ['UPDATE_PASSWORD', 'credential_changed', 'success'],
      ['LOGIN_ERROR', 'session_started', 'failure'],
      ['LOGOUT', 'session_ended', 'success'],
      ['INTROSPECT_TOKEN', 'other', 'success'],
    ]);
  });

  it('uses id, time (ms), userId, clientId and the fingerprinted sessionId', () => {
    const e = events[0]!;
    expect(e).toMatchObject({
      provider: 'keycloak',
      id: '3f0c9a52-1b7e-4d6a-9e21-7c8b5d4a3f10',
      occurredAt: 1714468498312,
      subject: USER,
      clientId: 'payments-spa',
      sessionId: fp.of(SESSION),
    });
    expect(e.attributes).toMatchObject({ ip: '198.51.100.23', username: 'jane.doe' });
  });

  it('REFRESH_TOKEN: rotation previous/next and all token ids, fingerprinted', () => {
    const e = events[2]!;
    expect(e.rotation).toEqual({ previous: [fp.of(OLD_RT)], next: [fp.of(NEW_RT)] });
    expect(e.tokenIds).toEqual([fp.of(NEW_AT), fp.of(OLD_RT), fp.of(NEW_RT)]);
    expect(e.attributes).toMatchObject({ grantType: 'refresh_token', refreshTokenType: 'Refresh' });
  });

  it('keeps the error and reason of failures', () => {
    expect(events[3]?.attributes).toMatchObject({ error: 'invalid_token', reason: 'Stale token' });
    expect(events[3]?.rotation).toBeUndefined();
  });

  it('never outputs raw token or session ids', () => {
    const json = JSON.stringify(events);
    for (const raw of [
      OLD_RT,
      NEW_RT,
      NEW_AT,
      SESSION,
      'onrtcc:1a3c5e7f-9b0d-4e2f-8a4c-6e8f0b2d4f61',
    ]) {
      expect(json).not.toContain(raw);
    }
  });
});

describe('normalizeKeycloak: events without id', () => {
  const payload = fixtureJson('keycloak', 'event-legacy-no-id.json');

  it('derives a deterministic keyed (HMAC) id from the canonical event', () => {
    const [a] = normalizeKeycloak(payload, ctx);
    const [b] = normalizeKeycloak(JSON.parse(JSON.stringify(payload)), ctx);
    expect(a?.id).toMatch(/^hmac-sha256:[^:]+:[0-9a-f]{64}$/);
    // Keyed (HMAC): another key gives another id, so nobody without the key can confirm a guess.
    const otherKey = providerContext({
      fingerprinter: new Fingerprinter([{ id: 'test', key: Buffer.alloc(32, 9) }]),
    });
    expect(normalizeKeycloak(payload, otherKey)[0]?.id).not.toBe(a?.id);
    expect(b?.id).toBe(a?.id);
    // Key order does not matter (canonical JSON) ...
    const reordered = Object.fromEntries(Object.entries(payload as object).reverse());
    expect(normalizeKeycloak(reordered, ctx)[0]?.id).toBe(a?.id);
    // ... but content does.
    const other = { ...(payload as object), time: 1714468799501 };
    expect(normalizeKeycloak(other, ctx)[0]?.id).not.toBe(a?.id);
  });

  it('still maps the refresh rotation', () => {
    const [e] = normalizeKeycloak(payload, ctx);
    expect(e?.rotation?.previous).toEqual([fp.of('0e1d2c3b-4a59-4867-9786-a5b4c3d2e1f0')]);
    expect(e?.rotation?.next).toEqual([fp.of('1f2e3d4c-5b6a-4978-a897-b6c5d4e3f201')]);
  });
});

describe('normalizeKeycloak: admin events', () => {
  const events = normalizeKeycloak(fixtureJson('keycloak', 'admin-events.json'), ctx);

  it('detects disabling, deletion, session removal and password reset', () => {
    expect(events.map((e) => [e.vendorType, e.type, e.subject])).toEqual([
      ['admin.USER-UPDATE', 'account_disabled', '7f3e9b1d-5c2a-4e8f-b6d4-0a9c8e7f6d51'],
      ['admin.USER-UPDATE', 'other', USER],
      ['admin.USER-DELETE', 'account_disabled', '0c6a4e2b-9d7f-4b3a-8e1c-5f7d9b3a1e22'],
      ['admin.USER_SESSION-DELETE', 'session_revoked', undefined],
      ['admin.USER-ACTION', 'credential_changed', USER],
    ]);
  });

  it('the admin is the actor, not the subject; the session path is fingerprinted', () => {
    expect(events[0]?.attributes).toMatchObject({
      actorUserId: 'e4b7a75d-c629-4325-a9dc-27368150fecb',
      resourceType: 'USER',
      operationType: 'UPDATE',
    });
    expect(events[0]?.clientId).toBe('security-admin-console');
    expect(events[3]?.sessionId).toBe(fp.of(SESSION));
    expect(JSON.stringify(events)).not.toContain(SESSION);
  });
});

describe('normalizeKeycloak: p2-inc keycloak-events webhook', () => {
  it('access.LOGIN: uid as id, authDetails for user, client and session', () => {
    const [e] = normalizeKeycloak(fixtureJson('keycloak', 'p2-access-login.json'), ctx);
    expect(e).toMatchObject({
      id: '8d76de08-1c12-4d9a-bb86-fd1c602b2486',
      type: 'session_started',
      vendorType: 'access.LOGIN',
      subject: USER,
      clientId: 'payments-spa',
      sessionId: fp.of(SESSION),
    });
    expect(e?.attributes).toMatchObject({ realmId: 'payments', ip: '198.51.100.23' });
  });

  it('access.REFRESH_TOKEN: rotation from details', () => {
    const [e] = normalizeKeycloak(fixtureJson('keycloak', 'p2-access-refresh.json'), ctx);
    expect(e?.type).toBe('token_refreshed');
    expect(e?.rotation).toEqual({ previous: [fp.of(OLD_RT)], next: [fp.of(NEW_RT)] });
    expect(JSON.stringify(e)).not.toContain(OLD_RT);
  });

  it('admin.USER-UPDATE with enabled=false is account_disabled', () => {
    const [e] = normalizeKeycloak(fixtureJson('keycloak', 'p2-admin-user-update.json'), ctx);
    expect(e?.type).toBe('account_disabled');
    expect(e?.subject).toBe('7f3e9b1d-5c2a-4e8f-b6d4-0a9c8e7f6d51');
    expect(e?.attributes.actorUserId).toBe('e4b7a75d-c629-4325-a9dc-27368150fecb');
  });

  it('unknown access types are other; an unparseable representation is not a disable', () => {
    const [e] = normalizeKeycloak(
      { uid: 'u1', time: 1, type: 'access.SEND_VERIFY_EMAIL', authDetails: { userId: 'x' } },
      ctx,
    );
    expect(e?.type).toBe('other');
    const [f] = normalizeKeycloak(
      {
        uid: 'u2',
        time: 1,
        type: 'admin.USER-UPDATE',
        resourcePath: 'users/abc',
        representation: '{"enabled":fal',
      },
      ctx,
    );
    expect(f?.type).toBe('other');
  });
});

describe('normalizeKeycloak: malformed events', () => {
  it.each([
    ['a string', 'LOGIN'],
    ['no time', { id: '1', type: 'LOGIN' }],
    ['time as string', { id: '1', type: 'LOGIN', time: '1714468498312' }],
    ['no type', { id: '1', time: 1 }],
    ['admin.* type without resource', { uid: '1', time: 1, type: 'admin.' }],
    ['array holding junk', [{ id: '1', type: 'LOGIN', time: 1 }, 42]],
    ['an object id', { id: { nested: true }, type: 'LOGIN', time: 1 }],
  ])('%s -> ERR_WEBHOOK_MALFORMED', async (_name, payload) => {
    expect(await caught(() => normalizeKeycloak(payload, ctx))).toMatchObject({
      code: 'ERR_WEBHOOK_MALFORMED',
    });
  });
});
