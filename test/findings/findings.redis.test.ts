import { describe, expect, it } from 'vitest';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';
import { useRedisAndReceiver } from '../helpers/redis-and-receiver.js';

let h: Harness | undefined;
const env = useRedisAndReceiver(async () => {
  await h?.stop();
  h = undefined;
});

function findingRecords(hh: Harness, rule: string) {
  hh.app.ledger.flush();
  return hh.app.ledger.list({ type: `finding.${rule}` });
}

describe('findings from real Redis traffic', () => {
  it('flags a token written without expiry, alerts, and resolves when it gets a TTL', async () => {
    h = startApp(env.redis.url, {
      yaml: `alerts:\n  alertmanagerUrl: ${env.receiver.url}\n  webhookUrl: ${env.receiver.url}/webhook\n`,
    });
    await h.app.whenReady();
    const c = env.redis.client();
    await c.set('session:immortal', 'v');
    await waitFor(
      () => findingRecords(h!, 'token_without_expiry').length === 1,
      10_000,
      'finding opened',
    );
    const [opened] = findingRecords(h, 'token_without_expiry');
    expect(opened!.attrs.state).toBe('opened');
    expect(opened!.attrs.criteria).toEqual(['CC6.1']);
    expect(opened!.kind).toBe('session');
    const written = h.app.ledger.list({ type: 'token.written' })[0]!;
    expect(opened!.attrs.evidenceSeqs).toContain(written.seq);
    await waitFor(
      () =>
        env.receiver.alerts.some(
          (a) => (a.labels as Record<string, string>).rule === 'token_without_expiry',
        ),
      10_000,
      'alert',
    );
    const res = await h.app.http.inject({
      method: 'GET',
      url: '/v1/findings?state=open',
      remoteAddress: '127.0.0.1',
    });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ findings: { rule: string }[] }>().findings.map((f) => f.rule)).toEqual([
      'token_without_expiry',
    ]);

    await c.expire('session:immortal', 60);
    await waitFor(
      () => findingRecords(h!, 'token_without_expiry').length === 2,
      10_000,
      'finding resolved',
    );
    expect(findingRecords(h, 'token_without_expiry')[1]!.attrs.state).toBe('resolved');
    await waitFor(
      () =>
        env.receiver.alerts.some(
          (a) =>
            (a.labels as Record<string, string>).rule === 'token_without_expiry' &&
            typeof a.endsAt === 'string',
        ),
      10_000,
      'resolved alert with endsAt',
    );
    await waitFor(
      () => env.receiver.webhooks.some((w) => w.type === 'finding.resolved'),
      10_000,
      'webhook resolved',
    );
    expect(env.receiver.webhooks.map((w) => w.type)).toEqual(
      expect.arrayContaining(['finding.opened', 'finding.resolved']),
    );
    const metrics = await h.app.metrics.registry.metrics();
    expect(metrics).toMatch(
      /tokenwatch_findings_total\{rule="token_without_expiry",severity="medium"\} 1/,
    );
    expect(metrics).toMatch(/tokenwatch_findings_open\{rule="token_without_expiry"\} 0/);
    const resolved = await h.app.http.inject({
      method: 'GET',
      url: '/v1/findings?state=resolved&rule=token_without_expiry',
      remoteAddress: '127.0.0.1',
    });
    expect(resolved.json<{ findings: unknown[] }>().findings).toHaveLength(1);
    const remote = await h.app.http.inject({
      method: 'GET',
      url: '/v1/findings',
      remoteAddress: '10.1.2.3',
    });
    expect(remote.statusCode).toBe(403);
  });

  it('flags TTLs above the kind policy', async () => {
    h = startApp(env.redis.url);
    await h.app.whenReady();
    const c = env.redis.client();
    await c.set('oauth:access:long', 'v', 'EX', 7200); // access_token maxTtlSeconds is 3600
    await c.set('oauth:access:fine', 'v', 'EX', 600);
    await waitFor(
      () => findingRecords(h!, 'ttl_exceeds_policy').length === 1,
      10_000,
      'policy finding',
    );
    expect(
      h.app.fingerprinter.matches('long', findingRecords(h, 'ttl_exceeds_policy')[0]!.fingerprint!),
    ).toBe(true);
  });

  it('opens exactly one churn_spike finding for a spike and resolves it after', async () => {
    h = startApp(env.redis.url, {
      yaml: `correlate:\n  churn: { warmupBuckets: 4, minRatePerSecond: 20, openSigmas: 4, resolveSigmas: 3, resolveAfterBuckets: 2, baselineBuckets: 10 }\n`,
    });
    await h.app.whenReady();
    const c = env.redis.client();
    let n = 0;
    const steady = async (seconds: number) => {
      for (let s = 0; s < seconds * 4; s++) {
        await c.set(`oauth:access:steady${n++}`, 'v', 'EX', 600);
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    await steady(6);
    const pipe = c.pipeline();
    for (let i = 0; i < 600; i++) pipe.set(`oauth:access:spike${i}`, 'v', 'EX', 600);
    await pipe.exec();
    await waitFor(() => findingRecords(h!, 'churn_spike').length >= 1, 10_000, 'spike opened');
    await steady(5);
    await waitFor(() => findingRecords(h!, 'churn_spike').length >= 2, 15_000, 'spike resolved');
    const recs = findingRecords(h, 'churn_spike');
    expect(recs.map((r) => r.attrs.state)).toEqual(['opened', 'resolved']);
    expect(recs[0]!.kind).toBe('access_token');
  }, 40_000);

  it('records one tokens_evicted finding per eviction burst', async () => {
    h = startApp(env.redis.url, { yaml: 'correlate:\n  evictionBurstGapSeconds: 2\n' });
    await h.app.whenReady();
    const c = env.redis.client();
    for (let i = 0; i < 40; i++) await c.set(`session:ev${i}`, 'x'.repeat(10_000), 'EX', 600);
    await c.config('SET', 'maxmemory-policy', 'volatile-lru');
    const used = Number(/used_memory:(\d+)/.exec(await c.info('memory'))![1]);
    await c.config('SET', 'maxmemory', String(used - 200_000));
    await c.set('unrelated', 'x');
    await waitFor(
      () => findingRecords(h!, 'tokens_evicted').length === 2,
      15_000,
      'burst opened and resolved',
    );
    await c.config('SET', 'maxmemory', '0');
    const [opened, resolved] = findingRecords(h, 'tokens_evicted');
    expect(opened!.attrs.state).toBe('opened');
    expect(resolved!.attrs.state).toBe('resolved');
    expect(opened!.attrs.criteria).toEqual(['A1.2']);
  });
});
