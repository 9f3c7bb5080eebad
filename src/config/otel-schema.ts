import { z } from 'zod';

const httpUrl = z
  .string()
  .regex(/^https?:\/\/[^\s/]/, 'must be an http:// or https:// URL')
  .max(2048);

/**
 * `otel`: OpenTelemetry export of traces and of the Prometheus metrics over OTLP/HTTP (JSON).
 * The standard `OTEL_*` variables apply on top (`OTEL_EXPORTER_OTLP_ENDPOINT`,
 * `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
 * `OTEL_TRACES_EXPORTER=none`, `OTEL_METRICS_EXPORTER=none`, `OTEL_SDK_DISABLED`, ...); see
 * config/README.md and src/telemetry/otel.ts for how they combine.
 */
export const otelSchema = z.strictObject({
  /**
   * true: export; false: never export. Unset: export when an OTLP endpoint is configured here
   * or through `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT`.
   */
  enabled: z.boolean().optional(),
  /** `service.name` resource attribute (`OTEL_SERVICE_NAME` overrides it). */
  serviceName: z.string().min(1).max(128).default('tokenwatch'),
  /** Full OTLP/HTTP traces URL, e.g. `http://collector:4318/v1/traces`. */
  tracesEndpoint: httpUrl.optional(),
  /** Full OTLP/HTTP metrics URL, e.g. `http://collector:4318/v1/metrics`. */
  metricsEndpoint: httpUrl.optional(),
  /** How often the metrics are pushed over OTLP, seconds. */
  metricsIntervalSeconds: z.number().positive().max(3600).default(60),
});

/** The validated `otel` config section. */
export type OtelConfig = z.infer<typeof otelSchema>;
