import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Registry } from 'prom-client';
import { VERSION } from '../version.js';
import type { OtelSettings } from './otel.js';
import { PromRegistryProducer } from './prom-producer.js';

/** What {@link startOtelSdk} started: flushed and shut down by Telemetry. */
export interface StartedOtelSdk {
  sdk: NodeSDK;
  spans: BatchSpanProcessor | undefined;
  reader: PeriodicExportingMetricReader | undefined;
}

/**
 * The OpenTelemetry SDK side of Telemetry, in a module of its own so that only a process that
 * exports loads it: `@opentelemetry/sdk-node` and the OTLP exporters are ~24 MB of RSS that a
 * tokenwatch with `otel` off (the default) never pays (src/telemetry/otel.ts imports it
 * dynamically). `@opentelemetry/sdk-node` with an OTLP/HTTP (JSON) span exporter, and a periodic
 * OTLP/HTTP metric export of the prom-client registry through {@link PromRegistryProducer}.
 */
export function startOtelSdk(
  settings: OtelSettings,
  o: { registry: Registry; beforeCollect?: (() => void) | undefined; now?: () => number },
): StartedOtelSdk {
  let spans: BatchSpanProcessor | undefined;
  let reader: PeriodicExportingMetricReader | undefined;
  if (settings.traces) {
    const url = settings.traces.url;
    spans = new BatchSpanProcessor({
      exporter: new OTLPTraceExporter(url ? { url } : {}),
    });
  }
  if (settings.metrics) {
    const { url, intervalMs } = settings.metrics;
    reader = new PeriodicExportingMetricReader({
      exporter: new OTLPMetricExporter(url ? { url } : {}),
      exportIntervalMillis: intervalMs,
      exportTimeoutMillis: Math.min(30_000, intervalMs),
      metricProducers: [
        new PromRegistryProducer(o.registry, {
          scopeName: 'tokenwatch',
          scopeVersion: VERSION,
          startTimeMs: (o.now ?? Date.now)(),
          beforeCollect: o.beforeCollect,
          now: o.now,
        }),
      ],
    });
  }
  const sdk = new NodeSDK({
    serviceName: settings.serviceName,
    resource: defaultResource().merge(resourceFromAttributes({ [ATTR_SERVICE_VERSION]: VERSION })),
    spanProcessors: spans ? [spans] : [],
    metricReaders: reader ? [reader] : [],
    // No global log pipeline: the audit stream (otel.logs) has its own exporter with a durable
    // cursor (audit-log-export.ts); an empty list keeps the SDK from building another.
    logRecordProcessors: [],
    // Only the service's own spans: no auto-instrumentation of http, ioredis or SQLite.
    instrumentations: [],
    textMapPropagator: null,
  });
  sdk.start();
  return { sdk, spans, reader };
}
