import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHECK_EVERY } from '../../src/audit/compact-encoder.js';
import { Ledger } from '../../src/audit/ledger.js';
import type { AuditInput } from '../../src/audit/record.js';
import { WORDS } from '../../src/audit/record-codec-vocabulary.js';
import type { EncodeMismatch } from '../../src/audit/row-writer.js';
import { verifyLedger } from '../../src/audit/verify.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { DIST_TIMEOUT_MS, ensureDist, ROOT } from './dist.js';
import { FakeClock, tempDir } from './helpers.js';

beforeAll(() => ensureDist(), DIST_TIMEOUT_MS); // the writer thread runs the compiled writer-worker.js

/**
 * A codec bug is simulated as in compact-encoder.test.ts: the decoder's word table says
 * something else than the encoder wrote, so the sampled decode check fails. What is checked
 * here is that the ledger says so (log, counter, state) with the range of records in doubt,
 * instead of leaving it to be found by an auditor's verify.
 */

const dist = (file: string): string => JSON.stringify(pathToFileURL(join(ROOT, 'dist', file)).href);

/**
 * The writer thread encodes in its own module instances, where the test's change of the word
 * table does not reach: this worker makes the same change in them, for the batches that hold
 * records 1 to `CHECK_EVERY + 2` (as the inline case does around them), before the real worker
 * sees each batch.
 */
function codecBugWorker(dir: string): URL {
  const file = join(dir, 'codec-bug-worker.mjs');
  writeFileSync(
    file,
    `import { workerData } from 'node:worker_threads';
     const { WORDS } = await import(${dist('audit/record-codec-vocabulary.js')});
     const at = WORDS.indexOf('redis');
     workerData.port.on('message', (m) => {
       if (m.op !== 'chain') return;
       const bug = m.inputs.some((r) => r.attrs?.i >= 1 && r.attrs.i <= ${CHECK_EVERY + 2});
       WORDS[at] = bug ? 'redis?' : 'redis';
     });
     await import(${dist('audit/writer-worker.js')});`,
  );
  return pathToFileURL(file);
}
describe.each([
  { writer: 'thread' as const, writerThread: true, encodes: 'writer' as const },
  { writer: 'thread' as const, writerThread: true, encodes: 'eventLoop' as const },
  { writer: 'inline' as const, writerThread: false, encodes: undefined },
])(
  'Ledger: a failed decode check of the compact encoding ($writer writer, encoded by $encodes)',
  (c) => {
    it('is logged with the records in doubt, counted in state() and the metric, and stored as text', async () => {
      const dir = tempDir();
      const lines: Record<string, unknown>[] = [];
      const logger = pino(
        { level: 'info' },
        { write: (l: string) => void lines.push(JSON.parse(l)) },
      );
      const seen: EncodeMismatch[] = [];
      const metrics = createMetrics(['access_token'], { defaultMetrics: false });
      const clock = new FakeClock();
      const ledger = new Ledger({
        path: join(dir, 'audit.db'),
        batchSize: 10_000,
        flushIntervalMs: 5,
        maxPending: 10_000,
        hmacKeyIds: ['k1'],
        writerThread: c.writerThread,
        ...(c.writerThread ? { writerWorker: codecBugWorker(dir), writerEncodes: c.encodes } : {}),
        now: clock.now,
        logger,
        onEncodeMismatch: (m) => {
          seen.push(m);
          metrics.auditEncodeMismatches.inc();
        },
      });
      expect(ledger.writer).toBe(c.writer);
      const record = (i: number): AuditInput => ({
        time: clock.now(),
        source: 'redis',
        type: 'token.written',
        kind: 'access_token',
        attrs: { i },
      });
      // The first compact record is checked (and passes): everything up to it is vouched for.
      await ledger.appendDurable([record(0)]);
      const checkedThrough = ledger.lastSeq;
      expect(ledger.state().encodeMismatches).toBe(0);

      const words = WORDS as string[];
      const i = words.indexOf('redis');
      try {
        words[i] = 'redis?'; // the decoder now disagrees with the encoder
        for (let k = 1; k <= CHECK_EVERY + 1; k++) ledger.append(record(k));
        await ledger.appendDurable([record(CHECK_EVERY + 2)]);
      } finally {
        words[i] = 'redis';
      }
      // The next sample (CHECK_EVERY records after the first) failed, and so did every record
      // after it, now that each is checked.
      const firstBad = checkedThrough + CHECK_EVERY;
      expect(seen[0]).toEqual({ seq: firstBad, suspectFrom: checkedThrough + 1 });
      expect(seen.map((m) => m.seq)).toEqual([firstBad, firstBad + 1, firstBad + 2]);
      expect(ledger.state().encodeMismatches).toBe(3);
      const counter = await metrics.registry.getSingleMetricAsString(
        'tokenwatch_audit_encoding_check_failures_total',
      );
      expect(counter).toMatch(/^tokenwatch_audit_encoding_check_failures_total 3$/m);
      const errors = lines.filter((l) => l.level === 50);
      expect(errors).toHaveLength(3);
      expect(errors[0]).toMatchObject({
        seq: firstBad,
        suspectFrom: checkedThrough + 1,
        suspectTo: firstBad - 1,
      });
      expect(String(errors[0]?.msg)).toMatch(/decode check/);

      // Back to a sound codec: records verify (the failed ones were stored as text), and records
      // after the failure are still checked one by one without complaint.
      await ledger.appendDurable([record(999)]);
      expect(ledger.state().encodeMismatches).toBe(3);
      ledger.close();
      const report = await verifyLedger({ dbPath: join(dir, 'audit.db'), trusted: [] });
      expect(report.problems).toEqual([]);
    });
  },
);
