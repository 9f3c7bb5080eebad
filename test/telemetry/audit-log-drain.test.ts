import { join } from 'node:path';
import { ExportResultCode } from '@opentelemetry/core';
import type { LogRecordExporter } from '@opentelemetry/sdk-logs';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { AuditLogExport, type AuditLogSettings } from '../../src/telemetry/audit-log-export.js';
import { appendRecords, openLedger, tempDir } from '../audit/helpers.js';
import { waitFor } from '../helpers/app-harness.js';

describe('the OTLP audit log stream at shutdown', () => {
  it('drains what committed before close() though an export fails on the way, within its deadline', async () => {
    const dir = tempDir();
    const { ledger, clock } = openLedger(dir);
    const settings: AuditLogSettings = {
      url: undefined,
      serviceName: 'tokenwatch',
      batchSize: 7,
      cursorFile: join(dir, 'otlp-logs.cursor.json'),
      retryMaxMs: 50,
      drainTimeoutMs: 5_000,
      timeoutMs: 2_000,
    };
    const seqs: number[] = [];
    let closing = false;
    let failedOnce = false;
    // A collector that drops one request once the shutdown began (a keep-alive socket closed
    // under the request, say), then accepts again.
    const exporter: LogRecordExporter = {
      export(records, done) {
        if (closing && !failedOnce) {
          failedOnce = true;
          done({ code: ExportResultCode.FAILED, error: new Error('socket hang up') });
          return;
        }
        for (const r of records) seqs.push(Number(r.attributes['tokenwatch.audit.seq']));
        done({ code: ExportResultCode.SUCCESS });
      },
      shutdown: () => Promise.resolve(),
      forceFlush: () => Promise.resolve(),
    };
    const stream = new AuditLogExport({
      settings,
      ledger,
      registry: new Registry(),
      logger: pino({ level: 'silent' }),
      exporter,
    });
    appendRecords(ledger, clock, 10);
    ledger.flush();
    stream.start();
    await waitFor(() => stream.lag === 0, 15_000, 'the stream caught up');
    // The shutdown's records commit, then the stream closes: one export of them fails.
    appendRecords(ledger, clock, 45, 10);
    ledger.flush();
    closing = true;
    const started = Date.now();
    await stream.close();
    expect(failedOnce).toBe(true);
    expect(seqs).toEqual(Array.from({ length: ledger.lastSeq }, (_, i) => i + 1));
    expect(Date.now() - started).toBeLessThan(settings.drainTimeoutMs);
    ledger.close();
  });
});
