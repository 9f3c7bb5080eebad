import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import Database from 'better-sqlite3';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTrustedKey } from '../../src/audit/signing-keys.js';
import type { Manifest } from '../../src/compliance/bundle-manifest.js';
import { verifyExport } from '../../src/compliance/verify-export.js';
import { startApp, type Harness } from '../helpers/app-harness.js';
import { startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { tempDir } from './helpers.js';

const sha = (v: string): string => createHash('sha256').update(v).digest('hex');
const AUDITOR = 'auditor-token-0123456789abcdef';
const BOT = 'soc-bot-token-fedcba9876543210';
const SCRAPER = 'prometheus-scrape-token-000111';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

const window = (): string => {
  const now = Date.now();
  return `from=${new Date(now - 3_600_000).toISOString()}&to=${new Date(now + 3_600_000).toISOString()}`;
};

interface Route {
  name: string;
  method: 'GET' | 'POST';
  url: () => string;
  body?: () => Record<string, unknown>;
  ok: number;
}

/** Every admin route (the export file route needs an export id, filled in by the first POST). */
function routes(exportId: () => string): Route[] {
  return [
    { name: 'findings', method: 'GET', url: () => '/v1/findings', ok: 200 },
    { name: 'audit records', method: 'GET', url: () => '/v1/audit/records?limit=5', ok: 200 },
    {
      name: 'report (json)',
      method: 'GET',
      url: () => `/v1/reports/soc2?${window()}&format=json`,
      ok: 200,
    },
    { name: 'report (html)', method: 'GET', url: () => `/v1/reports/soc2?${window()}`, ok: 200 },
    {
      name: 'exports (create)',
      method: 'POST',
      url: () => '/v1/exports',
      body: () => ({
        from: new Date(Date.now() - 3_600_000).toISOString(),
        to: new Date(Date.now() + 3_600_000).toISOString(),
        format: 'jsonl',
      }),
      ok: 201,
    },
    { name: 'exports (list)', method: 'GET', url: () => '/v1/exports', ok: 200 },
    {
      name: 'exports (file)',
      method: 'GET',
      url: () => `/v1/exports/${exportId()}/manifest.json`,
      ok: 200,
    },
  ];
}

async function call(
  h: Harness,
  r: Route,
  headers: Record<string, string> = {},
  remoteAddress = '127.0.0.1',
): Promise<LightMyRequestResponse> {
  return h.app.http.inject({
    method: r.method,
    url: r.url(),
    headers,
    remoteAddress,
    ...(r.body ? { payload: r.body() } : {}),
  });
}

function accessRecords(h: Harness) {
  h.app.ledger.flush();
  return h.app.ledger.list({ type: 'admin.access' });
}

describe('admin API with static bearer tokens', () => {
  let h: Harness;
  let exportId = '';
  beforeAll(async () => {
    h = startApp(redis.url, {
      yaml: `admin:\n  tokens:\n    - name: auditor\n      sha256: ${sha(AUDITOR).toUpperCase()}\n  metrics:\n    username: prom\n    passwordSha256: ${sha('scrape-password')}\n    tokenSha256: [${sha(SCRAPER)}]\n`,
      env: { TOKENWATCH_ADMIN_TOKENS: `soc-bot:${BOT}` },
    });
    await h.app.whenReady();
    const res = await call(h, routes(() => '')[4]!, { authorization: `Bearer ${AUDITOR}` });
    exportId = res.json<{ id: string }>().id;
  });
  afterAll(async () => {
    await h.stop();
  });

  it.each(routes(() => exportId).map((r) => [r.name, r] as const))(
    '%s: 401 without or with a wrong token, served with a right one',
    async (_n, r) => {
      const none = await call(h, r);
      expect(none.statusCode).toBe(401);
      expect(none.headers['www-authenticate']).toBe('Bearer realm="tokenwatch"');
      expect(none.json()).toMatchObject({ error: { code: 'ERR_UNAUTHORIZED' } });

      const wrong = await call(h, r, { authorization: 'Bearer not-the-token-0000000000000' });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.headers['www-authenticate']).toMatch(
        /^Bearer realm="tokenwatch", error="invalid_token"/,
      );

      const basic = await call(h, r, {
        authorization: `Basic ${Buffer.from(`auditor:${AUDITOR}`).toString('base64')}`,
      });
      expect(basic.statusCode).toBe(401);

      // Authenticated clients need not be on loopback.
      const ok = await call(h, r, { authorization: `Bearer ${AUDITOR}` }, '10.9.8.7');
      expect(ok.statusCode, ok.body).toBe(r.ok);
      const viaEnv = await call(h, r, { authorization: `bearer ${BOT}` });
      expect(viaEnv.statusCode, viaEnv.body).toBe(r.ok);
    },
  );

  it('records every access, names the principal, never the token, and counts outcomes', async () => {
    const records = accessRecords(h);
    const allowed = records.filter((x) => x.attrs.outcome === 'allowed');
    expect(new Set(allowed.map((x) => x.attrs.principal))).toEqual(new Set(['auditor', 'soc-bot']));
    const report = allowed.find((x) => x.attrs.route === '/v1/reports/soc2')!;
    expect(report.attrs).toMatchObject({
      method: 'GET',
      authMethod: 'token',
      range: { from: expect.any(String), to: expect.any(String) },
    });
    expect(
      records.some((x) => x.attrs.outcome === 'unauthenticated' && x.attrs.principal === undefined),
    ).toBe(true);
    const exported = allowed.find(
      (x) => x.attrs.route === '/v1/exports' && x.attrs.method === 'POST',
    )!;
    expect(exported.attrs.body).toMatchObject({ format: 'jsonl' });
    h.app.ledger.flush();
    const db = readFileSync(h.dbPath);
    for (const secret of [AUDITOR, BOT]) expect(db.includes(Buffer.from(secret))).toBe(false);

    const metrics = (
      await h.app.http.inject({ url: '/metrics', headers: { authorization: `Bearer ${SCRAPER}` } })
    ).body;
    expect(metrics).toMatch(
      /tokenwatch_admin_requests_total\{route="reports",outcome="allowed"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /tokenwatch_admin_requests_total\{route="exports",outcome="unauthenticated"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /tokenwatch_admin_requests_total\{route="findings",outcome="forbidden"\} 0/,
    );
  });

  it('pages through audit records by type prefix', async () => {
    const auth = { authorization: `Bearer ${AUDITOR}` };
    const first = await h.app.http.inject({
      url: '/v1/audit/records?type=admin.*&limit=2',
      headers: auth,
    });
    const page = first.json<{
      records: { seq: number; type: string }[];
      nextAfterSeq: number | null;
    }>();
    expect(page.records.map((r) => r.type)).toEqual(['admin.access', 'admin.access']);
    expect(page.nextAfterSeq).toBe(page.records[1]!.seq);
    const next = await h.app.http.inject({
      url: `/v1/audit/records?type=admin.*&limit=2&afterSeq=${page.nextAfterSeq}`,
      headers: auth,
    });
    expect(next.json<{ records: { seq: number }[] }>().records[0]!.seq).toBeGreaterThan(
      page.nextAfterSeq!,
    );
    const bad = await h.app.http.inject({ url: '/v1/audit/records?type=x;drop', headers: auth });
    expect(bad.statusCode).toBe(400);
  });

  it('guards /metrics with basic auth or a bearer token when configured', async () => {
    const none = await h.app.http.inject({ url: '/metrics' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe(
      'Basic realm="tokenwatch", charset="UTF-8", Bearer realm="tokenwatch"',
    );
    const wrong = await h.app.http.inject({
      url: '/metrics',
      headers: { authorization: `Basic ${Buffer.from('prom:nope').toString('base64')}` },
    });
    expect(wrong.statusCode).toBe(401);
    const basic = await h.app.http.inject({
      url: '/metrics',
      headers: { authorization: `Basic ${Buffer.from('prom:scrape-password').toString('base64')}` },
    });
    expect(basic.statusCode).toBe(200);
    expect(basic.body).toMatch(
      /tokenwatch_admin_requests_total\{route="metrics",outcome="unauthenticated"\} [1-9]/,
    );
    expect((await h.app.http.inject({ url: '/healthz' })).statusCode).toBe(200); // health stays open
  });

  it('serves the HTML report with its CSP, and an export that verifies after download', async () => {
    const auth = { authorization: `Bearer ${AUDITOR}` };
    const html = await h.app.http.inject({ url: `/v1/reports/soc2?${window()}`, headers: auth });
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(html.headers['content-security-policy']).toBe(
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    );
    expect(html.body).toContain('Token access control report');

    const created = await h.app.http.inject({
      method: 'POST',
      url: '/v1/exports',
      headers: auth,
      payload: {
        from: new Date(Date.now() - 3_600_000).toISOString(),
        to: new Date(Date.now() + 60_000).toISOString(),
        format: 'ocsf',
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    const { id, files, manifest } = created.json<{
      id: string;
      files: string[];
      manifest: Manifest;
    }>();
    expect(manifest.range?.records).toBeGreaterThan(0);
    const dir = join(tempDir('tw-download-'), id);
    mkdirSync(dir);
    for (const f of files) {
      const res = await h.app.http.inject({ url: `/v1/exports/${id}/${f}`, headers: auth });
      expect(res.statusCode).toBe(200);
      writeFileSync(join(dir, f), res.rawPayload);
    }
    const report = verifyExport(dir, [loadTrustedKey(join(h.dir, 'signing.pub'))]);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);

    const traversal = await h.app.http.inject({
      url: `/v1/exports/${id}/..%2F..%2Faudit.db`,
      headers: auth,
    });
    expect(traversal.statusCode).toBe(404);
    const bad = await h.app.http.inject({
      url: '/v1/reports/soc2?from=yesterday&to=now',
      headers: auth,
    });
    expect(bad.statusCode).toBe(400);
  });
});

describe('admin API with OIDC access tokens', () => {
  let h: Harness;
  let issuer: OidcIssuer;
  let other: OidcIssuer;
  const AUD = 'tokenwatch-admin';
  const now = (): number => Math.floor(Date.now() / 1000);
  const jwt = (claims: Record<string, unknown>, by?: OidcIssuer): Promise<string> =>
    (by ?? issuer).signJwt(
      {
        iss: (by ?? issuer).issuer,
        aud: AUD,
        sub: 'auditor@example.com',
        iat: now(),
        exp: now() + 300,
        scope: 'openid tokenwatch:admin',
        ...claims,
      },
      { typ: 'at+jwt' },
    );
  let exportId = '';

  beforeAll(async () => {
    issuer = await startOidcIssuer();
    other = await startOidcIssuer();
    h = startApp(redis.url, {
      yaml: `admin:\n  oidc:\n    issuer: ${issuer.issuer}\n    audience: ${AUD}\n    requiredScope: tokenwatch:admin\n`,
    });
    await h.app.whenReady();
    const res = await call(h, routes(() => '')[4]!, { authorization: `Bearer ${await jwt({})}` });
    expect(res.statusCode, res.body).toBe(201);
    exportId = res.json<{ id: string }>().id;
  });
  afterAll(async () => {
    await h.stop();
    await issuer.close();
    await other.close();
  });

  it.each(routes(() => exportId).map((r) => [r.name, r] as const))(
    '%s: valid token served; expired, wrong issuer, wrong audience 401; missing scope 403',
    async (_n, r) => {
      const ok = await call(h, r, { authorization: `Bearer ${await jwt({})}` }, '192.0.2.10');
      expect(ok.statusCode, ok.body).toBe(r.ok);
      const scp = await call(h, r, {
        authorization: `Bearer ${await jwt({ scope: undefined, scp: ['tokenwatch:admin'] })}`,
      });
      expect(scp.statusCode, scp.body).toBe(r.ok);

      const rejected = {
        expired: await jwt({ iat: now() - 900, exp: now() - 600 }),
        'wrong issuer claim': await jwt({ iss: other.issuer }),
        'signed by another issuer': await jwt({}, other),
        'wrong audience': await jwt({ aud: 'someone-else' }),
        'no exp': await jwt({ exp: undefined }),
      };
      for (const [what, token] of Object.entries(rejected)) {
        const res = await call(h, r, { authorization: `Bearer ${token}` });
        expect(res.statusCode, what).toBe(401);
        expect(res.headers['www-authenticate'], what).toMatch(
          /^Bearer realm="tokenwatch", error="invalid_token"/,
        );
      }
      const forged = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const wrongKey = await new SignJWT({
        iss: issuer.issuer,
        aud: AUD,
        sub: 'x',
        exp: now() + 60,
        scope: 'tokenwatch:admin',
      })
        .setProtectedHeader({ alg: 'ES256', kid: issuer.es256.kid, typ: 'at+jwt' })
        .sign(forged);
      expect((await call(h, r, { authorization: `Bearer ${wrongKey}` })).statusCode).toBe(401);

      const noScope = await call(h, r, {
        authorization: `Bearer ${await jwt({ scope: 'openid profile' })}`,
      });
      expect(noScope.statusCode).toBe(403);
      expect(noScope.headers['www-authenticate']).toBe(
        'Bearer realm="tokenwatch", error="insufficient_scope", scope="tokenwatch:admin"',
      );
      expect(noScope.json()).toMatchObject({ error: { code: 'ERR_FORBIDDEN' } });
    },
  );

  it('names the JWT subject in the access record and counts the refusals', async () => {
    const records = accessRecords(h);
    expect(
      records.some(
        (x) =>
          x.attrs.outcome === 'allowed' &&
          x.attrs.principal === 'auditor@example.com' &&
          x.attrs.authMethod === 'oidc',
      ),
    ).toBe(true);
    expect(records.some((x) => x.attrs.outcome === 'forbidden')).toBe(true);
    const metrics = (await h.app.http.inject({ url: '/metrics' })).body; // no metrics guard here
    expect(metrics).toMatch(
      /tokenwatch_admin_requests_total\{route="audit_records",outcome="forbidden"\} [1-9]/,
    );
  });
});

describe('admin API without an admin section', () => {
  let h: Harness;
  beforeAll(async () => {
    h = startApp(redis.url);
    await h.app.whenReady();
  });
  afterAll(async () => {
    await h.stop();
  });

  it('serves loopback clients only, as before', async () => {
    for (const r of routes(() => 'none').slice(0, 4)) {
      expect((await call(h, r, {}, '127.0.0.1')).statusCode, r.name).toBe(r.ok);
      const remote = await call(h, r, {}, '203.0.113.5');
      expect(remote.statusCode, r.name).toBe(403);
      expect(remote.json()).toMatchObject({ error: { code: 'ERR_FORBIDDEN' } });
    }
    expect(accessRecords(h).filter((x) => x.attrs.principal === 'loopback').length).toBe(4);
  });
});

describe('a flood of refused admin requests', () => {
  /** Added to the wall clock the app reads: a window ends without waiting for it. */
  let skipped = 0;
  /** The app with the auditor token and the given refusal bound per source and window. */
  const startWithRefusals = (perSource: number, windowSeconds: number) =>
    startApp(redis.url, {
      yaml: `admin:\n  tokens:\n    - name: auditor\n      sha256: ${sha(AUDITOR)}\n  refusals:\n    perSource: ${perSource}\n    windowSeconds: ${windowSeconds}\n`,
      now: () => Date.now() + skipped,
    });

  it('records the first per source and window one by one, the rest in one summary, replies unchanged', async () => {
    const h = startWithRefusals(3, 1);
    try {
      await h.app.whenReady();
      const findings = routes(() => '')[0]!;
      const bad = { authorization: 'Bearer not-the-token-0000000000000' };
      for (let i = 0; i < 10; i++) {
        expect((await call(h, findings, bad, '10.0.0.9')).statusCode).toBe(401);
      }
      for (let i = 0; i < 2; i++) {
        expect((await call(h, findings, bad, '10.0.0.10')).statusCode).toBe(401);
      }
      const from = (addr: string) => accessRecords(h).filter((x) => x.attrs.remoteAddress === addr);
      expect(from('10.0.0.9')).toHaveLength(3);
      expect(from('10.0.0.10')).toHaveLength(2);
      const metrics = (await h.app.http.inject({ url: '/metrics' })).body;
      expect(metrics).toMatch(
        /tokenwatch_admin_requests_total\{route="findings",outcome="unauthenticated"\} 12/,
      );
      // The window ends: the next refusal from that source states what was only counted.
      skipped += 1100;
      expect((await call(h, findings, bad, '10.0.0.9')).statusCode).toBe(401);
      h.app.ledger.flush();
      const summaries = h.app.ledger.list({ type: 'admin.access_suppressed' });
      expect(summaries).toHaveLength(1);
      expect(summaries[0]!.attrs).toMatchObject({
        source: '10.0.0.9',
        recorded: 3,
        suppressed: 7,
        outcomes: { unauthenticated: 7 },
      });
      expect(from('10.0.0.9')).toHaveLength(4);
      // An allowed request is never held back.
      const ok = await call(h, findings, { authorization: `Bearer ${AUDITOR}` }, '10.0.0.9');
      expect(ok.statusCode).toBe(200);
      // The report counts every refusal, recorded one by one or in a summary.
      const report = await call(h, routes(() => '')[2]!, { authorization: `Bearer ${AUDITOR}` });
      expect(report.json<{ adminAccess: { denied: number } }>().adminAccess.denied).toBe(13);
    } finally {
      await h.stop();
    }
  });

  it('states what is still only counted when tokenwatch stops', async () => {
    const h = startWithRefusals(1, 3600);
    try {
      await h.app.whenReady();
      const findings = routes(() => '')[0]!;
      for (let i = 0; i < 4; i++) await call(h, findings, {}, '10.0.0.11');
      await h.app.stop('test');
      const db = new Database(h.dbPath, { readonly: true });
      const rows = db
        .prepare("SELECT attrs FROM records WHERE type = 'admin.access_suppressed'")
        .all() as { attrs: string }[];
      db.close();
      expect(rows.map((r) => JSON.parse(r.attrs) as unknown)).toEqual([
        expect.objectContaining({ source: '10.0.0.11', recorded: 1, suppressed: 3 }),
      ]);
    } finally {
      await h.stop();
    }
  });
});
