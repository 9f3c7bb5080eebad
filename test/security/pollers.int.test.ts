import Database from 'better-sqlite3';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { waitFor } from '../helpers/app-harness.js';
import { type FakeApi, type FakeReply, auth0Logs, startFakeApi } from '../helpers/fake-log-api.js';
import { type OidcIssuer, startOidcIssuer } from '../helpers/oidc-issuer.js';
import { type ProviderApp, providerEventIds, startProviderApp } from '../helpers/provider-app.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';
import { canary, expectNoLeaks, recordControl } from './leak-check.js';

/**
 * Adversarial suite, entrance 2: the catch-up pollers against a hostile Okta (issue #17,
 * finding 1). The fake Okta answers real System Log pages whose `Link: rel="next"` targets are
 * crafted to send the next request (with `Authorization: SSWS <token>`) to a second listener,
 * the attacker; it also answers redirects, and the attacker may write the cursor table. The
 * Auth0 and Keycloak APIs answer redirects too, and an issuer's discovery document names a token
 * endpoint or `jwks_uri` on the attacker's port (or redirects there). The attacker must never
 * receive a request; every refusal is counted by reason.
 */

const TOKEN = 'okta-ssws-api-token-0123456789';
const CAEP_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';

let redis: RedisServer;
let okta: FakeApi;
let attacker: FakeApi;
let h: ProviderApp;
let base: string;
let next: (self: URL) => string;
let seq = 0;

beforeAll(async () => {
  redis = await startRedis();
  attacker = await startFakeApi(() => ({ status: 200, body: [] }));
  okta = await startFakeApi((url, authorization): FakeReply => {
    if (authorization !== `SSWS ${TOKEN}`) return { status: 401 };
    if (url.pathname !== '/api/v1/logs') return { status: 404 };
    seq += 1;
    return {
      status: 200,
      headers: { link: `<${next(url)}>; rel="next"` },
      body: [
        { uuid: `ev-${seq}`, published: new Date().toISOString(), eventType: 'user.session.start' },
      ],
    };
  });
  next = () => `${okta.base}/api/v1/logs?after=ev-${seq}`;
  h = startProviderApp({
    redisUrl: redis.url,
    providers: `
  okta:
    poll:
      baseUrl: ${okta.base}
      intervalSeconds: 3600
      pageSize: 1
      maxPagesPerRun: 3
      auth: { apiToken: ${TOKEN} }
`,
  });
  await h.app.whenReady();
  base = await h.app.listen();
  await h.app.providers.pollNow('okta');
});

afterAll(async () => {
  await h?.stop();
  await okta?.close();
  await attacker?.close();
  await redis?.stop();
});

const errors = (reason: string) =>
  h.metric('tokenwatch_provider_poll_errors_total', { provider: 'okta', reason });

function storedCursor(): string | undefined {
  const db = new Database(h.dbPath, { readonly: true });
  try {
    return (
      db.prepare("SELECT cursor FROM provider_cursors WHERE name = 'okta'").get() as
        { cursor: string } | undefined
    )?.cursor;
  } finally {
    db.close();
  }
}

function writeCursor(value: string): void {
  const db = new Database(h.dbPath);
  try {
    db.pragma('busy_timeout = 5000');
    db.prepare("UPDATE provider_cursors SET cursor = ? WHERE name = 'okta'").run(value);
  } finally {
    db.close();
  }
}

/** Canaries in crafted next links (the ones in tampered cursor rows were written by the test). */
const linkCanaries: string[] = [];

/** Next links and cursors that must never be followed: the attacker's port, Okta's host. */
function crafted(c: string): [string, string][] {
  const okt = new URL(okta.base);
  const evil = new URL(attacker.base);
  return [
    // Issue #17: parses with Okta's host and path "//127.0.0.1:<evil>/...", which the old
    // cursor (path + query) then resolved protocol-relative.
    ['protocol-relative path', `${okta.base}//${evil.host}/api/v1/logs?after=${c}`],
    ['protocol-relative link', `//${evil.host}/api/v1/logs?after=${c}`],
    ['other port', `${attacker.base}/api/v1/logs?after=${c}`],
    ['other host', `http://localhost:${okt.port}/api/v1/logs?after=${c}`],
    ['other scheme', `https://${okt.host}/api/v1/logs?after=${c}`],
    ['userinfo', `http://${c}:x@${okt.host}/api/v1/logs`],
    ['userinfo to another host', `http://${okt.host}@${evil.host}/api/v1/logs?after=${c}`],
    ['backslash', `/\\${evil.host}/api/v1/logs?after=${c}`],
    ['encoded', `/%2F${evil.host}/api/v1/logs?after=${c}`],
    ['encoded dot segments', `/api/v1/%2e%2e/users?after=${c}`],
    ['other path', `/api/v1/users?after=${c}`],
  ];
}

describe('a hostile Okta', () => {
  it('follows well-formed next links on its own origin', async () => {
    const before = okta.requests.length;
    await h.app.providers.pollNow('okta');
    expect(okta.requests.length).toBeGreaterThan(before);
    expect(okta.requests.at(-1)?.url.searchParams.get('after')).toMatch(/^ev-/);
    expect(storedCursor()).toMatch(/^\/api\/v1\/logs\?after=ev-\d+$/);
  });

  it('never follows a crafted next link: refused, counted offsite_link, credentials stay home', async () => {
    const c = canary('link');
    linkCanaries.push(c);
    for (const [what, link] of crafted(c)) {
      next = () => link;
      const before = await errors('offsite_link');
      const served = okta.requests.length;
      await h.app.providers.pollNow('okta');
      expect(okta.requests.length, what).toBe(served + 1); // the page itself was read
      expect(await errors('offsite_link'), what).toBe(before + 1);
      expect(attacker.requests, what).toEqual([]);
      // The committed page moved the cursor by time, on our own URL.
      expect(storedCursor(), what).toMatch(/^\/api\/v1\/logs\?since=/);
    }
    next = () => `${okta.base}/api/v1/logs?after=ev-${seq}`;
  });

  it('never follows a redirect (the SSWS token would go with it)', async () => {
    const before = await errors('redirect');
    okta.injected.push({ status: 302, headers: { location: `${attacker.base}/api/v1/logs` } });
    await h.app.providers.pollNow('okta');
    expect(await errors('redirect')).toBe(before + 1);
    expect(attacker.requests).toEqual([]);
  });

  it('validates the stored cursor when it is loaded: a tampered row is refused and counted', async () => {
    for (const [what, value] of crafted(canary('cursor'))) {
      writeCursor(value);
      const before = await errors('offsite_cursor');
      const served = okta.requests.length;
      await h.app.providers.pollNow('okta');
      expect(await errors('offsite_cursor'), what).toBe(before + 1);
      expect(attacker.requests, what).toEqual([]);
      // The run went on from the configured look-back, on the configured origin.
      const first = okta.requests[served];
      expect(first?.url.searchParams.get('since'), what).not.toBeNull();
    }
  });

  it('keeps none of the crafted URLs in the ledger, logs, metrics or exports', async () => {
    const control = canary('ctl');
    await recordControl(base, control);
    expect(linkCanaries).toHaveLength(1);
    // Not vacuous: the crafted links were served to the poller and refused.
    expect(await errors('offsite_link')).toBeGreaterThanOrEqual(11);
    await expectNoLeaks(
      { app: h.app, dbPath: h.dbPath, logs: () => h.logs(), base },
      linkCanaries,
      control,
    );
  });
});

describe('the Auth0 and Keycloak pollers', () => {
  const A0 = 'auth0-api-token-0123456789abcdef';
  const KC = 'keycloak-api-token-0123456789abc';
  let api: FakeApi;
  let p: ProviderApp;
  beforeAll(async () => {
    api = await startFakeApi((url, authorization): FakeReply => {
      if (url.pathname === '/api/v2/logs' && authorization === `Bearer ${A0}`)
        return { status: 200, body: [] };
      if (url.pathname.startsWith('/admin/realms/acme/') && authorization === `Bearer ${KC}`)
        return { status: 200, body: [] };
      return { status: 401 };
    });
    p = startProviderApp({
      redisUrl: redis.url,
      providers: `
  auth0:
    poll:
      baseUrl: ${api.base}
      intervalSeconds: 3600
      auth: { apiToken: ${A0} }
  keycloak:
    poll:
      baseUrl: ${api.base}
      intervalSeconds: 3600
      realm: acme
      adminEvents: false
      auth: { apiToken: ${KC} }
`,
    });
    // The start-up runs (one request each) are over before a test counts anything.
    await p.app.whenReady();
    await waitFor(() => api.requests.length >= 2, 10_000, 'start-up poll runs');
    await p.app.providers.pollNow('auth0');
    await p.app.providers.pollNow('keycloak');
  });
  afterAll(async () => {
    await p?.stop();
    await api?.close();
  });
  const count = (provider: string, reason: string) =>
    p.metric('tokenwatch_provider_poll_errors_total', { provider, reason });

  it('refuse tampered cursors when loaded, count them, and never put them into a request', async () => {
    const c = canary('cur');
    const db = new Database(p.dbPath);
    db.pragma('busy_timeout = 5000');
    const put = db.prepare(
      `INSERT INTO provider_cursors (name, cursor, updated_at) VALUES (?, ?, 0)
       ON CONFLICT(name) DO UPDATE SET cursor = excluded.cursor`,
    );
    put.run('auth0', `x&take=1000&from=${c}/../..`);
    put.run('keycloak:events', `9999999999999999&first=${c}`);
    db.close();
    const served = api.requests.length;
    await p.app.providers.pollNow('auth0');
    await p.app.providers.pollNow('keycloak');
    expect(await count('auth0', 'offsite_cursor')).toBe(1);
    expect(await count('keycloak', 'offsite_cursor')).toBe(1);
    const sent = api.requests.slice(served);
    expect(sent.map((r) => r.url.pathname).sort()).toEqual([
      '/admin/realms/acme/events',
      '/api/v2/logs',
    ]);
    for (const r of sent) expect(r.url.href).not.toContain(c);
    // Auth0 read from the oldest log the API keeps (no from), Keycloak from its look-back.
    expect(
      sent.find((r) => r.url.pathname === '/api/v2/logs')?.url.searchParams.get('from'),
    ).toBeNull();
  });

  it.each([
    ['auth0', '/api/v2/logs'],
    ['keycloak', '/admin/realms/acme/events'],
  ] as const)(
    '%s: never follow a redirect (the Bearer token would go with it)',
    async (provider, path) => {
      const before = await count(provider, 'redirect');
      const served = api.requests.length;
      api.injected.push({ status: 302, headers: { location: `${attacker.base}${path}` } });
      await p.app.providers.pollNow(provider);
      // Not vacuous: the API answered this poller's request with the redirect.
      expect(api.requests[served]).toMatchObject({
        status: 302,
        url: expect.objectContaining({ pathname: path }),
      });
      expect(await count(provider, 'redirect')).toBe(before + 1);
      expect(attacker.requests).toEqual([]);
    },
  );
});

describe('an issuer whose discovery document names another origin', () => {
  it('a discovered token endpoint elsewhere: refused, counted offsite_url, the client secret stays home', async () => {
    const SECRET = 'client-secret-0123456789abcdef';
    const idp = await startOidcIssuer({ clients: { tokenwatch: SECRET } });
    const api = await startFakeApi(
      auth0Logs(
        () => [],
        (a) => idp.issuedTokens.some((t) => a === `Bearer ${t.accessToken}`),
      ),
    );
    const idpHost = new URL(idp.issuer).host;
    const evilHost = new URL(attacker.base).host;
    const forms: [string, string][] = [
      ['other port', `${attacker.base}/token`],
      ['userinfo to another host', `http://${idpHost}@${evilHost}/token`],
      ['protocol-relative path', `${idp.issuer}//${evilHost}/token`],
    ];
    idp.metadata.token_endpoint = forms[0]![1];
    const p = startProviderApp({
      redisUrl: redis.url,
      providers: `
  auth0:
    poll:
      baseUrl: ${api.base}
      intervalSeconds: 3600
      auth:
        clientCredentials: { issuer: ${idp.issuer}, clientId: tokenwatch, clientSecret: ${SECRET} }
`,
    });
    const offsite = () =>
      p.metric('tokenwatch_provider_poll_errors_total', {
        provider: 'auth0',
        reason: 'offsite_url',
      });
    try {
      // The start-up run meets the first hostile document too; count from after it.
      await p.app.whenReady();
      await waitFor(() => /provider poll run (failed|done)/.test(p.logs()), 10_000, 'start-up run');
      for (const [what, endpoint] of forms) {
        idp.metadata.token_endpoint = endpoint;
        const before = await offsite();
        await p.app.providers.pollNow('auth0');
        expect(attacker.requests, what).toEqual([]);
        expect(await offsite(), what).toBe(before + 1);
      }
      expect(idp.issuedTokens).toEqual([]);
      expect(api.requests).toEqual([]);
      // Control: the genuine endpoint is rediscovered after a refusal, and its token is used.
      delete idp.metadata.token_endpoint;
      await p.app.providers.pollNow('auth0');
      expect(idp.issuedTokens).toHaveLength(1);
      expect(api.requests.map((r) => r.status)).toEqual([200]);
    } finally {
      await p.stop();
      await api.close();
      await idp.close();
    }
  });

  it.each([
    ['names another origin', (_idp: OidcIssuer, evil: string) => evil],
    [
      'redirects to another origin',
      (idp: OidcIssuer, evil: string) => {
        idp.redirects['/moved/jwks'] = evil;
        return `${idp.issuer}/moved/jwks`;
      },
    ],
  ])(
    'a discovered jwks_uri that %s: tokens signed with its keys are refused, nothing fetched',
    async (_, hostile) => {
      const AUD = 'https://tokenwatch.example.com/ssf';
      const CLIENT_ID = 'tokenwatch-rp';
      const idp = await startOidcIssuer();
      // The attacker's JWKS holds the attacker's key: were it fetched, its tokens would verify.
      const evil = await generateKeyPair('ES256');
      const kid = 'evil-key';
      const jwk = { ...(await exportJWK(evil.publicKey)), kid, alg: 'ES256', use: 'sig' };
      const jwks = await startFakeApi(() => ({ status: 200, body: { keys: [jwk] } }));
      idp.metadata.jwks_uri = hostile(idp, `${jwks.base}/jwks`);
      const p = startProviderApp({
        redisUrl: redis.url,
        providers: `
  ssf:
    issuer: ${idp.issuer}
    audience: ${AUD}
  oidc:
    issuer: ${idp.issuer}
    clientId: ${CLIENT_ID}
`,
      });
      try {
        await p.app.whenReady();
        const at = await p.app.listen();
        const set = await idp.signSet(
          {
            aud: AUD,
            sub_id: { format: 'opaque', id: 'victim' },
            events: { [CAEP_REVOKED]: { event_timestamp: Math.floor(Date.now() / 1000) } },
          },
          { kid },
          { privateKey: evil.privateKey },
        );
        const logout = await idp.signLogoutToken(
          { aud: CLIENT_ID, sid: 'victim-session' },
          { kid },
          { privateKey: evil.privateKey },
        );
        const ssf = await fetch(`${at}/v1/providers/ssf`, {
          method: 'POST',
          headers: { 'content-type': 'application/secevent+jwt' },
          body: set,
        });
        const lo = await fetch(`${at}/v1/providers/oidc/backchannel-logout`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `logout_token=${logout}`,
        });
        // Ours, not the sender's fault: 503 (retry), counted as unavailable.
        expect([ssf.status, lo.status]).toEqual([503, 503]);
        for (const provider of ['ssf', 'oidc'])
          expect(
            await p.metric('tokenwatch_webhook_rejections_total', {
              provider,
              reason: 'unavailable',
            }),
            provider,
          ).toBe(1);
        expect(jwks.requests).toEqual([]);
        expect(providerEventIds(p.app)).toEqual([]);
      } finally {
        await p.stop();
        await jwks.close();
        await idp.close();
      }
    },
  );
});
