import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  keycloakSignature,
  KEYCLOAK_SIGNATURE_HEADER,
} from '../../src/providers/keycloak-signature.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';
import { useRedisAndReceiver } from '../helpers/redis-and-receiver.js';

const SECRET = 'keycloak-webhook-secret-for-tests';

let h: Harness | undefined;
let dir: string | undefined;
const env = useRedisAndReceiver(async () => {
  await h?.stop();
  h = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function start(now?: () => number): Harness {
  const hh = startApp(env.redis.url, {
    dir,
    now,
    yaml: `
correlate:
  revocationSlaSeconds: 2
alerts:
  alertmanagerUrl: ${env.receiver.url}
  webhookUrl: ${env.receiver.url}/webhook
providers:
  keycloak:
    secret: ${SECRET}
`,
  });
  dir = hh.dir;
  return hh;
}

/** Stops the app but keeps its directory (ledger, keys) for the next start. */
async function stopKeepingDir(hh: Harness): Promise<void> {
  await hh.app.stop('test-restart');
}

async function logout(hh: Harness, sessionId: string, id: string): Promise<void> {
  const body = JSON.stringify({
    id,
    time: Date.now(),
    type: 'LOGOUT',
    realmId: 'payments',
    clientId: 'payments-spa',
    userId: 'user-1',
    sessionId,
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

const records = (hh: Harness, type: string) => {
  hh.app.ledger.flush();
  return hh.app.ledger.list({ type });
};

const alertsFor = (id: unknown) =>
  env.receiver.alerts.filter((a) => (a.labels as Record<string, string>).finding_id === id);

describe('correlator state across a restart (real Redis, real ledger, fake Alertmanager)', () => {
  it('a revocation in flight breaches after the restart; a finding opened before it resolves after it', async () => {
    h = start();
    await h.app.whenReady();
    const c = env.redis.client();
    await c.set('session:immortal', 'v'); // no TTL: token_without_expiry
    await c.set('session:in-flight', 'v', 'EX', 600);
    await waitFor(() => h!.app.inventory.size('session') === 2, 5000, 'sessions live');
    await waitFor(
      () => records(h!, 'finding.token_without_expiry').length === 1,
      10_000,
      'finding opened before the restart',
    );
    const [opened] = records(h, 'finding.token_without_expiry');
    await waitFor(() => alertsFor(opened!.attrs.id).length === 1, 10_000, 'firing alert');
    // The IdP logs the session out; tokenwatch stops before the 2 s SLA has run.
    await logout(h, 'in-flight', 'evt-flight-1');
    expect(records(h, 'finding.revocation_not_propagated')).toEqual([]);
    await stopKeepingDir(h);
    h = undefined;

    h = start();
    await h.app.whenReady();
    const starts = records(h, 'correlator.restored').map((r) => r.attrs);
    expect(starts).toMatchObject([{ outcome: 'none' }, { outcome: 'restored', openFindings: 1 }]);
    // The deadline passed while tokenwatch was down: the breach is reported after the restart.
    await waitFor(
      () => records(h!, 'finding.revocation_not_propagated').length === 1,
      10_000,
      'SLA breach after the restart',
    );
    const [breach] = records(h, 'finding.revocation_not_propagated');
    expect(breach?.attrs).toMatchObject({ state: 'opened' });
    expect(breach?.attrs.evidenceSeqs).toContain(records(h, 'provider.session_ended')[0]!.seq);

    await c.del('session:in-flight');
    await c.del('session:immortal');
    await waitFor(
      () =>
        records(h!, 'finding.revocation_not_propagated').length === 2 &&
        records(h!, 'finding.token_without_expiry').length === 2,
      10_000,
      'both resolved after the restart',
    );
    const [, resolved] = records(h, 'finding.token_without_expiry');
    expect(resolved?.attrs).toMatchObject({ id: opened!.attrs.id, state: 'resolved' });
    const [measured, ...more] = records(h, 'revocation.propagation');
    expect(more).toEqual([]);
    expect(measured?.attrs).toMatchObject({ providerEventId: 'evt-flight-1', metSla: false });
    expect(Number(measured?.attrs.latencySeconds)).toBeGreaterThan(2);

    // Alertmanager: exactly one firing and one resolved (with endsAt) for the finding that
    // lived across the restart, none doubled by the re-send tick.
    await waitFor(() => alertsFor(opened!.attrs.id).length === 2, 10_000, 'resolution alert');
    await new Promise((r) => setTimeout(r, 1500)); // a re-send tick or two later
    const sent = alertsFor(opened!.attrs.id);
    expect(sent.map((a) => typeof a.endsAt)).toEqual(['undefined', 'string']);
    expect(sent[1]?.startsAt).toBe(sent[0]?.startsAt);
    const breachAlerts = alertsFor(breach!.attrs.id);
    expect(breachAlerts.map((a) => typeof a.endsAt)).toEqual(['undefined', 'string']);
  }, 60_000);

  it('re-sends an open finding only on the resend interval, never twice for one opening', async () => {
    let t = Date.now();
    h = start(() => t);
    await h.app.whenReady();
    const c = env.redis.client();
    await c.set('session:forever', 'v');
    await waitFor(
      () => records(h!, 'finding.token_without_expiry').length === 1,
      10_000,
      'finding opened',
    );
    const id = records(h, 'finding.token_without_expiry')[0]!.attrs.id;
    for (let i = 0; i < 5; i++) h.app.findings.tick(); // same instant as the opening
    await new Promise((r) => setTimeout(r, 300));
    expect(alertsFor(id)).toHaveLength(1);
    t += 59_000;
    h.app.findings.tick();
    await new Promise((r) => setTimeout(r, 300));
    expect(alertsFor(id)).toHaveLength(1);
    t += 1_000; // alerts.resendIntervalSeconds: 60
    h.app.findings.tick();
    h.app.findings.tick();
    await waitFor(() => alertsFor(id).length === 2, 5000, 'one re-send');
    await new Promise((r) => setTimeout(r, 300));
    expect(alertsFor(id)).toHaveLength(2);
    expect(alertsFor(id).every((a) => a.endsAt === undefined)).toBe(true);
    // The webhook gets each state change once: re-sends are for Alertmanager only.
    const hooks = env.receiver.webhooks.filter((w) => (w.finding as { id: unknown }).id === id);
    expect(hooks.map((w) => w.type)).toEqual(['finding.opened']);
  }, 30_000);
});
