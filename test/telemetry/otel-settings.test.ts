import { describe, expect, it } from 'vitest';
import { otelSchema } from '../../src/config/otel-schema.js';
import { parseConfig } from '../../src/config/load.js';
import { resolveOtelSettings } from '../../src/telemetry/otel.js';

const cfg = (v: Record<string, unknown> = {}) => otelSchema.parse(v);

describe('otel config and OTEL_* switches', () => {
  it('defaults to off, with the documented defaults', () => {
    expect(cfg()).toEqual({ serviceName: 'tokenwatch', metricsIntervalSeconds: 60 });
    expect(resolveOtelSettings(cfg(), {})).toBeUndefined();
    const c = parseConfig("tokens:\n  - kind: session\n    key: 'session:{sid}'\n");
    expect(c.otel).toEqual({ serviceName: 'tokenwatch', metricsIntervalSeconds: 60 });
  });

  it('turns on when OTEL_EXPORTER_OTLP_ENDPOINT is set, exporters resolving the URL', () => {
    expect(resolveOtelSettings(cfg(), { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual({
      serviceName: 'tokenwatch',
      traces: { url: undefined },
      metrics: { url: undefined, intervalMs: 60_000 },
    });
  });

  it('pushes metrics only with an endpoint for them; traces go to the OTLP default', () => {
    expect(resolveOtelSettings(cfg({ enabled: true }), {})).toEqual({
      serviceName: 'tokenwatch',
      traces: { url: undefined },
      metrics: undefined,
    });
    const s = resolveOtelSettings(
      cfg({ tracesEndpoint: 'http://c:4318/v1/traces', metricsIntervalSeconds: 5 }),
      { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://m:4318/v1/metrics' },
    );
    expect(s?.traces).toEqual({ url: 'http://c:4318/v1/traces' });
    expect(s?.metrics).toEqual({ url: undefined, intervalMs: 5000 });
  });

  it('honours enabled: false, OTEL_SDK_DISABLED, OTEL_*_EXPORTER=none and OTEL_SERVICE_NAME', () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    expect(resolveOtelSettings(cfg({ enabled: false }), env)).toBeUndefined();
    expect(resolveOtelSettings(cfg(), { ...env, OTEL_SDK_DISABLED: 'TRUE' })).toBeUndefined();
    expect(
      resolveOtelSettings(cfg(), { ...env, OTEL_TRACES_EXPORTER: 'none' })?.traces,
    ).toBeUndefined();
    expect(
      resolveOtelSettings(cfg(), { ...env, OTEL_METRICS_EXPORTER: 'none' })?.metrics,
    ).toBeUndefined();
    expect(
      resolveOtelSettings(cfg(), {
        ...env,
        OTEL_TRACES_EXPORTER: 'none',
        OTEL_METRICS_EXPORTER: 'none',
      }),
    ).toBeUndefined();
    expect(resolveOtelSettings(cfg(), { ...env, OTEL_SERVICE_NAME: 'tw-eu' })?.serviceName).toBe(
      'tw-eu',
    );
  });

  it('refuses endpoints that are not http(s) URLs, naming the key', () => {
    const r = otelSchema.safeParse({ tracesEndpoint: 'collector:4318' });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['tracesEndpoint']);
    expect(otelSchema.safeParse({ metricsIntervalSeconds: 0 }).success).toBe(false);
    expect(otelSchema.safeParse({ endpoint: 'http://x' }).success).toBe(false);
  });
});
