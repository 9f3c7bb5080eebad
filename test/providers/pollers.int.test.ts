import { rmSync } from 'node:fs';

import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  type FakeApi,
  auth0Logs,
  keycloakEvents,
  oktaLogs,
  rateLimited,
  startFakeApi,
} from '../helpers/fake-log-api.js';
import { type OidcIssuer, startOidcIssuer } from '../helpers/oidc-issuer.js';
import { type ProviderApp, providerEventIds, startProviderApp } from '../helpers/provider-app.js';
import { fixtureJson, fixtureText } from '../helpers/provider-fixtures.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';

/**
 * Catch-up pollers against loopback fakes of the Okta, Auth0 and Keycloak log APIs: pagination,
 * rate limits, cursors persisted in SQLite after commit, and exact resumption after a restart.
 */

let redis: RedisServer;
let issuer: OidcIssuer;

beforeAll(async () => {
  [redis, issuer] = await Promise.all([startRedis(), startOidcIssuer()]);
});

afterAll(async () => {
  await issuer?.close();
  await redis?.stop();
});

function cursor(dbPath: string, name: string): string | undefined {
  const db = new Database(dbPath, { readonly: true });
  try {
    const row = db.prepare('SELECT cursor FROM provider_cursors WHERE name = ?').get(name) as
      { cursor: string } | undefined;
    return row?.cursor;
  } finally {
    db.close();
  }
}

/** Each (provider, id) exactly once, and exactly `ids`. */
function expectRecordedOnce(h: ProviderApp, provider: string, ids: string[]): void {
  const got = providerEventIds(h.app)
    .filter(([p]) => p === provider)
    .map(([, id]) => id);
  expect(got.length).toBe(new Set(got).size);
  expect(new Set(got)).toEqual(new Set(ids));
}

const asRecords = (v: unknown) => v as Record<string, unknown>[];

describe('Okta System Log poller', () => {
  const TOKEN = 'okta-ssws-api-token-0123456789';
  const SECRET = 'okta-shared-secret-0123456789';
  const base = Date.now() - 30 * 60_000;
  // System Log events plus the Event Hook's, published over the last half hour, oldest first.
  const events: Record<string, unknown>[] = [
    ...asRecords(fixtureJson('okta', 'system-log.json')),
    ...asRecords(
      (fixtureJson('okta', 'event-hook.json') as { data: { events: unknown } }).data.events,
    ),
  ].map((e, i) => ({ ...e, published: new Date(base + i * 1000).toISOString() }));
  let api: FakeApi;
  let h: ProviderApp | undefined;

  beforeAll(async () => {
    api = await startFakeApi(oktaLogs(() => events, TOKEN));
  });
  afterAll(async () => {
    await h?.stop();
    await api?.close();
  });

  const config = () => `
  okta:
    secret: ${SECRET}
    poll:
      baseUrl: ${api.base}
      intervalSeconds: 3600
      pageSize: 4
      auth: { apiToken: ${TOKEN} }
`;

  it('follows rel=next across pages, honours a 429 reset, persists the cursor, dedups push + poll', async () => {
    const limit = rateLimited();
    h = startProviderApp({ redisUrl: redis.url, providers: config() });
    // The start-up run is scheduled, not yet sent: its first request gets the 429.
    api.injected.push(limit);
    await h.app.providers.pollNow('okta');

    const ids = events.map((e) => String(e.uuid));
    expectRecordedOnce(h, 'okta', ids);
    const pages = api.requests.filter((r) => r.status === 200);
    expect(pages.length).toBeGreaterThanOrEqual(Math.ceil(events.length / 4));
    expect(pages.some((r) => r.url.searchParams.has('after'))).toBe(true);
    expect(pages[0]?.url.searchParams.get('since')).not.toBeNull();
    const i429 = api.requests.findIndex((r) => r.status === 429);
    expect(i429).toBeGreaterThanOrEqual(0);
    // The retry waited for the announced reset.
    expect(api.requests[i429 + 1]!.at).toBeGreaterThanOrEqual(limit.resetMs);
    const stored = cursor(h.dbPath, 'okta');
    expect(stored).toContain(`after=${events.at(-1)!.uuid as string}`);

    // The Event Hook delivers events the poller already recorded: acknowledged, not re-recorded.
    const push = await h.app.http.inject({
      method: 'POST',
      url: '/v1/providers/okta/hook',
      headers: { 'content-type': 'application/json', authorization: SECRET },
      payload: fixtureText('okta', 'event-hook.json'),
    });
    expect(push.statusCode).toBe(200);
    expect(push.json()).toMatchObject({ recorded: 0, duplicates: 7 });
    expectRecordedOnce(h, 'okta', ids);
    expect(
      h
        .records('provider.*')
        .filter((r) => r.attrs.provider === 'okta')
        .every((r) => r.attrs.via === 'poll'),
    ).toBe(true);
  });

  it('resumes from the stored cursor after a restart and records no duplicates', async () => {
    const dir = h!.dir;
    const before = cursor(h!.dbPath, 'okta');
    await h!.stop(false);
    h = undefined;
    events.push(
      { uuid: 'okta-new-1', published: new Date().toISOString(), eventType: 'user.session.start' },
      {
        uuid: 'okta-new-2',
        published: new Date().toISOString(),
        eventType: 'app.oauth2.as.token.revoke',
      },
    );
    const seen = api.requests.length;
    h = startProviderApp({ redisUrl: redis.url, providers: config(), dir });
    await h.app.providers.pollNow('okta');
    const first = api.requests[seen];
    expect(`${first!.url.pathname}${first!.url.search}`).toBe(before);
    expect(first!.url.searchParams.has('since')).toBe(false);
    expectRecordedOnce(
      h,
      'okta',
      events.map((e) => String(e.uuid)),
    );
    expect(h.records('provider.token_revoked').map((r) => r.attrs.eventId)).toContain('okta-new-2');
    await h.stop();
    h = undefined;
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('Auth0 Management API poller', () => {
  const page = asRecords(fixtureJson('auth0', 'management-api-page.json'));
  const logs: Record<string, unknown>[] = [
    ...page,
    ...Array.from({ length: 230 }, (_, i) => ({
      log_id: `9005${String(i).padStart(6, '0')}`,
      date: new Date(Date.now() - 3_600_000 + i * 1000).toISOString(),
      type: i % 2 ? 'sertft' : 'seacft',
      client_id: 'client-a',
      details: { access_token_jti: `jti-${i}` },
    })),
  ];
  let api: FakeApi;

  beforeAll(async () => {
    const issued = (a: string | undefined) =>
      issuer.issuedTokens.some((t) => a === `Bearer ${t.accessToken}`);
    api = await startFakeApi(auth0Logs(() => logs, issued));
  });
  afterAll(async () => {
    await api?.close();
  });

  it('pages with from/take using a client-credentials token, resumes after restart, counts failures', async () => {
    const providers = `
  auth0:
    poll:
      baseUrl: ${api.base}
      intervalSeconds: 3600
      auth:
        clientCredentials: { issuer: ${issuer.issuer}, clientId: tokenwatch, clientSecret: s3cret }
`;
    api.injected.push(rateLimited('X-RateLimit-Reset'));
    let h = startProviderApp({ redisUrl: redis.url, providers });
    await h.app.providers.pollNow('auth0');
    const ids = logs.map((l) => String(l.log_id));
    expectRecordedOnce(h, 'auth0', ids);
    expect(issuer.issuedTokens.length).toBeGreaterThan(0);
    const froms = api.requests
      .filter((r) => r.status === 200)
      .map((r) => r.url.searchParams.get('from'));
    expect(froms[0]).toBeNull();
    expect(froms.filter((f) => f !== null).length).toBeGreaterThanOrEqual(2);
    expect(cursor(h.dbPath, 'auth0')).toBe(ids.at(-1));

    // A failing run counts an error and leaves the cursor where it was.
    api.injected.push({ status: 500, body: {} });
    await h.app.providers.pollNow('auth0');
    expect(
      await h.metric('tokenwatch_provider_poll_errors_total', {
        provider: 'auth0',
        reason: 'http',
      }),
    ).toBe(1);
    expect(cursor(h.dbPath, 'auth0')).toBe(ids.at(-1));

    const dir = h.dir;
    await h.stop(false);
    logs.push({ log_id: '9009000001', date: new Date().toISOString(), type: 'srrt', details: {} });
    const seen = api.requests.length;
    h = startProviderApp({ redisUrl: redis.url, providers, dir });
    await h.app.providers.pollNow('auth0');
    expect(api.requests[seen]?.url.searchParams.get('from')).toBe(ids.at(-1));
    expectRecordedOnce(h, 'auth0', [...ids, '9009000001']);
    await h.stop();
  });
});

describe('Keycloak admin API poller', () => {
  const TOKEN = 'keycloak-service-account-token-0123';
  const start = Date.now() - 20 * 60_000;
  const user: Record<string, unknown>[] = asRecords(
    fixtureJson('keycloak', 'events-admin-api.json'),
  ).map((e, i) => ({
    ...e,
    time: start + i * 1000,
  }));
  const admin = asRecords(fixtureJson('keycloak', 'admin-events.json')).map((e, i) => ({
    ...e,
    time: start + 500 + i * 1000,
  }));
  let api: FakeApi;

  beforeAll(async () => {
    api = await startFakeApi(
      keycloakEvents('acme', { events: () => user, admin: () => admin }, TOKEN),
    );
  });
  afterAll(async () => {
    await api?.close();
  });

  it('pages newest-first with first/max back to its cursor and resumes after restart', async () => {
    const providers = `
  keycloak:
    poll:
      baseUrl: ${api.base}
      realm: acme
      intervalSeconds: 3600
      pageSize: 4
      auth: { apiToken: ${TOKEN} }
`;
    let h = startProviderApp({ redisUrl: redis.url, providers });
    await h.app.providers.pollNow('keycloak');
    const recorded = () =>
      providerEventIds(h.app)
        .filter(([p]) => p === 'keycloak')
        .map(([, id]) => id);
    expect(recorded()).toHaveLength(user.length + admin.length);
    expect(new Set(recorded()).size).toBe(user.length + admin.length);
    const firsts = api.requests.map((r) => r.url.searchParams.get('first'));
    expect(firsts).toContain('4');
    expect(firsts).toContain('8');
    // Committed oldest first, so the ledger order follows provider time.
    const times = h.app.ledger
      .list({ type: 'provider.*' })
      .filter((r) => r.attrs.provider === 'keycloak' && r.attrs.vendorType !== undefined)
      .map((r) => r.attrs.occurredAt as number);
    expect(times.slice(0, user.length)).toEqual(
      [...times.slice(0, user.length)].sort((a, b) => a - b),
    );
    expect(cursor(h.dbPath, 'keycloak:events')).toBe(String(user.at(-1)!.time));
    expect(cursor(h.dbPath, 'keycloak:admin-events')).toBe(String(admin.at(-1)!.time));

    const dir = h.dir;
    await h.stop(false);
    user.push(
      {
        id: 'kc-new-1',
        time: Date.now(),
        type: 'REVOKE_GRANT',
        realmId: 'acme',
        details: { token_id: 't-1' },
      },
      { id: 'kc-new-2', time: Date.now() + 1, type: 'LOGOUT', realmId: 'acme', sessionId: 's-9' },
    );
    const seen = api.requests.length;
    h = startProviderApp({ redisUrl: redis.url, providers, dir });
    await h.app.providers.pollNow('keycloak');
    const resumed = api.requests.slice(seen).filter((r) => r.url.pathname.endsWith('/events'));
    // Two new events, the cursor's own and an older one fill the first page: no run pages on.
    expect(resumed.length).toBeGreaterThan(0);
    expect(resumed.every((r) => r.url.searchParams.get('first') === '0')).toBe(true);
    expect(recorded()).toHaveLength(user.length + admin.length);
    expect(new Set(recorded()).size).toBe(user.length + admin.length);
    expect(recorded()).toEqual(expect.arrayContaining(['kc-new-1', 'kc-new-2']));
    await h.stop();
  });
});
