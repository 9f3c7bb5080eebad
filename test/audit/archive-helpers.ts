import { join } from 'node:path';
import { expect } from 'vitest';
import { archiveExpired } from '../../src/audit/archive.js';
import { DAY_MS } from '../../src/audit/retention.js';
import { appendRecords, openLedger, tempDir, type FakeClock } from './helpers.js';

export interface Archived {
  dir: string;
  dbPath: string;
  archiveDir: string;
  clock: FakeClock;
  files: string[];
}

/**
 * Genesis + 180 records over 200 days, 30-day archive: three passes at two times, the third
 * taking the range that holds the first two passes' `audit.archived` records (so verify finds
 * those inside the third file), closed with a shutdown checkpoint.
 */
export function archivedLedger(): Archived {
  const dir = tempDir();
  const archiveDir = join(dir, 'archive');
  const { ledger, checkpointer, clock, key } = openLedger(dir, {
    checkpointEvery: 50,
    retentionDays: 400,
  });
  appendRecords(ledger, clock, 60); // checkpoints at 1 (start) and 61
  appendRecords(ledger, clock, 60, 60); // checkpoint at 121
  clock.advance(100 * DAY_MS);
  appendRecords(ledger, clock, 60, 120); // checkpoint at 181 on day 100
  const opts = { ledger, key, afterDays: 30, dir: archiveDir, now: clock.now };
  const first = archiveExpired({ ...opts, maxRecordsPerPass: 61 });
  const second = archiveExpired({ ...opts, maxRecordsPerPass: 61 });
  expect(first).toMatchObject({ fromSeq: 1, toSeq: 61, records: 61 });
  expect(second).toMatchObject({ fromSeq: 62, toSeq: 121, prevChain: first?.chain });
  expect(archiveExpired(opts)).toBeUndefined(); // day-100 segments are younger than 30 days
  clock.advance(100 * DAY_MS);
  appendRecords(ledger, clock, 60, 180);
  clock.advance(100 * DAY_MS);
  appendRecords(ledger, clock, 5, 240);
  const third = archiveExpired(opts);
  expect(third?.fromSeq).toBe(122);
  expect(third?.toSeq).toBeGreaterThan(second?.seq ?? Infinity); // holds both archive records
  checkpointer.close();
  ledger.close();
  const files = [first, second, third].map((r) => join(archiveDir, r?.file ?? ''));
  return { dir, dbPath: join(dir, 'audit.db'), archiveDir, clock, files };
}
