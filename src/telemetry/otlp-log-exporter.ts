import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
} from '@opentelemetry/otlp-exporter-base/node-http';
import {
  JsonLogsSerializer,
  LogsExporterMetricsHelper,
  type IExportLogsServiceResponse,
  type ISerializer,
} from '@opentelemetry/otlp-transformer';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';

/** What a collector said it dropped from an accepted request (OTLP partial success). */
export interface LogsRejection {
  /** `rejected_log_records`: 0 when the collector only sent a warning. */
  records: number;
  /** `error_message`, as the collector wrote it (capped). */
  message: string;
}

const MESSAGE_MAX = 500;

/**
 * The partial success in an ExportLogsServiceResponse, if any. In the JSON encoding an int64
 * may arrive as a string (OTLP/JSON: "64 bit integers ... as decimal strings").
 */
export function rejectionOf(
  response: IExportLogsServiceResponse | null | undefined,
): LogsRejection | undefined {
  const p = response?.partialSuccess;
  if (p === null || typeof p !== 'object') return undefined;
  const n = Number(p.rejectedLogRecords ?? 0);
  const records = Number.isSafeInteger(n) && n > 0 ? n : 0;
  const message = typeof p.errorMessage === 'string' ? p.errorMessage.slice(0, MESSAGE_MAX) : '';
  return records > 0 || message !== '' ? { records, message } : undefined;
}

/**
 * The OTLP/HTTP (JSON) logs exporter, built from the same parts as
 * `@opentelemetry/exporter-logs-otlp-http`'s OTLPLogExporter (transport with the OTLP retry
 * policy, `OTEL_EXPORTER_OTLP_*` resolution, JSON serializer), plus one thing that one lacks:
 * the collector's partial success reaches `onPartialSuccess`. The stock exporter reports a
 * partial success as plain success and only writes it to the OpenTelemetry diagnostic log, so
 * records a collector rejected would count as delivered without a trace. The OTLP spec forbids
 * retrying them (OTLP/HTTP "Partial Success": the client MUST NOT retry), so the caller can only
 * count and report them; it must know. Called before the export's result callback.
 */
export function createOtlpLogExporter(o: {
  /** Full logs URL; unset: `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  url: string | undefined;
  /** One export, the transport's own retries included. */
  timeoutMs: number;
  onPartialSuccess(rejection: LogsRejection): void;
}): LogRecordExporter {
  const serializer: ISerializer<ReadableLogRecord[], IExportLogsServiceResponse> = {
    serializeRequest: (records) => JsonLogsSerializer.serializeRequest(records),
    deserializeResponse(data) {
      const response = JsonLogsSerializer.deserializeResponse(data);
      const rejection = rejectionOf(response);
      if (rejection) o.onPartialSuccess(rejection);
      return response;
    },
  };
  const options = convertLegacyHttpOptions(
    {
      ...(o.url ? { url: o.url } : {}),
      timeoutMillis: o.timeoutMs,
      // One request at a time: the cursor moves in seq order, and a partial success belongs to
      // the one export in flight.
      concurrencyLimit: 1,
    },
    'LOGS',
    'v1/logs',
    { 'Content-Type': 'application/json' },
  );
  return new OTLPExporterBase(
    createOtlpHttpExportDelegate(
      options,
      serializer,
      'otlp_http_log_exporter',
      LogsExporterMetricsHelper,
      undefined,
    ),
  );
}
