import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ProviderEvent } from '../../src/domain/provider-event.js';
import { normalizeAuth0, parseAuth0Body } from '../../src/providers/auth0.js';
import { keycloakSignature } from '../../src/providers/keycloak-signature.js';
import { normalizeKeycloak } from '../../src/providers/keycloak.js';
import { normalizeOkta } from '../../src/providers/okta.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';
import { fixtureJson, fixtureText, providerContext } from '../helpers/provider-fixtures.js';
import { type ProviderApp, flushed, startProviderApp } from '../helpers/provider-app.js';

/**
 * Okta, Auth0 and Keycloak push endpoints on a real app (real Redis, temp SQLite): every fixture
 * lands once with its domain type, redelivery is acknowledged without new records, and bad
 * credentials are refused, counted and recorded.
 */

const OKTA_SECRET = 'okta-shared-secret-0123456789';
const AUTH0_TOKEN = 'auth0-stream-token-0123456789';
const KC_SECRET = 'keycloak-webhook-secret-0123456789';

const PROVIDERS = `
  okta:
    secret: ${OKTA_SECRET}
  auth0:
    token: ${AUTH0_TOKEN}
  keycloak:
    secret: ${KC_SECRET}
`;

let redis: RedisServer;
let h: ProviderApp;

beforeAll(async () => {
  redis = await startRedis();
  h = startProviderApp({ redisUrl: redis.url, providers: PROVIDERS });
  await h.app.whenReady();
});

afterAll(async () => {
  await h?.stop();
  await redis?.stop();
});

/** [record type, event id] the normalizer predicts for a payload. */
function expected(events: ProviderEvent[]): [string, string][] {
  return events.map((e) => [`provider.${e.type}`, e.id]);
}

function recordsOf(provider: string): [string, string][] {
  return h.app.ledger
    .list({ type: 'provider.*' })
    .filter((r) => r.attrs.provider === provider && r.type !== 'provider.rejected')
    .map((r) => [r.type, String(r.attrs.eventId)]);
}

async function postOkta(body: string, secret: string | null = OKTA_SECRET) {
  return h.app.http.inject({
    method: 'POST',
    url: '/v1/providers/okta/hook',
    headers: {
      'content-type': 'application/json',
      ...(secret !== null ? { authorization: secret } : {}),
    },
    payload: body,
  });
}

async function postKeycloak(body: string, signature?: string) {
  return h.app.http.inject({
    method: 'POST',
    url: '/v1/providers/keycloak/events',
    headers: {
      'content-type': 'application/json',
      'x-keycloak-signature': signature ?? keycloakSignature(body, KC_SECRET),
    },
    payload: body,
  });
}

describe('Okta Event Hook endpoint', () => {
  it('answers the one-time verification challenge', async () => {
    const res = await h.app.http.inject({
      method: 'GET',
      url: '/v1/providers/okta/hook',
      headers: { 'x-okta-verification-challenge': 'chl_8d3Kq2-Zp' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ verification: 'chl_8d3Kq2-Zp' });
    const bad = await h.app.http.inject({ method: 'GET', url: '/v1/providers/okta/hook' });
    expect(bad.statusCode).toBe(400);
  });

  it('records every event of a delivery once, with its domain type; redelivery adds nothing', async () => {
    const body = fixtureText('okta', 'event-hook.json');
    const want = expected(normalizeOkta(fixtureJson('okta', 'event-hook.json'), providerContext()));
    expect(want).toContainEqual([
      'provider.session_started',
      '5f3c1e2a-06d9-11ef-9b7e-5d2c1a8f4b01',
    ]);

    const res = await postOkta(body);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ recorded: want.length, duplicates: 0 });
    expect(recordsOf('okta')).toEqual(want);

    const dupBefore = await h.metric('tokenwatch_provider_duplicates_total', { provider: 'okta' });
    const again = await postOkta(body);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ recorded: 0, duplicates: want.length });
    expect(recordsOf('okta')).toEqual(want);
    expect(await h.metric('tokenwatch_provider_duplicates_total', { provider: 'okta' })).toBe(
      dupBefore + want.length,
    );
    const rec = h.records('provider.session_started').find((r) => r.attrs.provider === 'okta');
    expect(rec?.source).toBe('provider');
    expect(rec?.kind).toBeNull();
    expect(rec?.attrs).toMatchObject({
      via: 'push',
      vendorType: 'user.session.start',
      outcome: 'success',
    });
    // Token ids and session ids only ever appear as fingerprints.
    expect(JSON.stringify(h.records('provider.*'))).not.toContain('AT.');
  });

  it('refuses a missing or wrong secret with 401, a metric and a rejection record', async () => {
    const before = await h.metric('tokenwatch_webhook_rejections_total', {
      provider: 'okta',
      reason: 'unauthorized',
    });
    const missing = await postOkta('{}', null);
    const wrong = await postOkta('{}', 'not-the-secret-but-long-enough');
    for (const res of [missing, wrong]) {
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('ERR_WEBHOOK_UNAUTHORIZED');
    }
    expect(
      await h.metric('tokenwatch_webhook_rejections_total', {
        provider: 'okta',
        reason: 'unauthorized',
      }),
    ).toBe(before + 2);
    await flushed(h.app);
    const rejected = h
      .records('provider.rejected')
      .filter((r) => r.attrs.reason === 'unauthorized');
    expect(rejected.length).toBeGreaterThanOrEqual(2);
    expect(rejected[0]?.attrs).toMatchObject({
      provider: 'okta',
      code: 'ERR_WEBHOOK_UNAUTHORIZED',
      remoteAddress: '127.0.0.1',
    });
  });

  it('refuses a non-JSON content type with 415', async () => {
    const res = await h.app.http.inject({
      method: 'POST',
      url: '/v1/providers/okta/hook',
      headers: { 'content-type': 'text/plain', authorization: OKTA_SECRET },
      payload: 'hello',
    });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('ERR_WEBHOOK_CONTENT_TYPE');
  });
});

describe('Auth0 Log Stream endpoint', () => {
  const post = (body: string, contentType = 'application/json', auth = `Bearer ${AUTH0_TOKEN}`) =>
    h.app.http.inject({
      method: 'POST',
      url: '/v1/providers/auth0/logs',
      headers: { 'content-type': contentType, authorization: auth },
      payload: body,
    });

  it('accepts array, JSON lines and single-object bodies; the same log twice is recorded once', async () => {
    const ctx = providerContext();
    const array = fixtureText('auth0', 'log-stream-array.json');
    const lines = fixtureText('auth0', 'log-stream.jsonl');
    const single = fixtureText('auth0', 'log-stream-object.json');
    const want = new Map<string, string>();
    for (const [text, ct] of [
      [array, 'application/json'],
      [lines, 'application/x-ndjson'],
      [single, 'application/json'],
    ] as const) {
      for (const [type, id] of expected(
        normalizeAuth0(parseAuth0Body(text, { contentType: ct }), ctx),
      ))
        want.set(id, type);
    }
    expect([...want.values()]).toContain('provider.refresh_reuse_detected');

    expect((await post(array)).statusCode).toBe(200);
    // Verbatim token (no "Bearer") is what Auth0 sends when the admin typed the bare token.
    expect((await post(lines, 'application/x-ndjson', AUTH0_TOKEN)).statusCode).toBe(200);
    expect((await post(single)).statusCode).toBe(200);
    const got = recordsOf('auth0');
    expect(new Map(got.map(([t, id]) => [id, t]))).toEqual(want);
    expect(got).toHaveLength(want.size);

    const again = await post(array);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ recorded: 0 });
    expect(recordsOf('auth0')).toHaveLength(want.size);
  });

  it('refuses a wrong bearer token with 401', async () => {
    const res = await post('[]', 'application/json', 'Bearer wrong-token-wrong-token');
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('ERR_WEBHOOK_UNAUTHORIZED');
  });
});

describe('Keycloak events endpoint', () => {
  const files = [
    'events-admin-api.json',
    'admin-events.json',
    'event-legacy-no-id.json',
    'p2-access-login.json',
    'p2-access-refresh.json',
    'p2-admin-user-update.json',
  ];

  it('records plain, admin and p2-inc webhook events once each, signature checked on raw bytes', async () => {
    const want: [string, string][] = [];
    for (const f of files) {
      // Ids of events without one are keyed with the app's HMAC key.
      const ctx = providerContext({ fingerprinter: h.app.fingerprinter });
      want.push(...expected(normalizeKeycloak(fixtureJson('keycloak', f), ctx)));
      const res = await postKeycloak(fixtureText('keycloak', f));
      expect(res.statusCode, f).toBe(200);
    }
    expect(want).toContainEqual(['provider.token_revoked', expect.any(String)]);
    expect(recordsOf('keycloak')).toEqual(want);
    for (const f of files)
      expect((await postKeycloak(fixtureText('keycloak', f))).statusCode).toBe(200);
    expect(recordsOf('keycloak')).toEqual(want);
  });

  it('refuses a bad or missing signature with 401 before parsing', async () => {
    const body = fixtureText('keycloak', 'p2-access-login.json');
    const before = await h.metric('tokenwatch_webhook_rejections_total', {
      provider: 'keycloak',
      reason: 'signature',
    });
    // Same JSON, re-serialised: a different byte string, so the signature must not match.
    const reserialised = JSON.stringify(JSON.parse(body));
    const bad = await postKeycloak(reserialised, keycloakSignature(body, KC_SECRET));
    expect(bad.statusCode).toBe(401);
    expect(bad.json().error.code).toBe('ERR_WEBHOOK_SIGNATURE');
    const wrongKey = await postKeycloak(body, keycloakSignature(body, 'another-secret-0123456789'));
    expect(wrongKey.statusCode).toBe(401);
    const missing = await h.app.http.inject({
      method: 'POST',
      url: '/v1/providers/keycloak/events',
      headers: { 'content-type': 'application/json' },
      payload: body,
    });
    expect(missing.statusCode).toBe(401);
    expect(
      await h.metric('tokenwatch_webhook_rejections_total', {
        provider: 'keycloak',
        reason: 'signature',
      }),
    ).toBe(before + 3);
  });
});

describe('ingestion', () => {
  it('records concurrent redeliveries once and tells listeners after commit, with the seq', async () => {
    const seen: [string, number][] = [];
    const off = h.app.providers.onEvent((ev, seq) => {
      // Called after commit: the record is already readable.
      expect(h.app.ledger.list({ afterSeq: seq - 1, limit: 1 })[0]?.attrs.eventId).toBe(ev.id);
      seen.push([ev.id, seq]);
    });
    const body = JSON.stringify([
      { id: 'kc-concurrent-1', time: Date.now(), type: 'LOGIN', userId: 'u1', sessionId: 's1' },
      { id: 'kc-concurrent-2', time: Date.now(), type: 'LOGOUT', userId: 'u1', sessionId: 's1' },
    ]);
    const replies = await Promise.all([postKeycloak(body), postKeycloak(body), postKeycloak(body)]);
    off();
    expect(replies.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    const results = replies.map((r) => r.json<{ recorded: number; duplicates: number }>());
    expect(results.reduce((n, r) => n + r.recorded, 0)).toBe(2);
    expect(results.reduce((n, r) => n + r.duplicates, 0)).toBe(4);
    expect(seen.map(([id]) => id)).toEqual(['kc-concurrent-1', 'kc-concurrent-2']);
    expect(recordsOf('keycloak').filter(([, id]) => id.startsWith('kc-concurrent'))).toHaveLength(
      2,
    );
  });
});

describe('routing', () => {
  it('answers 404 for providers without a config section', async () => {
    for (const url of ['/v1/providers/ssf', '/v1/providers/oidc/backchannel-logout']) {
      const res = await h.app.http.inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json' },
        payload: '{}',
      });
      expect(res.statusCode, url).toBe(404);
      expect(res.json().error.code).toBe('ERR_NOT_FOUND');
    }
  });

  it('pre-initialises provider metrics for configured providers only', async () => {
    const text = await h.app.metrics.registry.metrics();
    expect(text).toContain(
      'tokenwatch_provider_events_total{provider="keycloak",type="account_disabled",outcome="failure"} 0',
    );
    expect(text).not.toContain('provider="ssf"');
  });
});
