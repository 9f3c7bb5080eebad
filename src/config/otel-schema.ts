import { z } from 'zod';

const httpUrl = z
  .string()
  .regex(/^https?:\/\/[^\s/]/, 'must be an http:// or https:// URL')
  .max(2048);

/**
 * `otel.logs`: every committed audit record also goes to an OpenTelemetry collector as an OTLP
 * log record (after commit, in seq order, resumed from a persisted cursor after an outage or a
 * restart). Present = on, unless `enabled: false`, `otel.enabled: false`, `OTEL_SDK_DISABLED` or
 * `OTEL_LOGS_EXPORTER=none`.
 */
export const otelLogsSchema = z.strictObject({
  /** false keeps the section but exports nothing. */
  enabled: z.boolean().default(true),
  /**
   * Full OTLP/HTTP logs URL, e.g. `http://collector:4318/v1/logs`. Unset:
   * `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/logs`, else
   * `http://localhost:4318/v1/logs`.
   */
  endpoint: httpUrl.optional(),
  /** Most records per OTLP request (also the most held in memory). */
  batchSize: z.number().int().min(1).max(10_000).default(512),
  /**
   * File holding the last exported seq (and its chain hash). Default `otlp-logs.cursor.json`
   * beside the audit database.
   */
  cursorFile: z.string().min(1).max(4096).optional(),
  /** Longest wait between retries while the collector fails, seconds (backoff from 0.5 s). */
  retryMaxSeconds: z.number().positive().max(3600).default(30),
  /** At shutdown, how long to keep exporting what is committed before giving up, seconds. */
  drainTimeoutSeconds: z.number().min(0).max(300).default(5),
  /**
   * Longest one OTLP request may take with the exporter's own retries, seconds. An export in
   * flight at shutdown is waited for, so shutdown takes up to drainTimeoutSeconds + this.
   */
  timeoutSeconds: z.number().positive().max(120).default(10),
});

/** The validated `otel.logs` config section. */
export type OtelLogsConfig = z.infer<typeof otelLogsSchema>;

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
  /** The audit stream as OTLP log records; absent = off. See {@link otelLogsSchema}. */
  logs: otelLogsSchema.optional(),
});

/** The validated `otel` config section. */
export type OtelConfig = z.infer<typeof otelSchema>;
