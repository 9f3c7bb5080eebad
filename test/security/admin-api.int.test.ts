import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { AuditRecord } from '../../src/audit/record.js';
import { type OidcIssuer, startOidcIssuer } from '../helpers/oidc-issuer.js';
import { type ProviderApp, flushed, startProviderApp } from '../helpers/provider-app.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';
import { canary, expectNoLeaks, recordControl } from './leak-check.js';
import { rawExchange } from './raw-socket.js';

/**
 * Adversarial suite, entrance 3: the admin API of a real app listening on a loopback port
 * (issue #17 findings 3, 4 and 7). Attackers: a caller putting the admin token in the query
 * string, refused callers with canaries in query, headers and bodies, a POST whose body never
 * comes, and tokens of other JWT types (logout, SET) signed by the admin issuer. Last, the
 * connection limits every route shares: an idle keep-alive connection and a silent one are
 * closed after `server.timeouts.keepAliveSeconds` / `idleSeconds`.
 */

const ADMIN = 'admin-token-for-the-auditor-0123456789';
const AUD = 'tokenwatch-admin';
const sha = (v: string) => createHash('sha256').update(v).digest('hex');
const nowSec = () => Math.floor(Date.now() / 1000);

let redis: RedisServer;
let issuer: OidcIssuer;
let h: ProviderApp;
let base: string;
const auth = { authorization: `Bearer ${ADMIN}` };

beforeAll(async () => {
  [redis, issuer] = await Promise.all([startRedis(), startOidcIssuer()]);
  h = startProviderApp({
    redisUrl: redis.url,
    server: ['timeouts:', '  requestSeconds: 2', '  headersSeconds: 2'],
    yaml: `
admin:
  tokens:
    - name: auditor
      sha256: ${sha(ADMIN)}
  oidc:
    issuer: ${issuer.issuer}
    audience: ${AUD}
`,
  });
  await h.app.whenReady();
  base = await h.app.listen();
});

afterAll(async () => {
  await h?.stop();
  await issuer?.close();
  await redis?.stop();
});

const access = (): AuditRecord[] => h.app.ledger.list({ type: 'admin.access' });

describe('the admin API under attack', () => {
  it('refuses the admin token in the query string with 400 and records only its fingerprint', async () => {
    for (const url of [
      `/v1/findings?access_token=${ADMIN}`,
      `/v1/audit/records?limit=5&q=${ADMIN}`,
      `/v1/findings?${ADMIN}`,
    ]) {
      const res = await fetch(`${base}${url}`, { headers: auth });
      expect(res.status, url).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        'ERR_BAD_REQUEST',
      );
    }
    await flushed(h.app);
    const refused = access().filter((r) => r.attrs.outcome === 'bad_request');
    expect(refused).toHaveLength(3);
    const fp = h.app.fingerprinter.of(ADMIN);
    expect(refused[0]!.attrs).toMatchObject({
      route: '/v1/findings',
      params: [{ name: 'access_token', length: ADMIN.length, fingerprint: fp }],
    });
    expect(
      await h.metric('tokenwatch_admin_requests_total', {
        route: 'findings',
        outcome: 'bad_request',
      }),
    ).toBe(2);
  });

  it('refuses a POST without credentials before its body is read', async () => {
    const url = new URL(base);
    const response = await new Promise<string>((resolve) => {
      let text = '';
      const s = connect(Number(url.port), url.hostname, () =>
        s.write(
          'POST /v1/exports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
            'Content-Length: 50000\r\nConnection: close\r\n\r\n',
        ),
      );
      s.setEncoding('latin1');
      s.on('data', (d: string) => (text += d));
      s.on('error', () => undefined);
      s.on('close', () => resolve(text));
    });
    expect(response).toMatch(/^HTTP\/1\.1 401 /);
  });

  it('refuses logout and SET tokens, and untyped JWTs, signed by the trusted admin issuer', async () => {
    const claims = {
      iss: issuer.issuer,
      aud: AUD,
      sub: 'auditor@example.com',
      iat: nowSec(),
      exp: nowSec() + 300,
      jti: canary('jti'),
      scope: 'tokenwatch:admin',
    };
    const call = async (token: string) =>
      (await fetch(`${base}/v1/findings`, { headers: { authorization: `Bearer ${token}` } }))
        .status;
    expect(await call(await issuer.signJwt(claims, { typ: 'at+jwt' }))).toBe(200);
    expect(await call(await issuer.signJwt(claims, { typ: 'application/at+jwt' }))).toBe(200);
    // Issue #17: a back-channel logout token with matching claims was accepted.
    expect(await call(await issuer.signLogoutToken({ ...claims, sid: 's1' }))).toBe(401);
    expect(await call(await issuer.signJwt(claims, { typ: 'logout+jwt' }))).toBe(401);
    expect(await call(await issuer.signSet({ ...claims, events: { x: {} } }))).toBe(401);
    expect(await call(await issuer.signJwt(claims))).toBe(401); // no typ
    expect(await call(await issuer.signJwt(claims, { typ: 'JWT' }))).toBe(401); // not allow-listed
    // Even typed at+jwt, a token carrying SET/logout claims is not an access token.
    expect(
      await call(await issuer.signJwt({ ...claims, events: { x: {} } }, { typ: 'at+jwt' })),
    ).toBe(401);
  });

  it('keeps no value a refused caller sent: query, header and body canaries found nowhere', async () => {
    const c = {
      query: canary('q'),
      header: canary('h'),
      bearer: canary('b'),
      password: canary('pw'),
      name: canary('n'),
      control: canary('ctl'),
    };
    await flushed(h.app); // earlier tests' refusals are queued, not yet committed
    const before = access().length;
    const r1 = await fetch(`${base}/v1/audit/records?type=${c.query}&${c.name}=x`, {
      headers: { authorization: `Bearer ${c.bearer}`, 'x-api-key': c.header },
    });
    expect(r1.status).toBe(401);
    const r2 = await fetch(`${base}/v1/exports?from=${c.query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${c.bearer}` },
      body: JSON.stringify({ password: c.password, from: c.password }),
    });
    expect(r2.status).toBe(401);
    const r3 = await fetch(`${base}/v1/findings`, {
      headers: { authorization: `Basic ${Buffer.from(`admin:${c.password}`).toString('base64')}` },
    });
    expect(r3.status).toBe(401);
    // An allowed request with a stray member: kept as a fingerprinted name and a length.
    const r4 = await fetch(`${base}/v1/findings?${c.name}=${c.query}`, { headers: auth });
    expect(r4.status).toBe(200);
    await flushed(h.app);
    const added = access().slice(before);
    expect(added.map((r) => r.attrs.outcome)).toEqual([
      'unauthenticated',
      'unauthenticated',
      'unauthenticated',
      'allowed',
    ]);
    expect(added[0]!.attrs).toMatchObject({
      route: '/v1/audit/records',
      params: [
        { name: 'type', length: c.query.length, fingerprint: h.app.fingerprinter.of(c.query) },
        { name: h.app.fingerprinter.of(c.name), length: 1 },
      ],
      credentials: { authorization: h.app.fingerprinter.of(`Bearer ${c.bearer}`) },
    });
    expect(added[0]!.attrs.query).toBeUndefined();
    expect(added[3]!.attrs.query).toEqual({
      [h.app.fingerprinter.of(c.name)]: `length:${c.query.length}`,
    });

    await recordControl(base, c.control, auth);
    const { control, ...attack } = c;
    await expectNoLeaks(
      { app: h.app, dbPath: h.dbPath, logs: () => h.logs(), base, adminHeaders: auth },
      Object.values(attack),
      control,
    );
  });

  it('keeps no near-miss credential an authenticated caller puts in a route parameter', async () => {
    await flushed(h.app);
    const before = access().length;
    const near = [`Bearer ${ADMIN}`, ` ${ADMIN}`, `${ADMIN}Z`];
    for (const v of near) {
      const res = await fetch(`${base}/v1/audit/records?type=${encodeURIComponent(v)}`, {
        headers: auth,
      });
      expect(res.status, v).toBe(400);
    }
    const bad = await fetch(`${base}/v1/findings?rule=${encodeURIComponent(`${ADMIN}Z`)}&limit=x`, {
      headers: auth,
    });
    expect(bad.status).toBe(400);
    // A value of the parameter's shape is evidence of what was asked: kept verbatim.
    const ok = await fetch(`${base}/v1/audit/records?type=token.*&limit=5`, { headers: auth });
    expect(ok.status).toBe(200);
    await flushed(h.app);
    const added = access().slice(before);
    expect(added).toHaveLength(near.length + 2);
    const text = JSON.stringify(added);
    expect(text).not.toContain(ADMIN);
    expect(added[0]!.attrs.query).toEqual({
      type: `invalid length:${near[0]!.length} ${h.app.fingerprinter.of(near[0]!)}`,
    });
    expect(added.at(-1)!.attrs.query).toEqual({ type: 'token.*', limit: '5' });
  });
});

describe('idle connections are closed (server.timeouts)', () => {
  /** An app with one short limit; every other phase gets 30 s, so only that limit can act. */
  async function limited(key: string): Promise<{ h: ProviderApp; base: string }> {
    const others = ['requestSeconds', 'headersSeconds', 'keepAliveSeconds', 'idleSeconds']
      .filter((k) => k !== key)
      .map((k) => `  ${k}: 30`);
    const h = startProviderApp({
      redisUrl: redis.url,
      server: ['timeouts:', `  ${key}: 1`, ...others],
    });
    await h.app.whenReady();
    return { h, base: await h.app.listen() };
  }

  it('an idle keep-alive connection is closed after keepAliveSeconds', async () => {
    const { h, base } = await limited('keepAliveSeconds');
    try {
      const { response, firstByteAfterMs, closedAfterMs } = await rawExchange(
        base,
        'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
      );
      // Kept alive (not closed with the response), then closed 1 s after it plus Node's
      // keepAliveTimeoutBuffer (1 s, so a client trusting `timeout=1` never races the close):
      // well before the idle limit (30 s) or the default (5 s + 1 s).
      expect(response).toMatch(/^HTTP\/1\.1 200 /);
      expect(response).toMatch(/\r\nKeep-Alive: timeout=1\r\n/i);
      const idle = closedAfterMs - (firstByteAfterMs ?? closedAfterMs);
      expect(idle).toBeGreaterThanOrEqual(800);
      expect(idle).toBeLessThan(4_000);
    } finally {
      await h.stop();
    }
  });

  it('a connection without traffic is closed after idleSeconds', async () => {
    const { h, base } = await limited('idleSeconds');
    try {
      // Headers never finished: the headers and request limits (30 s) would wait much longer.
      const { response, closedAfterMs } = await rawExchange(
        base,
        'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ',
      );
      expect(response).toBe('');
      expect(closedAfterMs).toBeGreaterThanOrEqual(800);
      expect(closedAfterMs).toBeLessThan(4_000);
    } finally {
      await h.stop();
    }
  });
});
