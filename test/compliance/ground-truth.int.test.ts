import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDist } from '../audit/dist.js';
import { waitFor } from '../helpers/app-harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { auth0Event, serveHarness, type ServeHarness } from './ground-truth-harness.js';

/**
 * Issue #15 acceptance: the report's numbers equal what happened. Real redis-server, real
 * `tokenwatch serve` processes (restarted on the same ledger), Auth0 deliveries in the Log
 * Stream wire format, and `tokenwatch report --format json` read like an auditor would.
 */

const harnesses: ServeHarness[] = [];
const servers: RedisServer[] = [];

beforeAll(() => {
  ensureDist();
}, 120_000);
afterAll(async () => {
  for (const h of harnesses) {
    await h.stop();
    rmSync(h.dir, { recursive: true, force: true });
  }
  for (const s of servers) await s.stop();
});

const srrt = (jti: string) => auth0Event('srrt', { access_token_jti: jti });

describe('the issue #15 minimal reproduction', () => {
  it('gives 2 revocations breached and open, token_without_expiry 2/1/1, and the mid-period inventory equals Redis', async () => {
    const redis = await startRedis();
    servers.push(redis);
    const c = redis.client();
    await c.set('oauth:access:pre2', 'v', 'EX', 3000);
    await c.set('session:pre-nottl', 'v');
    await c.set('oauth:access:pre1', 'v', 'EX', 3000);
    const h = await serveHarness({ redisPort: redis.port, slaSeconds: 3 });
    harnesses.push(h);
    const from = Date.now() - 1000;
    await h.start();

    await c.set('oauth:access:pre1', 'v', 'EX', 3000); // a rewrite of a token the baseline found
    expect(await h.auth0([srrt('pre2')])).toBe(200);
    await c.set('session:new-nottl', 'v');
    await c.set('oauth:access:t2', 'v', 'EX', 3000);
    await waitFor(
      async () => (await h.records('token.written')).length === 3,
      10_000,
      'the three writes recorded',
    );
    await waitFor(
      async () => (await h.records('provider.*')).length === 1,
      10_000,
      'the revocation recorded',
    );
    const mid = Date.now() + 1;
    const redisMid = {
      access_token: (await c.keys('oauth:access:*')).length,
      session: (await c.keys('session:*')).length,
    };
    await new Promise((r) => setTimeout(r, 5));

    await h.stop();
    await h.start();
    expect(await h.auth0([srrt('t2')])).toBe(200);
    await c.del('session:new-nottl');
    await waitFor(
      async () => (await h.records('finding.revocation_not_propagated')).length === 2,
      20_000,
      'both revocations breach the 3 s SLA',
    );
    await waitFor(
      async () =>
        (await h.records('finding.token_without_expiry')).some((f) => f.attrs.state === 'resolved'),
      10_000,
      'the deleted no-TTL session resolves its finding',
    );
    const to = Date.now() + 1;
    await h.stop();
    c.disconnect();

    const atMid = await h.report(from, mid);
    expect(redisMid).toEqual({ access_token: 3, session: 2 });
    expect(atMid.inventory.endKnown).toBe(true);
    expect(atMid.inventory.end).toMatchObject(redisMid);

    const r = await h.report(from, to);
    expect(r.integrity.status).not.toBe('failed');
    expect(r.revocations.breaches).toHaveLength(2);
    expect(r.revocations.breaches.map((b) => b.status)).toEqual(['open', 'open']);
    expect(r.findings.revocation_not_propagated).toEqual({ opened: 2, resolved: 0, openAtEnd: 2 });
    expect(r.findings.token_without_expiry).toEqual({ opened: 2, resolved: 1, openAtEnd: 1 });
    expect(r.inventory.end).toMatchObject({ access_token: 3, session: 1 });
  }, 90_000);
});
