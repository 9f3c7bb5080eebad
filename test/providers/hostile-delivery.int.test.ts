import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { waitFor } from '../helpers/app-harness.js';
import {
  type ProviderApp,
  databaseBytes,
  flushed,
  startProviderApp,
} from '../helpers/provider-app.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';

/**
 * Hostile and failing deliveries against a real app: each gets its status and typed body, a
 * metric and a `provider.rejected` record holding no part of the body; the process stays up and
 * ready; a ledger that cannot write answers 503 so the provider retries.
 */

const OKTA_SECRET = 'okta-shared-secret-0123456789';
const AUTH0_TOKEN = 'auth0-stream-token-0123456789';
/** Appears in every hostile body; must never reach the database file. */
const CANARY = 'sk_live_canary_7f3a9c2e5b1d4e8a';

let redis: RedisServer;
let h: ProviderApp;

beforeAll(async () => {
  redis = await startRedis();
  h = startProviderApp({
    redisUrl: redis.url,
    providers: `
  okta:
    secret: ${OKTA_SECRET}
  auth0:
    token: ${AUTH0_TOKEN}
`,
  });
  await h.app.whenReady();
});

afterAll(async () => {
  await h?.stop();
  await redis?.stop();
});

function auth0(body: string, contentType = 'application/json') {
  return h.app.http.inject({
    method: 'POST',
    url: '/v1/providers/auth0/logs',
    headers: { 'content-type': contentType, authorization: `Bearer ${AUTH0_TOKEN}` },
    payload: body,
  });
}

function okta(body: string) {
  return h.app.http.inject({
    method: 'POST',
    url: '/v1/providers/okta/hook',
    headers: { 'content-type': 'application/json', authorization: OKTA_SECRET },
    payload: body,
  });
}

/** `n` minimal Auth0 log elements (ids unique per `tag`). */
function auth0Batch(n: number, tag: string): string {
  return JSON.stringify(
    Array.from({ length: n }, (_, i) => ({
      log_id: `${tag}-${i}`,
      type: 's',
      date: '2024-05-01T12:00:00Z',
      user_id: `auth0|${tag}`,
    })),
  );
}

const rejections = (provider: string, reason: string) =>
  h.metric('tokenwatch_webhook_rejections_total', { provider, reason });

describe('hostile deliveries', () => {
  it('malformed JSON: 400 ERR_WEBHOOK_MALFORMED, counted and recorded without the body', async () => {
    const before = await rejections('okta', 'malformed');
    const body = `{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"${CANARY}"`;
    const res = await okta(body);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('ERR_WEBHOOK_MALFORMED');
    expect(await rejections('okta', 'malformed')).toBe(before + 1);
    await flushed(h.app);
    const rec = h.records('provider.rejected').at(-1);
    expect(rec?.attrs).toMatchObject({
      provider: 'okta',
      reason: 'malformed',
      code: 'ERR_WEBHOOK_MALFORMED',
      bodyLength: Buffer.byteLength(body),
      bodyFingerprint: expect.stringMatching(/^hmac-sha256:[^:]+:[0-9a-f]{64}$/),
      remoteAddress: '127.0.0.1',
    });
  });

  it('accepts 10 000 events in one delivery and refuses 10 001 with 413', async () => {
    const ok = await auth0(auth0Batch(10_000, 'big'));
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ recorded: 10_000, duplicates: 0 });
    expect(
      h.records('provider.session_started').filter((r) => r.attrs.subject === 'auth0|big'),
    ).toHaveLength(10_000);

    const before = await rejections('auth0', 'too_large');
    const tooMany = await auth0(auth0Batch(10_001, 'bigger'));
    expect(tooMany.statusCode).toBe(413);
    expect(tooMany.json().error.code).toBe('ERR_WEBHOOK_TOO_LARGE');
    const lines = auth0Batch(10_001, 'lines').slice(1, -1).replace(/\},\{/g, '}\n{');
    const tooManyLines = await auth0(lines, 'application/x-ndjson');
    expect(tooManyLines.statusCode).toBe(413);
    expect(await rejections('auth0', 'too_large')).toBe(before + 2);
    expect(
      h.records('provider.session_started').filter((r) => r.attrs.subject === 'auth0|bigger'),
    ).toHaveLength(0);
  });

  it('deep nesting (100 000 levels) is refused with 400 without recursion', async () => {
    const deep = `${'['.repeat(100_000)}"${CANARY}"${']'.repeat(100_000)}`;
    for (const res of [await auth0(deep), await okta(deep)]) {
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('ERR_WEBHOOK_MALFORMED');
    }
    const deepObject = `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`;
    expect((await okta(deepObject)).statusCode).toBe(400);
  });

  it('a body over the limit gets 413 before it is read', async () => {
    const before = await rejections('okta', 'too_large');
    const big = `{"eventType":"com.okta.event_hook","pad":"${CANARY}${'x'.repeat(1024 * 1024)}"}`;
    const res = await okta(big);
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('ERR_WEBHOOK_TOO_LARGE');
    expect(await rejections('okta', 'too_large')).toBe(before + 1);
    await flushed(h.app);
    expect(h.records('provider.rejected').at(-1)?.attrs).toMatchObject({
      reason: 'too_large',
      bodyFingerprint: null,
      bodyLength: Buffer.byteLength(big),
    });
  });

  it('unknown event types are accepted as `other` and counted', async () => {
    const labels = { provider: 'okta', type: 'other', outcome: 'success' };
    const before = await h.metric('tokenwatch_provider_events_total', labels);
    const res = await okta(
      JSON.stringify({
        eventType: 'com.okta.event_hook',
        data: {
          events: [
            {
              uuid: 'u-unknown-1',
              published: '2024-05-01T12:00:00Z',
              eventType: 'some.brand.new.event',
              outcome: { result: 'SUCCESS' },
            },
          ],
        },
      }),
    );
    expect(res.statusCode).toBe(200);
    expect(h.records('provider.other').map((r) => r.attrs.vendorType)).toContain(
      'some.brand.new.event',
    );
    expect(await h.metric('tokenwatch_provider_events_total', labels)).toBe(before + 1);
  });

  it('leaves no part of any hostile body in the database; the process stays ready', async () => {
    // Self-contained (its own hostile deliveries), so it means the same run alone or after the
    // others; the positive control proves the byte scan sees committed records (WAL included).
    const before = h.records('provider.rejected').length;
    const malformed = `{"eventType":"com.okta.event_hook","data":{"events":[{"uuid":"${CANARY}"`;
    expect((await okta(malformed)).statusCode).toBe(400);
    expect((await auth0(`${'['.repeat(10_000)}"${CANARY}"${']'.repeat(10_000)}`)).statusCode).toBe(
      400,
    );
    const big = `{"eventType":"com.okta.event_hook","pad":"${CANARY}${'x'.repeat(1024 * 1024)}"}`;
    expect((await okta(big)).statusCode).toBe(413);
    const control = 'auth0|control-4d2b8f1e9a6c';
    const accepted = await auth0(
      JSON.stringify([
        { log_id: 'control-1', type: 's', date: '2024-05-01T12:00:00Z', user_id: control },
      ]),
    );
    expect(accepted.statusCode).toBe(200);
    await flushed(h.app);

    expect(h.records('provider.rejected')).toHaveLength(before + 3);
    const bytes = databaseBytes(h.dbPath);
    expect(bytes.includes(control)).toBe(true);
    const canary = Buffer.from(CANARY);
    for (const form of [CANARY, canary.toString('hex'), canary.toString('base64')]) {
      expect(bytes.includes(form), form).toBe(false);
    }
    const ready = await h.app.http.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
  });
});

describe('audit ledger that cannot write', () => {
  it('answers 503 ERR_AUDIT_DEGRADED (the provider retries); the retry then records once', async () => {
    const db = h.app.ledger.db;
    const pages = db.pragma('page_count', { simple: true }) as number;
    h.app.ledger.pragma(`max_page_count = ${pages}`);
    const body = auth0Batch(300, 'degraded');
    const degradedBefore = await rejections('auth0', 'degraded');
    let res;
    try {
      res = await auth0(body);
    } finally {
      h.app.ledger.pragma('max_page_count = 4294967294');
    }
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('ERR_AUDIT_DEGRADED');
    expect(await rejections('auth0', 'degraded')).toBe(degradedBefore + 1);

    await waitFor(() => !h.app.ledger.degraded, 10_000, 'ledger recovery');
    const retry = await auth0(body);
    expect(retry.statusCode).toBe(200);
    const recorded = h
      .records('provider.session_started')
      .filter((r) => r.attrs.subject === 'auth0|degraded');
    expect(recorded).toHaveLength(300);
    expect(new Set(recorded.map((r) => r.attrs.eventId)).size).toBe(300);
    expect(h.records('audit.degraded')).toHaveLength(1);
  });
});
