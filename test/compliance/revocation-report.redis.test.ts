import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Soc2Report } from '../../src/compliance/report-types.js';
import {
  KEYCLOAK_SIGNATURE_HEADER,
  keycloakSignature,
} from '../../src/providers/keycloak-signature.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const SECRET = 'keycloak-webhook-secret-for-tests';
let redis: RedisServer;
let h: Harness;

beforeAll(async () => {
  redis = await startRedis();
  h = startApp(redis.url, {
    yaml: `correlate:\n  revocationSlaSeconds: 1\nproviders:\n  keycloak:\n    secret: ${SECRET}\n`,
  });
  await h.app.whenReady();
});
afterAll(async () => {
  await h.stop();
  await redis.stop();
});

async function logout(sessionId: string, id: string): Promise<void> {
  const body = JSON.stringify({
    id,
    time: Date.now(),
    type: 'LOGOUT',
    realmId: 'r',
    clientId: 'spa',
    userId: 'user-1',
    sessionId,
  });
  const res = await h.app.http.inject({
    method: 'POST',
    url: '/v1/providers/keycloak/events',
    headers: {
      'content-type': 'application/json',
      [KEYCLOAK_SIGNATURE_HEADER]: keycloakSignature(body, SECRET),
    },
    payload: body,
  });
  expect(res.statusCode, res.body).toBeLessThan(300);
}

const records = (type: string) => {
  h.app.ledger.flush();
  return h.app.ledger.list({ type });
};

describe('revocation evidence from the real correlator', () => {
  it('every measured revocation is a ledger record, and the report reconciles with them', async () => {
    const c = redis.client();
    await c.set('session:on-time', 'v', 'EX', 600);
    await c.set('session:stuck', 'v', 'EX', 600);
    await waitFor(() => h.app.inventory.size('session') === 2, 5000, 'sessions live');
    await logout('on-time', 'evt-1');
    await c.del('session:on-time');
    await logout('stuck', 'evt-2');
    await waitFor(
      () => records('finding.revocation_not_propagated').length === 1,
      10_000,
      'breach opened',
    );
    await c.del('session:stuck');
    await waitFor(() => records('revocation.propagation').length === 2, 10_000, 'both measured');
    c.disconnect();

    const obs = records('revocation.propagation');
    expect(obs.map((o) => [o.attrs.providerEventId, o.attrs.metSla])).toEqual([
      ['evt-1', true],
      ['evt-2', false],
    ]);
    const from = new Date(Date.now() - 600_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const res = await h.app.http.inject({
      url: `/v1/reports/soc2?from=${from}&to=${to}&format=json`,
    });
    expect(res.statusCode, res.body).toBe(200);
    const r = res.json<Soc2Report>();
    expect(r.revocations).toMatchObject({ count: 2, met: 1, breached: 1, slaSeconds: 1 });
    expect(r.revocations.latencySeconds.max).toBe(
      Math.max(...obs.map((o) => o.attrs.latencySeconds as number)),
    );
    const [breach] = r.revocations.breaches;
    const provider = records('provider.session_ended').find((p) => p.attrs.eventId === 'evt-2')!;
    const finding = records('finding.revocation_not_propagated')[0]!;
    expect(breach).toMatchObject({
      providerEventId: 'evt-2',
      status: 'breached',
      findingId: finding.attrs.id,
    });
    expect(breach!.evidenceSeqs).toEqual(
      expect.arrayContaining([provider.seq, finding.seq, obs[1]!.seq]),
    );
    expect(r.integrity.status).toBe('verified');
    expect(r.inventory.lifecycle.session).toMatchObject({ issued: 2, deleted: 2 });
    expect(r.revocations.tokens).toBe(2);
    expect(r.policy.source).toBe('ledger');
    expect(r.policy.inForce.at(-1)?.revocationSlaSeconds).toBe(1);
  });
});
