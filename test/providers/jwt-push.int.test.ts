import { generateKeyPair, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createIssuerKeys } from '../../src/outbound/issuer-keys.js';
import { type OidcIssuer, startOidcIssuer, unsignedJwt } from '../helpers/oidc-issuer.js';
import { type ProviderApp, flushed, startProviderApp } from '../helpers/provider-app.js';
import { fixtureJson } from '../helpers/provider-fixtures.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';

/**
 * RFC 8935 SET push and OIDC Back-Channel Logout on a real app, verified against the loopback
 * issuer's JWKS found through its metadata.
 */

const AUDIENCE = 'https://tokenwatch.example.com/ssf';
const CLIENT_ID = 'tokenwatch-rp';
const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';

let redis: RedisServer;
let issuer: OidcIssuer;
let h: ProviderApp;

beforeAll(async () => {
  [redis, issuer] = await Promise.all([startRedis(), startOidcIssuer()]);
  h = startProviderApp({
    redisUrl: redis.url,
    providers: `
  ssf:
    issuer: ${issuer.issuer}
    audience: ${AUDIENCE}
  oidc:
    issuer: ${issuer.issuer}
    clientId: ${CLIENT_ID}
`,
  });
  await h.app.whenReady();
});

afterAll(async () => {
  await h?.stop();
  await issuer?.close();
  await redis?.stop();
});

const nowSec = (): number => Math.floor(Date.now() / 1000);

/** A fixture SET payload re-addressed to this receiver. */
function fixtureClaims(name: string): Record<string, unknown> {
  // The issuer's signSet supplies a fresh jti unless the caller sets one.
  const claims = { ...(fixtureJson('ssf', name) as Record<string, unknown>) };
  delete claims.jti;
  return { ...claims, iss: issuer.issuer, aud: AUDIENCE, iat: nowSec() };
}

function pushSet(token: string, contentType = 'application/secevent+jwt') {
  return h.app.http.inject({
    method: 'POST',
    url: '/v1/providers/ssf',
    headers: { 'content-type': contentType },
    payload: token,
  });
}

function postLogout(form: string, contentType = 'application/x-www-form-urlencoded') {
  return h.app.http.inject({
    method: 'POST',
    url: '/v1/providers/oidc/backchannel-logout',
    headers: { 'content-type': contentType },
    payload: form,
  });
}

const ssfRecords = (jti: string) =>
  h.app.ledger
    .list({ type: 'provider.*' })
    .filter((r) => r.attrs.provider === 'ssf' && String(r.attrs.eventId).startsWith(jti));

describe('SSF push (RFC 8935)', () => {
  it('accepts every fixture SET with 202 and records its events once, with their domain types', async () => {
    const cases: [string, string[]][] = [
      ['caep-session-revoked-simple.json', ['provider.session_revoked']],
      ['caep-session-revoked-complex.json', ['provider.session_revoked']],
      ['caep-credential-change.json', ['provider.credential_changed']],
      ['caep-token-claims-change.json', ['provider.other']],
      ['risc-account-disabled.json', ['provider.account_disabled']],
      ['risc-credential-compromise.json', ['provider.credential_changed']],
      ['risc-multi-event.json', ['provider.session_revoked', 'provider.account_disabled']],
    ];
    for (const [file, types] of cases) {
      const jti = `jti-${file}`;
      const res = await pushSet(await issuer.signSet({ ...fixtureClaims(file), jti }));
      expect(res.statusCode, file).toBe(202);
      expect(res.body).toBe('');
      expect(ssfRecords(jti).map((r) => r.type)).toEqual(types);
    }
  });

  it('refuses a replayed jti with 400 invalid_request and records nothing new', async () => {
    const token = await issuer.signSet({
      ...fixtureClaims('caep-session-revoked-simple.json'),
      jti: 'replay-1',
    });
    expect((await pushSet(token)).statusCode).toBe(202);
    const before = await h.metric('tokenwatch_webhook_rejections_total', {
      provider: 'ssf',
      reason: 'replay',
    });
    const again = await pushSet(token);
    expect(again.statusCode).toBe(400);
    expect(again.json()).toMatchObject({ err: 'invalid_request' });
    expect(ssfRecords('replay-1')).toHaveLength(1);
    expect(
      await h.metric('tokenwatch_webhook_rejections_total', { provider: 'ssf', reason: 'replay' }),
    ).toBe(before + 1);
  });

  it('answers the RFC 8935 error for wrong issuer, audience, key, signature, typ and alg', async () => {
    const base = fixtureClaims('caep-session-revoked-simple.json');
    const foreign = await generateKeyPair('ES256');
    const cases: [string, Promise<string>, string][] = [
      ['issuer', issuer.signSet({ ...base, iss: 'https://evil.example.com' }), 'invalid_issuer'],
      [
        'audience',
        issuer.signSet({ ...base, aud: 'https://someone-else.example.com' }),
        'invalid_audience',
      ],
      [
        'signature',
        issuer.signSet(base, {}, { privateKey: foreign.privateKey }),
        'authentication_failed',
      ],
      [
        'unknown kid',
        issuer.signSet(base, { kid: 'nope' }, { privateKey: foreign.privateKey }),
        'invalid_key',
      ],
      ['typ', issuer.signSet(base, { typ: 'JWT' }), 'invalid_request'],
      ['alg none', Promise.resolve(unsignedJwt(base, { typ: 'secevent+jwt' })), 'invalid_key'],
      ['garbage', Promise.resolve('not.a.jwt'), 'invalid_request'],
    ];
    for (const [what, token, err] of cases) {
      const res = await pushSet(await token);
      expect(res.statusCode, what).toBe(400);
      expect(res.json(), what).toMatchObject({ err, description: expect.any(String) });
    }
    await flushed(h.app);
    const rejected = h.records('provider.rejected').filter((r) => r.attrs.provider === 'ssf');
    expect(rejected.length).toBeGreaterThanOrEqual(cases.length);
  });

  it('refuses another content type with 415 and an RFC 8935 body', async () => {
    const token = await issuer.signSet(fixtureClaims('caep-session-revoked-simple.json'));
    const res = await pushSet(token, 'application/jwt');
    expect(res.statusCode).toBe(415);
    expect(res.json()).toMatchObject({ err: 'invalid_request' });
  });

  it('records a stream verification event and answers 202', async () => {
    const claims = { ...fixtureClaims('ssf-verification.json'), jti: 'verify-1' };
    const res = await pushSet(await issuer.signSet(claims));
    expect(res.statusCode).toBe(202);
    const rec = h.records('provider.stream_verified');
    expect(rec).toHaveLength(1);
    expect(rec[0]?.attrs).toMatchObject({
      provider: 'ssf',
      eventId: 'verify-1',
      issuer: issuer.issuer,
    });
    expect(JSON.stringify(rec[0]?.attrs)).not.toContain('VGhpcyBpcyBhbiBleGFtcGxl');
  });
});

describe('OIDC Back-Channel Logout', () => {
  const form = (token: string) => `logout_token=${encodeURIComponent(token)}`;

  it('accepts a valid logout token with 200 and Cache-Control: no-store', async () => {
    const token = await issuer.signLogoutToken({
      aud: CLIENT_ID,
      sub: '248289761001',
      sid: '08a5019c-17e1-4977-8f42-65a12843ea02',
      jti: 'bcl-ok',
    });
    const res = await postLogout(form(token));
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const rec = h.records('provider.session_revoked').filter((r) => r.attrs.provider === 'oidc');
    expect(rec.map((r) => r.attrs.eventId)).toEqual(['bcl-ok']);
    expect(rec[0]?.fingerprint).toMatch(/^hmac-sha256:/);
    expect(JSON.stringify(rec)).not.toContain('08a5019c');
  });

  it('refuses replayed, expired, nonce-bearing and event-less tokens with 400 invalid_request', async () => {
    const ok = await issuer.signLogoutToken({
      aud: CLIENT_ID,
      sid: 'sid-replay',
      jti: 'bcl-replay',
    });
    expect((await postLogout(form(ok))).statusCode).toBe(200);
    const cases: [string, string][] = [
      ['replay', ok],
      [
        'expired',
        await issuer.signLogoutToken({
          aud: CLIENT_ID,
          sid: 's',
          iat: nowSec() - 3600,
          exp: nowSec() - 1800,
        }),
      ],
      ['nonce', await issuer.signLogoutToken({ aud: CLIENT_ID, sid: 's', nonce: 'n-0S6_WzA2Mj' })],
      ['no events', await issuer.signLogoutToken({ aud: CLIENT_ID, sid: 's', events: undefined })],
      ['wrong audience', await issuer.signLogoutToken({ aud: 'someone-else', sid: 's' })],
      ['no sub or sid', await issuer.signLogoutToken({ aud: CLIENT_ID })],
    ];
    for (const [what, token] of cases) {
      const res = await postLogout(form(token));
      expect(res.statusCode, what).toBe(400);
      expect(res.headers['cache-control'], what).toBe('no-store');
      expect(res.json(), what).toMatchObject({
        error: 'invalid_request',
        error_description: expect.any(String),
      });
    }
    const missing = await postLogout('other=1');
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toMatchObject({ error: 'invalid_request' });
    expect(
      h.records('provider.session_revoked').filter((r) => r.attrs.eventId === 'bcl-replay'),
    ).toHaveLength(1);
  });

  it('refuses a JSON body with 415 and an OAuth error body', async () => {
    const res = await postLogout('{"logout_token":"x"}', 'application/json');
    expect(res.statusCode).toBe(415);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.json()).toMatchObject({ error: 'invalid_request' });
  });
});

describe('issuer keys', () => {
  it('finds the JWKS through OIDC discovery and through SSF transmitter metadata', async () => {
    const token = await issuer.signJwt({ iss: issuer.issuer, sub: 'x' });
    for (const discovery of ['oidc', 'ssf'] as const) {
      const keys = createIssuerKeys({ issuer: issuer.issuer, discovery });
      const { payload } = await jwtVerify(token, keys, { issuer: issuer.issuer });
      expect(payload.sub, discovery).toBe('x');
    }
  });

  it('answers 503 (retry later) when the issuer cannot be reached', async () => {
    const dead = await startOidcIssuer();
    const deadIssuer = dead.issuer;
    const token = await dead.signSet({ aud: AUDIENCE, events: { [`${CAEP}session-revoked`]: {} } });
    await dead.close();
    const h2 = startProviderApp({
      redisUrl: redis.url,
      providers: `
  ssf:
    issuer: ${deadIssuer}
    audience: ${AUDIENCE}
`,
    });
    try {
      const res = await h2.app.http.inject({
        method: 'POST',
        url: '/v1/providers/ssf',
        headers: { 'content-type': 'application/secevent+jwt' },
        payload: token,
      });
      expect(res.statusCode).toBe(503);
      expect(res.json().error.code).toBe('ERR_PROVIDER_KEYS_UNAVAILABLE');
    } finally {
      await h2.stop();
    }
  });
});
