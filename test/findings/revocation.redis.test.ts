import { describe, expect, it } from 'vitest';
import {
  keycloakSignature,
  KEYCLOAK_SIGNATURE_HEADER,
} from '../../src/providers/keycloak-signature.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';
import { useRedisAndReceiver } from '../helpers/redis-and-receiver.js';

const SECRET = 'keycloak-webhook-secret-for-tests';

let h: Harness | undefined;
const env = useRedisAndReceiver(async () => {
  await h?.stop();
  h = undefined;
});

function start(): Harness {
  return startApp(env.redis.url, {
    yaml: `
correlate:
  revocationSlaSeconds: 1
alerts:
  alertmanagerUrl: ${env.receiver.url}
providers:
  keycloak:
    secret: ${SECRET}
`,
  });
}

/** A real Keycloak LOGOUT event delivered to the webhook endpoint, HMAC-signed. */
async function logout(hh: Harness, sessionId: string, id: string): Promise<void> {
  const body = JSON.stringify({
    id,
    time: Date.now(),
    type: 'LOGOUT',
    realmId: 'payments',
    clientId: 'payments-spa',
    userId: 'user-1',
    sessionId,
    ipAddress: '198.51.100.23',
    details: { redirect_uri: 'https://payments.example.com/' },
  });
  const res = await hh.app.http.inject({
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

function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : Number.NaN;
}

describe('revocation propagation end to end (real Redis, real webhook)', () => {
  it('records the latency and raises nothing when the session leaves Redis within the SLA', async () => {
    h = start();
    await h.app.whenReady();
    const c = env.redis.client();
    await c.set('session:sess-ok', 'v', 'EX', 600);
    await waitFor(() => h!.app.inventory.size('session') === 1, 5000, 'session live');
    await logout(h, 'sess-ok', 'evt-ok-1');
    await c.del('session:sess-ok');
    await waitFor(
      async () =>
        metricValue(
          await h!.app.metrics.registry.metrics(),
          'tokenwatch_revocation_propagation_seconds_count',
        ) === 1,
      10_000,
      'latency observed',
    );
    await new Promise((r) => setTimeout(r, 1500)); // past the SLA
    h.app.findings.tick();
    h.app.ledger.flush();
    expect(h.app.ledger.list({ type: 'finding.*' })).toEqual([]);
    const text = await h.app.metrics.registry.metrics();
    expect(metricValue(text, 'tokenwatch_revocation_propagation_seconds_sum')).toBeLessThan(1);
    expect(metricValue(text, 'tokenwatch_revocation_sla_breaches_total')).toBe(0);
    expect(h.app.ledger.list({ type: 'provider.session_ended' })).toHaveLength(1);
  });

  it('opens a finding after the SLA, alerts Alertmanager, and resolves when the session is deleted', async () => {
    h = start();
    await h.app.whenReady();
    const c = env.redis.client();
    await c.set('session:sess-stuck', 'v', 'EX', 600);
    await waitFor(() => h!.app.inventory.size('session') === 1, 5000, 'session live');
    await logout(h, 'sess-stuck', 'evt-stuck-1');
    await logout(h, 'sess-stuck', 'evt-stuck-1'); // redelivery: no double counting
    await waitFor(
      () => {
        h!.app.ledger.flush();
        return h!.app.ledger.list({ type: 'finding.revocation_not_propagated' }).length === 1;
      },
      10_000,
      'finding opened',
    );
    const [opened] = h.app.ledger.list({ type: 'finding.revocation_not_propagated' });
    expect(opened!.attrs.state).toBe('opened');
    expect(opened!.attrs.criteria).toEqual(['CC6.2']);
    const providerSeq = h.app.ledger.list({ type: 'provider.session_ended' })[0]!.seq;
    expect(opened!.attrs.evidenceSeqs).toContain(providerSeq);
    expect(h.app.ledger.list({ type: 'provider.session_ended' })).toHaveLength(1);
    await waitFor(
      () =>
        env.receiver.alerts.some(
          (a) => (a.labels as Record<string, string>).rule === 'revocation_not_propagated',
        ),
      10_000,
      'alert delivered',
    );

    await c.del('session:sess-stuck');
    await waitFor(
      () => {
        h!.app.ledger.flush();
        return h!.app.ledger.list({ type: 'finding.revocation_not_propagated' }).length === 2;
      },
      10_000,
      'finding resolved',
    );
    const resolved = h.app.ledger.list({ type: 'finding.revocation_not_propagated' })[1]!;
    expect(resolved.attrs.state).toBe('resolved');
    await waitFor(
      () =>
        env.receiver.alerts.some(
          (a) =>
            (a.labels as Record<string, string>).rule === 'revocation_not_propagated' &&
            typeof a.endsAt === 'string',
        ),
      10_000,
      'resolution delivered',
    );
    const text = await h.app.metrics.registry.metrics();
    expect(metricValue(text, 'tokenwatch_revocation_propagation_seconds_count')).toBe(1);
    expect(metricValue(text, 'tokenwatch_revocation_propagation_seconds_sum')).toBeGreaterThan(1);
    expect(metricValue(text, 'tokenwatch_revocation_sla_breaches_total')).toBe(1);
  });
});
