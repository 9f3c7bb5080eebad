import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/** An OTLP attribute as the JSON encoding carries it. */
interface OtlpAttr {
  key: string;
  value: { stringValue?: string; intValue?: string | number; doubleValue?: number };
}
interface OtlpSpan {
  name: string;
  attributes: OtlpAttr[];
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
}
interface OtlpPoint {
  attributes: OtlpAttr[];
  asDouble?: number;
  count?: string | number;
  sum?: number;
  bucketCounts?: (string | number)[];
  explicitBounds?: number[];
}
interface OtlpMetric {
  name: string;
  unit?: string;
  sum?: { aggregationTemporality: number; isMonotonic: boolean; dataPoints: OtlpPoint[] };
  gauge?: { dataPoints: OtlpPoint[] };
  histogram?: { aggregationTemporality: number; dataPoints: OtlpPoint[] };
}
interface Received {
  path: string;
  contentType: string | undefined;
  raw: string;
  body: {
    resourceSpans?: {
      resource: { attributes: OtlpAttr[] };
      scopeSpans: { spans: OtlpSpan[] }[];
    }[];
    resourceMetrics?: {
      resource: { attributes: OtlpAttr[] };
      scopeMetrics: { scope: { name: string }; metrics: OtlpMetric[] }[];
    }[];
  };
}

/** A loopback OTLP/HTTP receiver: accepts JSON POSTs to /v1/traces and /v1/metrics. */
async function startReceiver(): Promise<{
  url: string;
  received: Received[];
  close(): Promise<void>;
}> {
  const received: Received[] = [];
  const read = async (req: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  const server: Server = createServer((req, res) => {
    read(req)
      .then((raw) => {
        const path = req.url ?? '';
        if (req.method !== 'POST' || !['/v1/traces', '/v1/metrics'].includes(path)) {
          res.writeHead(404).end();
          return;
        }
        received.push({
          path,
          contentType: req.headers['content-type'],
          raw,
          body: JSON.parse(raw) as Received['body'],
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      })
      .catch(() => res.writeHead(400).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const attr = (attrs: OtlpAttr[], key: string): string | number | undefined => {
  const v = attrs.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : v?.doubleValue);
};

const metricsOf = (received: Received[]): OtlpMetric[] =>
  received
    .filter((r) => r.path === '/v1/metrics')
    .flatMap((r) => r.body.resourceMetrics ?? [])
    .flatMap((rm) => rm.scopeMetrics.flatMap((s) => s.metrics));

const spansOf = (received: Received[]): OtlpSpan[] =>
  received
    .filter((r) => r.path === '/v1/traces')
    .flatMap((r) => r.body.resourceSpans ?? [])
    .flatMap((rs) => rs.scopeSpans.flatMap((s) => s.spans));

let redis: RedisServer;
let h: Harness | undefined;

beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  await h?.stop();
  h = undefined;
});
afterAll(async () => {
  await redis.stop();
});

describe('OpenTelemetry export over OTLP/HTTP', () => {
  it('exports reconcile spans and the Prometheus registry as OTLP metrics', async () => {
    const rx = await startReceiver();
    try {
      h = startApp(redis.url, {
        yaml: [
          'otel:',
          '  enabled: true',
          '  serviceName: tokenwatch-test',
          `  tracesEndpoint: ${rx.url}/v1/traces`,
          `  metricsEndpoint: ${rx.url}/v1/metrics`,
          '  metricsIntervalSeconds: 0.5',
        ].join('\n'),
      });
      const app = h.app;
      await app.whenReady();
      expect(app.tracing.enabled).toBe(true);
      const secret = 'otlpRawAccessTokenValue4242';
      const c = redis.client();
      await c.set(`oauth:access:${secret}`, 'v', 'EX', 600);
      await c.set('oauth:refresh:otlp-refresh', 'v', 'EX', 3600);
      await app.settle();

      // A blind spot: the subscriber is killed; reconciliation reports it with its SCAN timings.
      await c.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await waitFor(
        async () =>
          /tokenwatch_keyspace_gaps_total\{[^}]*\} [1-9]/.test(
            await app.metrics.registry.metrics(),
          ),
        10_000,
        'a keyspace gap',
      );

      // Metrics arrive on the periodic export, converted from the prom-client registry.
      await waitFor(
        () =>
          metricsOf(rx.received).some(
            (m) =>
              m.name === 'tokenwatch_token_events_total' &&
              (m.sum?.dataPoints ?? []).some(
                (p) =>
                  attr(p.attributes, 'kind') === 'access_token' &&
                  attr(p.attributes, 'event') === 'written' &&
                  (p.asDouble ?? 0) >= 1,
              ),
          ),
        10_000,
        'an OTLP metrics export with the token writes',
      );
      await h.stop();
      h = undefined;

      const metricsPost = rx.received.find((r) => r.path === '/v1/metrics');
      expect(metricsPost?.contentType).toMatch(/^application\/json/);
      const resource = metricsPost?.body.resourceMetrics?.[0]?.resource.attributes ?? [];
      expect(attr(resource, 'service.name')).toBe('tokenwatch-test');

      const byName = new Map(metricsOf(rx.received).map((m) => [m.name, m]));
      const events = byName.get('tokenwatch_token_events_total');
      expect(events?.sum).toMatchObject({ isMonotonic: true, aggregationTemporality: 2 });
      expect(byName.get('tokenwatch_tokens_live')?.gauge?.dataPoints.length).toBeGreaterThan(0);
      const gaps = byName.get('tokenwatch_keyspace_gaps_total')?.sum?.dataPoints ?? [];
      expect(gaps.reduce((n, p) => n + (p.asDouble ?? 0), 0)).toBeGreaterThanOrEqual(1);

      const ttl = byName.get('tokenwatch_token_ttl_seconds');
      expect(ttl?.unit).toBe('s');
      expect(ttl?.histogram?.aggregationTemporality).toBe(2);
      const access = ttl?.histogram?.dataPoints.find(
        (p) => attr(p.attributes, 'kind') === 'access_token',
      );
      expect(access?.explicitBounds?.length).toBeGreaterThan(5);
      expect(access?.bucketCounts?.length).toBe((access?.explicitBounds?.length ?? 0) + 1);
      const counts = (access?.bucketCounts ?? []).map(Number);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(Number(access?.count));
      // The 600 s TTL lands in (300, 900]: per-bucket counts, not Prometheus' cumulative ones.
      const bounds = access?.explicitBounds ?? [];
      expect(counts[bounds.indexOf(900)]).toBeGreaterThanOrEqual(1);
      expect(counts[bounds.indexOf(300)]).toBe(0);

      const spans = spansOf(rx.received);
      const reconcile = spans.find((s) => s.name === 'tokenwatch.keyspace.reconcile');
      expect(reconcile, `spans: ${spans.map((s) => s.name).join(', ')}`).toBeDefined();
      expect(attr(reconcile?.attributes ?? [], 'tokenwatch.node')).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(attr(reconcile?.attributes ?? [], 'tokenwatch.reason')).toBeTypeOf('string');
      expect(
        Number(attr(reconcile?.attributes ?? [], 'tokenwatch.scanned')),
      ).toBeGreaterThanOrEqual(2);
      expect(BigInt(reconcile?.endTimeUnixNano ?? 0)).toBeGreaterThanOrEqual(
        BigInt(reconcile?.startTimeUnixNano ?? 0),
      );
      expect(spans.some((s) => s.name === 'tokenwatch.keyspace.baseline')).toBe(true);
      // Audit batch commits and correlation of committed batches are traced too.
      expect(spans.some((s) => s.name === 'tokenwatch.audit.commit')).toBe(true);
      expect(spans.some((s) => s.name === 'tokenwatch.correlate.batch')).toBe(true);
      const traceResource = rx.received.find((r) => r.path === '/v1/traces')?.body
        .resourceSpans?.[0]?.resource.attributes;
      expect(attr(traceResource ?? [], 'service.name')).toBe('tokenwatch-test');

      // Neither spans nor metrics ever carry a token.
      for (const r of rx.received) expect(r.raw).not.toContain(secret);
    } finally {
      await rx.close();
    }
  });

  it('stays off, with a no-op tracing helper, when nothing asks for export', async () => {
    h = startApp(redis.url);
    await h.app.whenReady();
    expect(h.app.telemetry.settings).toBeUndefined();
    expect(h.app.tracing.enabled).toBe(false);
    const out = await h.app.tracing.withSpan('tokenwatch.test.noop', { kind: 'x' }, () =>
      Promise.resolve(42),
    );
    expect(out).toBe(42);
  });
});
