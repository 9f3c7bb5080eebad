import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ExportResultCode } from '@opentelemetry/core';
import type { LogRecordExporter } from '@opentelemetry/sdk-logs';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DAY_MS, pruneExpired } from '../../src/audit/retention.js';
import { createLogger } from '../../src/logger.js';
import { AuditLogExport, type AuditLogSettings } from '../../src/telemetry/audit-log-export.js';
import { appendRecords, openLedger, tempDir } from '../audit/helpers.js';
import { waitFor } from '../helpers/app-harness.js';

/** Collects the seqs of what it is given, as a collector that accepts everything would. */
function collectingExporter(seqs: number[]): LogRecordExporter {
  return {
    export(records, done) {
      for (const r of records) seqs.push(Number(r.attributes['tokenwatch.audit.seq']));
      done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve(),
  };
}

describe('the OTLP audit log stream over records that left the ledger before export', () => {
  it('reports the hole (seq range, counter) when retention pruned records it had not sent', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock, key } = openLedger(dir, { checkpointEvery: 50 });
    let logText = '';
    const logger = createLogger(
      'info',
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          logText += chunk.toString();
          cb();
        },
      }),
    );
    const settings: AuditLogSettings = {
      url: undefined,
      serviceName: 'tokenwatch',
      batchSize: 25,
      cursorFile: join(dir, 'otlp-logs.cursor.json'),
      retryMaxMs: 50,
      drainTimeoutMs: 2_000,
      timeoutMs: 2_000,
    };
    const seqs: number[] = [];
    const run = async (): Promise<Registry> => {
      const registry = new Registry();
      const stream = new AuditLogExport({
        settings,
        ledger,
        registry,
        logger,
        exporter: collectingExporter(seqs),
      });
      stream.start();
      await waitFor(() => stream.lag === 0, 15_000, 'the stream caught up');
      await stream.close();
      return registry;
    };
    try {
      appendRecords(ledger, clock, 40); // day 0
      await run();
      const exportedBefore = ledger.lastSeq;
      expect(seqs.at(-1)).toBe(exportedBefore);

      // The collector is away (tokenwatch stopped streaming) while the ledger grows and ages.
      appendRecords(ledger, clock, 80, 40); // day 0, sealed up to a checkpoint at 121
      clock.advance(200 * DAY_MS);
      appendRecords(ledger, clock, 60, 120); // day 200
      clock.advance(250 * DAY_MS); // day 450: the day-0 segments are past 400 days
      const purge = pruneExpired({ ledger, key, retentionDays: 400, now: clock.now });
      expect(purge?.fromSeq).toBe(1);
      const prunedTo = purge?.toSeq ?? 0;
      expect(prunedTo).toBeGreaterThan(exportedBefore);

      const registry = await run();
      const text = await registry.metrics();
      const skipped = Number(/^tokenwatch_otlp_logs_skipped_records_total (\d+)$/m.exec(text)?.[1]);
      expect(skipped).toBe(prunedTo - exportedBefore);
      const warning = logText.split('\n').find((l) => l.includes('the stream skips them'));
      expect(JSON.parse(warning ?? '{}')).toMatchObject({
        fromSeq: exportedBefore + 1,
        toSeq: prunedTo,
        records: prunedTo - exportedBefore,
      });
      // The stream went on after the hole, each record once, up to the purge record itself.
      const after = seqs.filter((s) => s > exportedBefore);
      expect(after[0]).toBe(prunedTo + 1);
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(seqs.at(-1)).toBe(ledger.lastSeq);
    } finally {
      checkpointer.close();
      ledger.close();
    }
  });
});
