import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import type { Counter, Registry } from 'prom-client';
import { registerOtlpLogsMetrics } from '../metrics/otlp-logs-metrics.js';
import type { Ledger } from '../audit/ledger.js';
import type { OtelConfig } from '../config/otel-schema.js';
import { VERSION } from '../version.js';
import { toLogRecord, type AuditLogContext } from './audit-log-record.js';
import { readCursor, writeCursor, type LogCursor } from './log-cursor.js';
import { createOtlpLogExporter, type LogsRejection } from './otlp-log-exporter.js';
import { resolveAuditLogSettings } from './otel.js';

/** Resolved `otel.logs` settings (see resolveAuditLogSettings in otel.ts). */
export interface AuditLogSettings {
  /** Full OTLP/HTTP logs URL; unset: the exporter resolves `OTEL_EXPORTER_OTLP_*` itself. */
  url: string | undefined;
  serviceName: string;
  batchSize: number;
  cursorFile: string;
  retryMaxMs: number;
  drainTimeoutMs: number;
  /** Longest one export may take, its own retries included (OTLP exporter timeoutMillis). */
  timeoutMs: number;
}

/**
 * The audit stream exporter when `otel.logs` asks for one, else undefined. `env` defaults to
 * `process.env` for the same reason as in Telemetry (otel.ts): the OTLP exporter reads its
 * endpoint, headers and timeout from there itself.
 */
export function createAuditLogExport(
  o: Omit<AuditLogExportOptions, 'settings'> & {
    config: Readonly<OtelConfig>;
    auditPath: string;
    env?: NodeJS.ProcessEnv;
  },
): AuditLogExport | undefined {
  const settings = resolveAuditLogSettings(o.config, o.auditPath, o.env ?? process.env);
  return settings ? new AuditLogExport({ ...o, settings }) : undefined;
}

export interface AuditLogExportOptions {
  settings: AuditLogSettings;
  ledger: Ledger;
  registry: Registry;
  logger: Logger;
  /**
   * Injected by tests; default an OTLP/HTTP (JSON) logs exporter for `settings.url` that
   * reports the collector's partial successes (otlp-log-exporter.ts).
   */
  exporter?: LogRecordExporter;
}

const RETRY_FIRST_MS = 500;

/**
 * Streams every committed audit record to an OpenTelemetry collector as a log record
 * (OTLP/HTTP), after commit and in seq order, at least once and in practice exactly once.
 *
 * The queue is the ledger itself: commit notifications only wake the pump, which reads the next
 * `batchSize` records after its cursor from the database, exports them, and only then moves and
 * persists the cursor. Memory stays bounded by one batch however long the collector is down,
 * nothing committed can be dropped (SOC 2 CC7.2: the monitoring trail must be complete), and a
 * restart resumes from the persisted cursor. A record is exported twice only when the collector
 * accepted a batch whose acknowledgement never arrived (the request timed out, or the process
 * died before the cursor reached the disk); each record carries `tokenwatch.ledger.id` and
 * `tokenwatch.audit.seq`, so the far side can drop such a repeat.
 *
 * Trust: the cursor file is a claim, not evidence. It is honoured only when it names this
 * ledger and its chain hash equals the ledger's at that seq (or the record was purged by
 * retention, so nothing at or before it is left to send); otherwise the stream restarts from the
 * first record (duplicates rather than a silent hole) and says why. Someone who can write the
 * state directory and read the database could still forge a cursor that skips records; the
 * ledger, its checkpoints and a gap in the streamed seqs still show it.
 */
export class AuditLogExport {
  readonly #o: AuditLogExportOptions;
  readonly #exporter: LogRecordExporter;
  readonly #ctx: AuditLogContext;
  readonly #exported: Counter;
  readonly #failures: Counter;
  readonly #rejected: Counter;
  readonly #skipped: Counter;
  /** The partial success of the export in flight (one at a time), if the collector sent one. */
  #rejection: LogsRejection | undefined;
  #cursor: LogCursor | undefined;
  #running = false;
  #pumping: Promise<void> | undefined;
  #soon: NodeJS.Immediate | undefined;
  /** Set by close(): no new export starts after this time. */
  #stopBy: number | undefined;
  #again = false;
  #retry: NodeJS.Timeout | undefined;
  #failStreak = 0;

  constructor(o: AuditLogExportOptions) {
    this.#o = o;
    const url = o.settings.url;
    this.#exporter =
      o.exporter ??
      createOtlpLogExporter({
        url,
        timeoutMs: o.settings.timeoutMs,
        onPartialSuccess: (r) => {
          this.#rejection = r;
        },
      });
    const resource = defaultResource()
      .merge(detectResources({ detectors: [envDetector] }))
      .merge(
        resourceFromAttributes({
          [ATTR_SERVICE_NAME]: o.settings.serviceName,
          [ATTR_SERVICE_VERSION]: VERSION,
        }),
      );
    this.#ctx = {
      ledgerId: o.ledger.state().ledgerId,
      productVersion: VERSION,
      resource,
      scope: { name: 'tokenwatch.audit', version: VERSION },
    };
    const metrics = registerOtlpLogsMetrics(o.registry, () => this.lag);
    this.#exported = metrics.exported;
    this.#failures = metrics.failures;
    this.#rejected = metrics.rejected;
    this.#skipped = metrics.skipped;
  }

  /** Committed records the collector has not acknowledged yet. */
  get lag(): number {
    if (this.#o.ledger.closed) return 0;
    return Math.max(0, this.#o.ledger.lastSeq - (this.#cursor?.seq ?? 0));
  }

  /** Last seq the collector acknowledged (0 before the first). */
  get exportedSeq(): number {
    return this.#cursor?.seq ?? 0;
  }

  /** Validates the persisted cursor against the ledger and starts streaming. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#cursor = this.#trustedCursor();
    this.#o.logger.info(
      {
        url: this.#o.settings.url ?? 'OTEL_EXPORTER_OTLP_*',
        fromSeq: (this.#cursor?.seq ?? 0) + 1,
        lag: this.lag,
      },
      'OTLP audit log export started',
    );
    this.notify();
  }

  /**
   * A batch committed: export it (and whatever is behind) soon. Cheap on the commit path: the
   * read and the encoding run on a later turn of the event loop, never inside the commit.
   */
  notify(): void {
    if (!this.#running || this.#retry || this.#soon) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#soon = setImmediate(() => {
      this.#soon = undefined;
      void this.#kick();
    });
  }

  /** Starts the pump unless it runs; resolves when it stops. */
  #kick(): Promise<void> {
    this.#pumping ??= this.#pump().finally(() => {
      this.#pumping = undefined;
    });
    return this.#pumping;
  }

  /**
   * Exports what is committed until caught up, the collector fails, or `timeoutMs` passes, then
   * stops; what is left goes out after the next start (the cursor says where). An export in
   * flight is waited for, not abandoned (the exporter's `timeoutSeconds` bounds it): abandoned,
   * it could still land after the next start read the cursor, and its records would arrive
   * twice. So shutdown takes at most `drainTimeoutSeconds` + `timeoutSeconds`. Idempotent.
   */
  async close(timeoutMs = this.#o.settings.drainTimeoutMs): Promise<void> {
    if (!this.#running) return;
    this.#stopBy = Date.now() + timeoutMs;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = undefined;
    if (this.#soon) clearImmediate(this.#soon);
    this.#soon = undefined;
    // Until the deadline, what is committed goes out: a failed export is tried again (a collector
    // that drops one request, a keep-alive socket closed under it, is not down), and a pump that
    // ended just before the last commit is followed by a fresh one. CI once stopped at 19 of 64
    // records when a single attempt that moved nothing ended the drain.
    let stalls = 0;
    while (this.#draining() && this.lag > 0 && stalls < 2) {
      this.#failStreak = 0;
      const before = this.exportedSeq;
      await this.#kick();
      if (this.exportedSeq !== before) {
        stalls = 0;
        continue;
      }
      if (this.#failStreak > 0) {
        // Failed: again after a pause, within the deadline (stopBy bounds new attempts).
        const pause = Math.min(RETRY_FIRST_MS, (this.#stopBy ?? 0) - Date.now());
        if (pause > 0) await new Promise((r) => setTimeout(r, pause));
      } else stalls += 1; // nothing read: once more with a fresh read, then it is all there was
    }
    this.#running = false;
    await this.#pumping;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = undefined;
    const left = this.lag;
    if (left > 0)
      this.#o.logger.warn(
        { lag: left, exportedSeq: this.exportedSeq },
        'OTLP audit log export stopped behind the ledger; it resumes from the cursor at next start',
      );
    try {
      await this.#exporter.shutdown();
    } catch (err) {
      this.#o.logger.warn({ err: (err as Error).message }, 'OTLP logs exporter shutdown failed');
    }
  }

  /** Running, and (while closing) before the drain deadline: new exports may start. */
  #draining(): boolean {
    return this.#running && (this.#stopBy === undefined || Date.now() < this.#stopBy);
  }

  async #pump(): Promise<void> {
    const { ledger, settings } = this.#o;
    do {
      this.#again = false;
      while (this.#draining() && !ledger.closed) {
        const after = this.#cursor?.seq ?? 0;
        const rows = ledger.store.chainedAfter(after, settings.batchSize);
        const last = rows.at(-1);
        if (!last) break;
        // Seqs are dense; a hole means records left the ledger (retention, archive) first.
        const firstSeq = rows[0]?.seq ?? last.seq;
        this.#rejection = undefined;
        const result = await this.#export(rows.map((r) => toLogRecord(r, this.#ctx)));
        if (result.code !== ExportResultCode.SUCCESS) {
          this.#failed(result.error);
          return;
        }
        const rejected = this.#partialSuccess(rows.length, firstSeq, last.seq);
        if (firstSeq > after + 1) this.#skippedRange(after + 1, firstSeq - 1);
        this.#cursor = { ledgerId: this.#ctx.ledgerId, seq: last.seq, chain: last.chain };
        this.#exported.inc(rows.length - rejected);
        this.#failStreak = 0;
        try {
          writeCursor(settings.cursorFile, this.#cursor);
        } catch (err) {
          // The records reached the collector; only a restart would send them again.
          this.#o.logger.warn(
            { err: (err as Error).message, path: settings.cursorFile },
            'cannot persist the OTLP audit log cursor',
          );
        }
      }
    } while (this.#again && this.#draining());
  }

  /**
   * Reports what the collector rejected from the batch `fromSeq`..`toSeq` it otherwise accepted
   * (OTLP partial success) and returns how many records that was. They are not sent again: the
   * OTLP spec says the client MUST NOT retry such a request (the data would be rejected again,
   * and the accepted part would arrive twice). They stay in the ledger; the counter and the
   * warning, with the seq range, are how an operator learns the SIEM lacks them.
   */
  #partialSuccess(batch: number, fromSeq: number, toSeq: number): number {
    const r = this.#rejection;
    this.#rejection = undefined;
    if (!r) return 0;
    const rejected = Math.min(r.records, batch);
    if (rejected > 0) this.#rejected.inc(rejected);
    this.#o.logger.warn(
      { rejected, fromSeq, toSeq, collectorMessage: r.message },
      rejected > 0
        ? 'the OTLP collector rejected audit log records of this batch (partial success); not retried, as OTLP requires'
        : 'the OTLP collector accepted the audit log batch with a warning (partial success)',
    );
    return rejected;
  }

  /**
   * Records `fromSeq`..`toSeq` were pruned by retention or moved to archive files before the
   * collector had them (an outage longer than `audit.archive.afterDays`, or `otel.logs` turned
   * on for an older ledger): they can no longer be streamed. Said once, after the batch behind
   * the hole was acknowledged; the `audit.retention_purge` / `audit.archived` record in the
   * stream names the same range to the far side.
   */
  #skippedRange(fromSeq: number, toSeq: number): void {
    this.#skipped.inc(toSeq - fromSeq + 1);
    this.#o.logger.warn(
      { fromSeq, toSeq, records: toSeq - fromSeq + 1 },
      'audit records left the ledger (retention or archive) before the OTLP collector had them; the stream skips them',
    );
  }

  #export(records: ReadableLogRecord[]): Promise<ExportResult> {
    return new Promise((resolve) => {
      try {
        this.#exporter.export(records, resolve);
      } catch (err) {
        resolve({ code: ExportResultCode.FAILED, error: err as Error });
      }
    });
  }

  #failed(error: Error | undefined): void {
    this.#failures.inc();
    this.#failStreak++;
    const delay = Math.min(
      this.#o.settings.retryMaxMs,
      RETRY_FIRST_MS * 2 ** Math.min(this.#failStreak - 1, 20),
    );
    // One warning when the collector goes away, then debug: a long outage must not flood logs.
    const level = this.#failStreak === 1 ? 'warn' : 'debug';
    this.#o.logger[level](
      { err: error?.message, retryInMs: delay, lag: this.lag },
      'OTLP audit log export failed; retrying from the same record',
    );
    // Closing: the drain loop retries by itself, within its deadline.
    if (!this.#running || this.#stopBy !== undefined) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.notify();
    }, delay);
    this.#retry.unref();
  }

  #trustedCursor(): LogCursor | undefined {
    const { ledger, settings, logger } = this.#o;
    const read = readCursor(settings.cursorFile);
    if (!read.ok) {
      if (read.reason !== 'missing')
        logger.warn(
          { path: settings.cursorFile, reason: read.reason },
          'OTLP audit log cursor ignored: exporting from the first record',
        );
      return undefined;
    }
    const c = read.cursor;
    let problem: string | undefined;
    if (c.ledgerId !== this.#ctx.ledgerId) problem = 'cursor of another ledger';
    else if (c.seq > ledger.lastSeq) problem = 'cursor ahead of the ledger';
    else {
      const chain = ledger.store.chainAt(c.seq);
      // Purged by retention: nothing at or before that seq is left to export.
      if (chain !== undefined && chain !== c.chain) problem = 'chain hash differs from the ledger';
    }
    if (problem) {
      logger.warn(
        { path: settings.cursorFile, reason: problem, claimedSeq: c.seq },
        'OTLP audit log cursor refused: exporting from the first record',
      );
      return undefined;
    }
    return c;
  }
}
