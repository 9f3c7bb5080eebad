import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeExpiredArchives } from '../../src/audit/archive-retention.js';
import { DAY_MS, RetentionJob } from '../../src/audit/retention.js';
import { loadTrustedKey } from '../../src/audit/signing-keys.js';
import { verifyLedger } from '../../src/audit/verify.js';
import { archivedLedger, type Archived } from './archive-helpers.js';
import { appendRecords, openLedger, tamper } from './helpers.js';

/** Reopens the archived ledger `days` later and signs a checkpoint there (a running service). */
function later(a: Archived, days: number) {
  a.clock.advance(days * DAY_MS);
  const opened = openLedger(a.dir, { clock: a.clock, checkpointEvery: 50, retentionDays: 400 });
  appendRecords(opened.ledger, a.clock, 60, 400); // past checkpointEvery: a checkpoint on that day
  return opened;
}

function verifyArchived(a: Archived) {
  return verifyLedger({
    dbPath: a.dbPath,
    checkpointLog: join(a.dir, 'checkpoints.jsonl'),
    trusted: [loadTrustedKey(join(a.dir, 'signing.pub'))],
    archiveDir: a.archiveDir,
  });
}

describe('archive retention', () => {
  it('removes the archive files past retention, records it, and verify --archive still passes', async () => {
    const a = archivedLedger();
    // Day 450: archives 1 and 2 (sealed on day 0) are past 400 days; 122..243 (day 200) is not.
    const { ledger, checkpointer, key } = later(a, 150);
    const job = new RetentionJob({
      ledger,
      retentionDays: 400,
      now: a.clock.now,
      key,
      archive: { dir: a.archiveDir },
    });
    job.runNow();
    expect(a.files.map((f) => existsSync(f))).toEqual([false, false, true]);
    const [record] = ledger.list({ type: 'audit.archive_expired' });
    expect(record?.attrs).toMatchObject({
      files: [
        expect.objectContaining({ fromSeq: 1, toSeq: 61 }),
        expect.objectContaining({ fromSeq: 62, toSeq: 121 }),
      ],
      retentionDays: 400,
    });
    expect(
      removeExpiredArchives({ ledger, retentionDays: 400, dir: a.archiveDir, key }),
    ).toBeUndefined();
    job.close();
    checkpointer.close();
    ledger.close();
    const r = await verifyArchived(a);
    expect(r.problems).toEqual([]);
    expect(r.warnings.filter((w) => /past the signed retention/.test(w))).toHaveLength(2);
  });

  it('a checkpoint time edited by a DB writer does not make a young archive file expire', () => {
    const a = archivedLedger();
    const { ledger, checkpointer, key } = later(a, 150);
    checkpointer.close();
    ledger.close();
    // The checkpoint at the end of the third archive (day 200) claims day 0.
    const toSeq = Number(/-(\d{12})\.twa\.gz$/.exec(a.files[2] ?? '')?.[1]);
    tamper(a.dbPath, (db) => {
      const { changes } = db
        .prepare('UPDATE checkpoints SET time = ? WHERE seq = ?')
        .run(Date.UTC(2026, 0, 1), toSeq);
      expect(changes).toBe(1);
    });
    const again = openLedger(a.dir, { clock: a.clock, checkpointEvery: 50, retentionDays: 400 });
    try {
      const r = removeExpiredArchives({
        ledger: again.ledger,
        retentionDays: 400,
        dir: a.archiveDir,
        key,
      });
      expect(r?.files.map((f) => f.toSeq)).toEqual([61, 121]);
      expect(existsSync(a.files[2] ?? '')).toBe(true);
    } finally {
      again.checkpointer.close();
      again.ledger.close();
    }
  });
});
