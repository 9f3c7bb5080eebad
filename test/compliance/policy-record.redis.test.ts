import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportCommand } from '../../src/cli/report.js';
import type { Soc2Report } from '../../src/compliance/report-types.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { sink } from '../helpers/sink.js';

/** The app records the policy in force; `report` without --config judges by it (#15.6). */

const SECRET = 'keycloak-webhook-secret-never-in-the-ledger';
let redis: RedisServer;
const dirs: string[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function run(dir: string | undefined, correlate: string): Promise<Harness> {
  const h = startApp(redis.url, {
    dir,
    yaml: `correlate:\n${correlate}\nproviders:\n  keycloak:\n    secret: ${SECRET}\n`,
  });
  if (!dirs.includes(h.dir)) dirs.push(h.dir);
  await h.app.whenReady();
  return h;
}

describe('config.policy in the ledger', () => {
  it('is written at every start, holds no secret, and the report uses it without --config', async () => {
    const from = new Date(Date.now() - 60_000).toISOString();
    const c = redis.client();
    let h = await run(undefined, '  ttlToleranceSeconds: 5\n  revocationSlaSeconds: 3');
    const dir = h.dir;
    // access_token allows 3600 s (test/helpers/app-harness.ts): +5 s tolerance.
    await c.set('oauth:access:within', 'v', 'EX', 3604);
    await c.set('oauth:access:over', 'v', 'EX', 7200);
    await waitFor(() => h.app.inventory.size('access_token') === 2, 5000, 'tokens live');
    await waitFor(
      () => h.app.ledger.list({ type: 'finding.ttl_exceeds_policy' }).length === 1,
      5000,
      'over-policy finding',
    );
    await h.app.stop('test');

    h = await run(dir, '  ttlToleranceSeconds: 0\n  revocationSlaSeconds: 9');
    // Ready does not wait for the restart's own SCAN: a write before it ends would be scanned
    // too (the gap's `scanned` asserted below counts the two tokens of the downtime only).
    await waitFor(
      () =>
        h.app.ledger
          .list({ type: 'keyspace.gap' })
          .some((g) => g.attrs.reason === 'tokenwatch_stopped'),
      5000,
      'the restart reconciled',
    );
    await c.set('oauth:access:over2', 'v', 'EX', 3601); // over once the tolerance is 0
    await waitFor(() => h.app.inventory.size('access_token') === 3, 5000, 'over2 seen');
    // Three: `over` (first run), `over2`, and `within`, over once the tolerance is 0, flagged
    // when the restart's reconciliation reports it present. Waiting for fewer let the report's
    // table (3 over policy) and the findings (2 at that moment) disagree on a loaded machine.
    await waitFor(
      () => h.app.ledger.list({ type: 'finding.ttl_exceeds_policy' }).length >= 3,
      10_000,
      'three over-policy findings',
    );
    const policies = h.app.ledger.list({ type: 'config.policy' });
    await h.app.stop('test');
    c.disconnect();

    expect(policies).toHaveLength(2);
    expect(
      policies.map((p) => (p.attrs.correlate as Record<string, unknown>).ttlToleranceSeconds),
    ).toEqual([5, 0]);
    expect(policies[0]!.attrs.digest).not.toBe(policies[1]!.attrs.digest);
    expect(Object.keys(policies[0]!.attrs).sort()).toEqual(['correlate', 'digest', 'tokens']);
    expect(policies[0]!.attrs.tokens).toContainEqual({
      kind: 'access_token',
      key: 'oauth:access:{token}',
      maxTtlSeconds: 3600,
      requireProviderEvent: false,
    });
    // Names and thresholds only: no provider secret, no key material from the data directory.
    const text = JSON.stringify(policies.map((p) => p.attrs));
    expect(text).not.toContain(SECRET);
    const keyFiles = readdirSync(dir).filter((n) => n.endsWith('.key'));
    expect(keyFiles.sort()).toEqual(['hmac.key', 'signing.key']);
    for (const f of keyFiles) {
      const lines = readFileSync(join(dir, f), 'utf8').split('\n');
      for (const line of lines.map((l) => l.trim()).filter((l) => l.length >= 16))
        expect(text).not.toContain(line);
    }

    const json = sink();
    const err = sink();
    const to = new Date(Date.now() + 60_000).toISOString();
    const dbPath = join(dir, 'audit.db');
    expect(
      await reportCommand(
        ['--db', dbPath, '--from', from, '--to', to, '--format', 'json'],
        json.out,
        err.out,
      ),
    ).toBe(0);
    expect(err.text()).not.toMatch(/records no policy/);
    const r = JSON.parse(json.text()) as Soc2Report;
    expect(r.policy.source).toBe('ledger');
    expect(r.policy.inForce.map((p) => p.seq)).toEqual(policies.map((p) => p.seq));
    expect(r.ttl.perKind.access_token).toMatchObject({
      policyMaxTtlSeconds: 3600,
      toleranceSeconds: 0,
      policyKnown: true,
    });
    // The table and the findings count the same tokens.
    const flagged = new Set(r.ttl.overPolicy.map((f) => f.fingerprint));
    expect(flagged.size).toBe(3);
    expect(r.ttl.perKind.access_token!.overPolicy).toBe(flagged.size);
    expect(r.revocations.slaSeconds).toBe(9);
    // The period starts before tokenwatch first looked: unknown; the baseline makes the end known.
    expect(r.inventory).toMatchObject({ startKnown: false, endKnown: true });
    expect(r.inventory.end.access_token).toBe(3);
    // The restart restored the inventory from the ledger: no second baseline; its blind spot
    // was reconciled by a SCAN of its own (issue #16.5), which found both tokens unchanged.
    expect(r.inventory.baselines.map((b) => b.counts.access_token ?? 0)).toEqual([0]);
    expect(r.inventory.lifecycle.access_token).toMatchObject({ issued: 3, present: 2 });
    expect(r.blindSpots.windows.find((w) => w.reason === 'tokenwatch_stopped')).toMatchObject({
      found: { appeared: {}, vanished: {}, ttlChanged: {} },
      scanned: 2,
      reconciledBySeq: null,
    });
  }, 30_000);
});
