import { describe, expect, it } from 'vitest';

import { FINGERPRINT_RE } from '../../src/audit/fingerprint.js';
import { normalizeOkta } from '../../src/providers/okta.js';
import {
  PROVIDER_TEST_NOW,
  caught,
  fixtureJson,
  providerContext,
  providerFingerprinter,
} from '../helpers/provider-fixtures.js';

const fp = providerFingerprinter();
const ctx = providerContext();

describe('normalizeOkta: Event Hook body', () => {
  const events = normalizeOkta(fixtureJson('okta', 'event-hook.json'), ctx);
  const byId = new Map(events.map((e) => [e.id, e]));

  it('maps every LogEvent in order to the right domain type', () => {
    expect(events.map((e) => [e.vendorType, e.type])).toEqual([
      ['user.session.start', 'session_started'],
      ['app.oauth2.as.token.grant.access_token', 'token_issued'],
      ['app.oauth2.as.token.grant.refresh_token', 'token_refreshed'],
      ['user.session.clear', 'session_revoked'],
      ['user.account.lock', 'account_disabled'],
      ['user.mfa.factor.reset_all', 'credential_changed'],
      ['group.user_membership.add', 'other'],
    ]);
    expect(events.every((e) => e.provider === 'okta' && e.observedAt === PROVIDER_TEST_NOW)).toBe(
      true,
    );
  });

  it('uses uuid as id and published as occurredAt', () => {
    const e = byId.get('5f3c1e2a-06d9-11ef-9b7e-5d2c1a8f4b01');
    expect(e?.occurredAt).toBe(Date.parse('2024-04-30T09:14:58.312Z'));
    expect(e?.subject).toBe('00u8k2lq7hTy3Zp1d5d7');
    expect(e?.sessionId).toBe(fp.of('102Xo4bYc8dR2e9FhT1kLm0nQ'));
    expect(e?.outcome).toBe('success');
    expect(e?.attributes.ip).toBe('198.51.100.23');
  });

  it('fingerprints token target ids and detailEntry.hash; subject from the token, client from the actor', () => {
    const e = byId.get('6a0f7d9c-06d9-11ef-8c21-9f0e3b7a2d11')!;
    expect(e.subject).toBe('00u8k2lq7hTy3Zp1d5d7');
    expect(e.clientId).toBe('0oa9q1w2e3R4t5Y6u5d7');
    expect(e.tokenIds).toEqual([
      fp.of('AT.q8Vb2nK4mXr9sT1uY7wZ0aBcDeFgHiJkLmNoPqRsTuV'),
      fp.of('Wb3nQ7r2Lk9xYt5Vp1Zs0Q'),
    ]);
    expect(e.attributes).toMatchObject({
      grantType: 'authorization_code',
      scopes: 'openid profile payments:read',
    });
  });

  it('targets a user for admin actions and keeps the admin as actorId', () => {
    const clear = byId.get('8c52f1bb-06d9-11ef-b406-22c3daf9f807')!;
    expect(clear.subject).toBe('00u8k2lq7hTy3Zp1d5d7');
    expect(clear.attributes.actorId).toBe('00uAdm1n0Pq2Rs3Tu5d7');
    // externalSessionId "unknown" would join unrelated events: dropped.
    expect(clear.sessionId).toBeUndefined();
    const reset = byId.get('ae7413dd-06d9-11ef-9af8-44e5fc1b1a29')!;
    expect(reset.subject).toBe('00u7hq3W9eR1tY2uI5d7');
    const lock = byId.get('9d6302cc-06d9-11ef-85e7-33d4eb0a0918')!;
    expect(lock.outcome).toBe('failure');
    expect(lock.attributes.reason).toBe('LOCKED_OUT');
  });

  it('never outputs a raw token id, token hash or session id', () => {
    const json = JSON.stringify(events);
    for (const raw of [
      'AT.q8Vb2nK4mXr9sT1uY7wZ0aBcDeFgHiJkLmNoPqRsTuV',
      'Wb3nQ7r2Lk9xYt5Vp1Zs0Q',
      'rt.Hf7Kp2Lq9Zx4Vb1Nm8Ws3Ty6Uj',
      'Zc8mR1t6Yp3Qw9Ek2Lx7Vb',
      '102Xo4bYc8dR2e9FhT1kLm0nQ',
    ]) {
      expect(json).not.toContain(raw);
    }
    for (const e of events) {
      for (const t of e.tokenIds) expect(t).toMatch(FINGERPRINT_RE);
    }
  });
});

describe('normalizeOkta: System Log API page (bare array)', () => {
  const events = normalizeOkta(fixtureJson('okta', 'system-log.json'), ctx);

  it('maps org and custom authorization server token events', () => {
    expect(events.map((e) => e.type)).toEqual([
      'token_issued',
      'token_revoked',
      'refresh_reuse_detected',
      'session_ended',
      'account_disabled',
      'credential_changed',
    ]);
  });

  it('client_credentials grant: subject is the client, no session', () => {
    const [grant] = events;
    expect(grant?.subject).toBe('0oaSvc7x8y9Z0a1B2c5d7');
    expect(grant?.clientId).toBe('0oaSvc7x8y9Z0a1B2c5d7');
    expect(grant?.sessionId).toBeUndefined();
    expect(grant?.attributes.grantType).toBe('client_credentials');
  });

  it('revocation and reuse carry the fingerprinted refresh token', () => {
    expect(events[1]?.tokenIds).toContain(fp.of('rt.Hf7Kp2Lq9Zx4Vb1Nm8Ws3Ty6Uj'));
    expect(events[2]?.tokenIds).toContain(fp.of('Pq7Lm2Xr9Vb4Nt1Ws6Zc3Y'));
    expect(events[2]?.outcome).toBe('failure');
    expect(JSON.stringify(events)).not.toContain('rt.Xy4Zw1Vu8Ts5Rq2Po9Nm6Lk3Ji');
  });

  it('suspension targets the suspended user, not the admin', () => {
    expect(events[4]?.subject).toBe('00u7hq3W9eR1tY2uI5d7');
  });

  it('grant type refresh_token on the org server is a refresh', () => {
    const [e] = normalizeOkta(
      [
        {
          uuid: 'u-1',
          published: '2024-04-30T09:00:00Z',
          eventType: 'app.oauth2.token.grant.access_token',
          debugContext: { debugData: { grantType: 'refresh_token' } },
        },
      ],
      ctx,
    );
    expect(e?.type).toBe('token_refreshed');
  });
});

describe('normalizeOkta: envelope errors', () => {
  it.each([
    ['a string', 'hello'],
    ['null', null],
    ['another eventType', { eventType: 'com.example.hook', data: { events: [] } }],
    ['data.events not an array', { eventType: 'com.okta.event_hook', data: { events: {} } }],
    ['no data', { eventType: 'com.okta.event_hook' }],
  ])('%s -> ERR_WEBHOOK_MALFORMED', async (_name, payload) => {
    const err = await caught(() => normalizeOkta(payload, ctx));
    expect(err).toMatchObject({ code: 'ERR_WEBHOOK_MALFORMED', status: 400 });
  });

  it('names the bad field of a bad LogEvent', async () => {
    const err = await caught(() =>
      normalizeOkta(
        {
          eventType: 'com.okta.event_hook',
          data: {
            events: [{ uuid: 'x', eventType: 'user.session.start', published: 'yesterday' }],
          },
        },
        ctx,
      ),
    );
    expect(err).toMatchObject({ code: 'ERR_WEBHOOK_MALFORMED' });
    expect((err as Error).message).toContain('data.events[0].published');
  });
});
