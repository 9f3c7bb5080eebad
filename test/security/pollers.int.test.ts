import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type FakeApi, type FakeReply, startFakeApi } from '../helpers/fake-log-api.js';
import { type ProviderApp, startProviderApp } from '../helpers/provider-app.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';
import { canary, expectNoLeaks, recordControl } from './leak-check.js';

/**
 * Adversarial suite, entrance 2: the catch-up pollers against a hostile Okta (issue #17,
 * finding 1). The fake Okta answers real System Log pages whose `Link: rel="next"` targets are
 * crafted to send the next request (with `Authorization: SSWS <token>`) to a second listener,
 * the attacker; it also answers redirects, and the attacker may write the cursor table. The
 * attacker must never receive a request; every refusal is counted by reason.
 */

const TOKEN = 'okta-ssws-api-token-0123456789';

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

describe('tampered Auth0 and Keycloak cursors', () => {
  it('are refused when loaded, counted, and never put into a request', async () => {
    const A0 = 'auth0-api-token-0123456789abcdef';
    const KC = 'keycloak-api-token-0123456789abc';
    const api = await startFakeApi((url, authorization): FakeReply => {
      if (url.pathname === '/api/v2/logs' && authorization === `Bearer ${A0}`)
        return { status: 200, body: [] };
      if (url.pathname.startsWith('/admin/realms/acme/') && authorization === `Bearer ${KC}`)
        return { status: 200, body: [] };
      return { status: 401 };
    });
    const p = startProviderApp({
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
    try {
      await p.app.providers.pollNow('auth0');
      await p.app.providers.pollNow('keycloak');
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
      const count = (provider: string) =>
        p.metric('tokenwatch_provider_poll_errors_total', { provider, reason: 'offsite_cursor' });
      const served = api.requests.length;
      await p.app.providers.pollNow('auth0');
      await p.app.providers.pollNow('keycloak');
      expect(await count('auth0')).toBe(1);
      expect(await count('keycloak')).toBe(1);
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
    } finally {
      await p.stop();
      await api.close();
    }
  });
});
