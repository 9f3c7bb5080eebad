import { dirname, join } from 'node:path';
import {
  context,
  diag,
  DiagLogLevel,
  metrics,
  trace,
  type DiagLogFunction,
} from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { OtelConfig } from '../config/otel-schema.js';
import { VERSION } from '../version.js';
import type { AuditLogSettings } from './audit-log-export.js';
import type { StartedOtelSdk } from './otel-sdk.js';
import { Tracing } from './tracing.js';

/** What {@link resolveOtelSettings} decided to export; `undefined` = nothing. */
export interface OtelSettings {
  serviceName: string;
  /** Export spans; `url` unset = the exporter resolves `OTEL_EXPORTER_OTLP_*` itself. */
  traces: { url: string | undefined } | undefined;
  /** Push the Prometheus registry over OTLP every `intervalMs`. */
  metrics: { url: string | undefined; intervalMs: number } | undefined;
}

const isTrue = (v: string | undefined): boolean => v?.trim().toLowerCase() === 'true';
const has = (v: string | undefined): boolean => v !== undefined && v.trim() !== '';
const listHas = (v: string | undefined, item: string): boolean =>
  (v ?? '')
    .split(',')
    .map((x) => x.trim().toLowerCase())
    .includes(item);

/**
 * Decides what to export from the `otel` config section and the standard OTEL_* variables:
 *
 * - off when `OTEL_SDK_DISABLED=true` or `enabled: false`;
 * - `enabled` unset: on when any OTLP endpoint is configured (config, `OTEL_EXPORTER_OTLP_ENDPOINT`
 *   or a signal-specific `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT`);
 * - traces: unless `OTEL_TRACES_EXPORTER` says `none`; to `tracesEndpoint`, else wherever the
 *   OTLP exporter's env resolution points (default `http://localhost:4318/v1/traces`);
 * - metrics: only with an endpoint for them (`/metrics` already serves Prometheus; pushing to a
 *   default port nobody listens on is noise), unless `OTEL_METRICS_EXPORTER` says `none`.
 */
export function resolveOtelSettings(
  config: Readonly<OtelConfig>,
  env: NodeJS.ProcessEnv,
): OtelSettings | undefined {
  if (isTrue(env.OTEL_SDK_DISABLED) || config.enabled === false) return undefined;
  const envAny = has(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  const metricsEndpoint =
    config.metricsEndpoint !== undefined || envAny || has(env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT);
  const anyEndpoint =
    metricsEndpoint ||
    config.tracesEndpoint !== undefined ||
    has(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  if (config.enabled === undefined && !anyEndpoint) return undefined;
  const traces = listHas(env.OTEL_TRACES_EXPORTER, 'none')
    ? undefined
    : { url: config.tracesEndpoint };
  const intervalMs = Math.round(config.metricsIntervalSeconds * 1000);
  const metricsOut =
    metricsEndpoint && !listHas(env.OTEL_METRICS_EXPORTER, 'none')
      ? { url: config.metricsEndpoint, intervalMs }
      : undefined;
  if (!traces && !metricsOut) return undefined;
  return {
    serviceName: has(env.OTEL_SERVICE_NAME)
      ? (env.OTEL_SERVICE_NAME as string)
      : config.serviceName,
    traces,
    metrics: metricsOut,
  };
}

/**
 * Decides whether and where the audit stream goes as OTLP logs (`otel.logs`): off without the
 * section, with `logs.enabled: false`, `otel.enabled: false`, `OTEL_SDK_DISABLED=true` or
 * `OTEL_LOGS_EXPORTER=none`. Unlike traces, an `OTEL_EXPORTER_OTLP_ENDPOINT` alone does not
 * switch it on: shipping the audit trail off the host is a decision the config must state.
 */
export function resolveAuditLogSettings(
  config: Readonly<OtelConfig>,
  auditPath: string,
  env: NodeJS.ProcessEnv,
): AuditLogSettings | undefined {
  const logs = config.logs;
  if (!logs?.enabled || config.enabled === false || isTrue(env.OTEL_SDK_DISABLED)) return undefined;
  if (listHas(env.OTEL_LOGS_EXPORTER, 'none')) return undefined;
  return {
    url: logs.endpoint,
    serviceName: has(env.OTEL_SERVICE_NAME)
      ? (env.OTEL_SERVICE_NAME as string)
      : config.serviceName,
    batchSize: logs.batchSize,
    cursorFile: logs.cursorFile ?? join(dirname(auditPath), 'otlp-logs.cursor.json'),
    retryMaxMs: Math.round(logs.retryMaxSeconds * 1000),
    drainTimeoutMs: Math.round(logs.drainTimeoutSeconds * 1000),
    timeoutMs: Math.round(logs.timeoutSeconds * 1000),
  };
}

/** Options of {@link Telemetry}. */
export interface TelemetryOptions {
  config: Readonly<OtelConfig>;
  /** The one instrumentation: the same registry `/metrics` serves. */
  registry: Registry;
  logger: Logger;
  /**
   * Where the OTEL_* switches are read. Defaults to `process.env` because the OTLP exporters
   * read their endpoint, headers and timeouts from `process.env` themselves (OpenTelemetry
   * SDK environment variable spec), so the decision to export must look at the same place.
   */
  env?: NodeJS.ProcessEnv;
  /** Refresh scrape-time gauges before each OTLP collection. */
  beforeCollect?: () => void;
  now?: () => number;
}

/**
 * OpenTelemetry for tokenwatch: `@opentelemetry/sdk-node` with an OTLP/HTTP (JSON) span
 * exporter behind {@link Tracing}, and a periodic OTLP/HTTP metric export of the prom-client
 * registry through PromRegistryProducer (no second set of instruments).
 *
 * The SDK is imported only when something is exported (otel-sdk.ts): {@link start} decides at
 * once and returns; the SDK starts as soon as its modules are loaded (~0.1 s), and spans that
 * end before that are kept by {@link Tracing} and exported then. {@link flush} and
 * {@link shutdown} wait for it.
 *
 * The OpenTelemetry API is process-global (tracer, meter and context manager registration), so
 * at most one started Telemetry per process; {@link shutdown} unregisters it so that another
 * app (tests, the demo) can start after it.
 */
export class Telemetry {
  /** Hand this to the parts that trace; it is off until {@link start} and after shutdown. */
  readonly tracing = new Tracing();
  readonly #o: TelemetryOptions;
  /** The SDK starting (its modules loading) or started; undefined when off. */
  #sdk: Promise<StartedOtelSdk | undefined> | undefined;
  #ownDiag = false;
  #settings: OtelSettings | undefined;

  constructor(options: TelemetryOptions) {
    this.#o = options;
  }

  /** What is being exported (undefined before start or when off). */
  get settings(): OtelSettings | undefined {
    return this.#settings;
  }

  /**
   * Starts the SDK when the config and environment ask for export; otherwise does nothing (and
   * loads nothing of the SDK).
   */
  start(): void {
    if (this.#sdk) return;
    const o = this.#o;
    const env = o.env ?? process.env;
    const settings = resolveOtelSettings(o.config, env);
    if (!settings) return;
    this.#settings = settings;
    if (!has(env.OTEL_LOG_LEVEL)) {
      // Export failures would otherwise vanish: the SDK reports them only through `diag`.
      const warn: DiagLogFunction = (message, ...args) =>
        o.logger.warn({ otel: args.map(String).join(' ') || undefined }, message);
      const error: DiagLogFunction = (message, ...args) =>
        o.logger.error({ otel: args.map(String).join(' ') || undefined }, message);
      const quiet: DiagLogFunction = () => undefined;
      diag.setLogger(
        { error, warn, info: quiet, debug: quiet, verbose: quiet },
        { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
      );
      this.#ownDiag = true;
    }
    // Spans from now until the SDK is there are kept, not lost (the baseline starts at once).
    if (settings.traces) this.tracing.hold();
    const starting = import('./otel-sdk.js').then(
      ({ startOtelSdk }) => {
        const started = startOtelSdk(settings, o);
        if (started.spans) this.tracing.attach(trace.getTracer('tokenwatch', VERSION));
        o.logger.info(
          {
            traces: settings.traces ? (settings.traces.url ?? 'OTEL_EXPORTER_OTLP_*') : 'off',
            metrics: settings.metrics ? (settings.metrics.url ?? 'OTEL_EXPORTER_OTLP_*') : 'off',
            serviceName: settings.serviceName,
          },
          'OpenTelemetry export started',
        );
        return started;
      },
      (err: unknown) => {
        this.tracing.attach(undefined);
        o.logger.error({ err: (err as Error).message }, 'OpenTelemetry SDK failed to load');
        return undefined;
      },
    );
    this.#sdk = starting;
  }

  /** Exports pending spans and a metrics collection now. */
  async flush(): Promise<void> {
    const started = await this.#sdk;
    await Promise.all([started?.spans?.forceFlush(), started?.reader?.forceFlush()]);
  }

  /** Flushes, stops the SDK and unregisters the OpenTelemetry globals. Idempotent. */
  async shutdown(): Promise<void> {
    const starting = this.#sdk;
    if (!starting) return;
    const started = await starting;
    if (this.#sdk !== starting) return; // another shutdown got here first
    this.#sdk = undefined;
    this.tracing.attach(undefined);
    if (started) {
      try {
        await started.sdk.shutdown();
      } catch (err) {
        this.#o.logger.warn({ err: (err as Error).message }, 'OpenTelemetry shutdown failed');
      }
    }
    trace.disable();
    metrics.disable();
    context.disable();
    if (this.#ownDiag) diag.disable();
  }
}
