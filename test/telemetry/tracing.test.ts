import { SpanStatusCode } from '@opentelemetry/api';
import {
  TracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace';
import { describe, expect, it } from 'vitest';
import { TokenwatchError } from '../../src/errors.js';
import { MAX_HELD_SPANS, Tracing } from '../../src/telemetry/tracing.js';

function traced() {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracing = new Tracing();
  tracing.attach(provider.getTracer('test'));
  return { tracing, exporter };
}

describe('Tracing', () => {
  it('holds the spans that end before the tracer comes, and exports them with their timings', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({
      spanProcessors: [new SimpleSpanProcessor({ exporter })],
    });
    const t = new Tracing();
    t.hold();
    expect(t.enabled).toBe(true); // the parts that trace must report what they do
    expect(t.withSpan('tokenwatch.keyspace.baseline', { node: 'n:1' }, () => 'sync')).toBe('sync');
    const slow = t.withSpan('tokenwatch.correlate.batch', { findings: 2 }, async () => {
      await new Promise((r) => setTimeout(r, 20));
      return 'async';
    });
    expect(() =>
      t.withSpan('tokenwatch.audit.commit', {}, () => {
        throw new TokenwatchError('ERR_AUDIT_DEGRADED', 'disk full: secret-ish detail');
      }),
    ).toThrow(TokenwatchError);
    t.record({ name: 'tokenwatch.keyspace.reconcile', attrs: {}, startMs: 1000, endMs: 1250 });
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    t.attach(provider.getTracer('test'));
    // Attached while the async span still runs: it is exported when it ends, not lost.
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual([
      'tokenwatch.keyspace.baseline',
      'tokenwatch.audit.commit',
      'tokenwatch.keyspace.reconcile',
    ]);
    await expect(slow).resolves.toBe('async');
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name).at(-1)).toBe('tokenwatch.correlate.batch');
    const failed = spans.find((s) => s.name === 'tokenwatch.audit.commit');
    expect(failed?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'ERR_AUDIT_DEGRADED' });
    expect(spans[0]?.attributes).toEqual({ 'tokenwatch.node': 'n:1' });
    const rec = spans.find((s) => s.name === 'tokenwatch.keyspace.reconcile');
    expect(rec?.startTime).toEqual([1, 0]);
    expect(rec?.endTime).toEqual([1, 250_000_000]);
    const batch = spans.find((s) => s.name === 'tokenwatch.correlate.batch');
    expect(
      (batch?.duration[0] ?? 0) * 1e3 + (batch?.duration[1] ?? 0) / 1e6,
    ).toBeGreaterThanOrEqual(15);
  });

  it('holds at most MAX_HELD_SPANS, counts the rest, and discards them when detached', () => {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({
      spanProcessors: [new SimpleSpanProcessor({ exporter })],
    });
    const t = new Tracing();
    t.hold();
    for (let i = 0; i < MAX_HELD_SPANS + 5; i++) t.withSpan('tokenwatch.a.b', {}, () => i);
    expect(t.heldDropped).toBe(5);
    t.attach(provider.getTracer('test'));
    expect(exporter.getFinishedSpans()).toHaveLength(MAX_HELD_SPANS);

    const u = new Tracing();
    u.hold();
    u.record({ name: 'tokenwatch.a.b', attrs: {}, startMs: 1, endMs: 2 });
    u.attach(undefined); // the SDK failed to load, or shut down: nothing is kept
    expect(u.enabled).toBe(false);
    u.attach(provider.getTracer('test'));
    expect(exporter.getFinishedSpans()).toHaveLength(MAX_HELD_SPANS);
  });

  it('is a pass-through while off', async () => {
    const t = new Tracing();
    expect(t.enabled).toBe(false);
    expect(t.withSpan('tokenwatch.a.b', {}, (span) => span.isRecording())).toBe(false);
    await expect(t.withSpan('tokenwatch.a.b', {}, () => Promise.resolve('v'))).resolves.toBe('v');
    t.record({ name: 'tokenwatch.a.b', attrs: {}, startMs: 1, endMs: 2 });
  });

  it('records sync and async work with the service attributes under tokenwatch.*', async () => {
    const { tracing, exporter } = traced();
    expect(
      tracing.withSpan('tokenwatch.audit.commit', { batch_size: 3, kind: 'session' }, () => 'ok'),
    ).toBe('ok');
    await tracing.withSpan('tokenwatch.correlate.batch', { findings: 1 }, async () => {
      await new Promise((r) => setTimeout(r, 5));
    });
    tracing.record({
      name: 'tokenwatch.keyspace.reconcile',
      attrs: { node: 'n:1', reason: 'r'.repeat(500), scanned: 10 },
      startMs: 1_700_000_000_000,
      endMs: 1_700_000_000_250,
    });
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name)).toEqual([
      'tokenwatch.audit.commit',
      'tokenwatch.correlate.batch',
      'tokenwatch.keyspace.reconcile',
    ]);
    expect(spans[0]?.attributes).toEqual({
      'tokenwatch.batch_size': 3,
      'tokenwatch.kind': 'session',
    });
    expect(spans[1]?.duration[1] ?? 0).toBeGreaterThan(0);
    const rec = spans[2];
    expect((rec?.attributes['tokenwatch.reason'] as string).length).toBe(128);
    expect(rec?.startTime).toEqual([1_700_000_000, 0]);
    expect(rec?.endTime).toEqual([1_700_000_000, 250_000_000]);
  });

  it('marks failures with the error code, never the message, and rethrows', async () => {
    const { tracing, exporter } = traced();
    const err = new TokenwatchError(
      'ERR_WEBHOOK_SIGNATURE',
      'bad signature over body with rawSecretValue',
    );
    expect(() =>
      tracing.withSpan('tokenwatch.webhook.handle', { provider: 'auth0' }, () => {
        throw err;
      }),
    ).toThrow(err);
    await expect(
      tracing.withSpan('tokenwatch.webhook.handle', {}, () =>
        Promise.reject(new RangeError('rawSecretValue')),
      ),
    ).rejects.toThrow(RangeError);
    const [a, b] = exporter.getFinishedSpans();
    expect(a?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'ERR_WEBHOOK_SIGNATURE' });
    expect(a?.attributes['error.type']).toBe('ERR_WEBHOOK_SIGNATURE');
    expect(b?.attributes['error.type']).toBe('RangeError');
    expect(JSON.stringify([a?.events, b?.events, a?.status, b?.status])).not.toContain(
      'rawSecretValue',
    );
  });
});
