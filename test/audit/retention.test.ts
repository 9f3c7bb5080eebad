import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { DAY_MS, pruneExpired, RetentionJob } from '../../src/audit/retention.js';
import { loadTrustedKey } from '../../src/audit/signing-keys.js';
import { verifyLedger } from '../../src/audit/verify.js';
import { appendRecords, openLedger, tamper, tempDir } from './helpers.js';

function verifyDir(dir: string) {
  return verifyLedger({
    dbPath: join(dir, 'audit.db'),
    checkpointLog: join(dir, 'checkpoints.jsonl'),
    trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
  });
}

describe('retention', () => {
  it('prunes only whole sealed segments older than retention, records the purge, and still verifies', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock, key } = openLedger(dir, { checkpointEvery: 50 });
    appendRecords(ledger, clock, 60); // checkpoints at 1 (start) and 61, on day 0
    appendRecords(ledger, clock, 60, 60); // checkpoint at 121, day 0
    clock.advance(200 * DAY_MS);
    appendRecords(ledger, clock, 60, 120); // records 122..181, checkpoint at 181 on day 200
    clock.advance(250 * DAY_MS); // day 450: day-0 segments are past 400 days, day-200 ones are not

    const result = pruneExpired({ ledger, key, retentionDays: 400, now: clock.now });
    expect(result).toMatchObject({ fromSeq: 1, toSeq: 121, records: 121, retentionDays: 400 });
    expect(result?.seq).toBe(182);
    const [purge] = ledger.list({ type: 'audit.retention_purge' });
    expect(purge?.attrs).toMatchObject({
      fromSeq: 1,
      toSeq: 121,
      chain: result?.chain,
      checkpoint: result?.checkpoint,
    });
    expect(ledger.db.prepare('SELECT MIN(seq) AS s FROM records').get()).toEqual({ s: 122 });
    // Nothing young enough is ever pruned, and a second pass finds nothing to do.
    expect(pruneExpired({ ledger, key, retentionDays: 400, now: clock.now })).toBeUndefined();
    checkpointer.close();
    ledger.close();

    const r = await verifyDir(dir);
    expect(r.problems).toEqual([]);
    expect(r.range).toEqual({ first: 122, last: 182 });
    expect(r.pruned).toEqual([{ fromSeq: 1, toSeq: 121, at: clock.now(), seq: 182 }]);
  });

  it('the DELETE trigger still rejects every other delete', () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock, key } = openLedger(dir, { checkpointEvery: 10 });
    appendRecords(ledger, clock, 30);
    clock.advance(500 * DAY_MS);
    pruneExpired({ ledger, key, retentionDays: 400, now: clock.now });
    expect(() =>
      ledger.db.prepare('DELETE FROM records WHERE seq = (SELECT MAX(seq) FROM records)').run(),
    ).toThrow(/append-only/);
    expect(ledger.db.prepare('SELECT COUNT(*) AS n FROM purge_guard').get()).toEqual({ n: 0 });
    checkpointer.close();
    ledger.close();
  });

  it('deleting early records without a purge record is reported as missing', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock } = openLedger(dir, { checkpointEvery: 10 });
    appendRecords(ledger, clock, 30);
    checkpointer.close();
    ledger.close();
    tamper(join(dir, 'audit.db'), (db) => db.prepare('DELETE FROM records WHERE seq <= 11').run());
    const r = await verifyDir(dir);
    expect(r.problems[0]).toMatchObject({ class: 'missing', seq: 1, toSeq: 11 });
  });

  it('a forged purge record in the unsealed tail does not cover deleted records', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock } = openLedger(dir, { checkpointEvery: 10 });
    appendRecords(ledger, clock, 25); // checkpoints at 1, 11, 21; records 22..26 unsealed
    // The attacker deletes 1..5 (not a checkpoint boundary) and appends a purge record claiming it.
    ledger.db.exec('DROP TRIGGER records_no_delete');
    const chain5 = (
      ledger.db.prepare('SELECT lower(hex(chain)) AS c FROM records WHERE seq = 5').get() as {
        c: string;
      }
    ).c;
    ledger.commitWith(
      [
        {
          time: clock.now(),
          source: 'system',
          type: 'audit.retention_purge',
          attrs: { fromSeq: 1, toSeq: 5, chain: chain5 },
        },
      ],
      (db) => db.prepare('DELETE FROM records WHERE seq <= 5').run(),
    );
    ledger.close(); // no shutdown checkpoint: the forged record stays unsealed
    checkpointer.close();
    const r = await verifyDir(dir);
    expect(r.ok).toBe(false);
    // Sealed (the ledger committed it), but no signed checkpoint ends the range at seq 5.
    expect(r.problems[0]).toMatchObject({ class: 'forged_purge', seq: 1, toSeq: 5 });
  });

  it('a purge of records younger than the signed retention is forged_purge, whatever retention the purge used', async () => {
    const run = async (purgeRetentionDays: number) => {
      const dir = tempDir();
      const { ledger, checkpointer, clock, key } = openLedger(dir, {
        checkpointEvery: 50,
        retentionDays: 400, // signed in every checkpoint
      });
      appendRecords(ledger, clock, 60);
      clock.advance(30 * DAY_MS);
      appendRecords(ledger, clock, 60, 60);
      // The key holder's own job, run with a shorter retention than the one signed: the records
      // it removes are 30 days old, the signed retention says 400.
      const result = pruneExpired({
        ledger,
        key,
        retentionDays: purgeRetentionDays,
        now: clock.now,
      });
      expect(result?.fromSeq).toBe(1);
      checkpointer.close();
      ledger.close();
      return verifyDir(dir);
    };
    const young = await run(10);
    expect(young.ok).toBe(false);
    expect(young.problems).toEqual([
      expect.objectContaining({
        class: 'forged_purge',
        seq: 1,
        detail: expect.stringMatching(/less than the signed retention of 400 days/) as string,
      }),
    ]);
    expect(young.retention).toMatchObject({ days: 400 });
  });

  it('a purge whose checkpoint is missing from the external log → forged_purge', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock, key } = openLedger(dir, {
      checkpointEvery: 50,
      retentionDays: 1,
    });
    appendRecords(ledger, clock, 60); // checkpoints at 1 and 61
    clock.advance(2 * DAY_MS);
    appendRecords(ledger, clock, 10, 60);
    const result = pruneExpired({ ledger, key, retentionDays: 1, now: clock.now });
    expect(result).toMatchObject({ fromSeq: 1, toSeq: 61 });
    checkpointer.close();
    ledger.close();
    expect((await verifyDir(dir)).problems).toEqual([]);
    // The same file against a log that never held checkpoint #2 (seq 61).
    const log = join(dir, 'checkpoints.jsonl');
    const kept = readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l !== '' && (JSON.parse(l) as { n: number }).n !== 2);
    writeFileSync(log, kept.map((l) => `${l}\n`).join(''));
    const r = await verifyDir(dir);
    expect(r.problems.map((p) => p.class)).toContain('forged_purge');
    expect(r.problems.find((p) => p.class === 'forged_purge')?.detail).toMatch(
      /not in the external checkpoint log/,
    );
  });

  it('RetentionJob prunes at start and logs nothing when there is nothing to prune', () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock, key } = openLedger(dir, { checkpointEvery: 10 });
    appendRecords(ledger, clock, 20);
    clock.advance(401 * DAY_MS);
    const job = new RetentionJob({ ledger, key, retentionDays: 400, now: clock.now });
    job.start();
    job.close();
    expect(ledger.list({ type: 'audit.retention_purge' })).toHaveLength(1);
    checkpointer.close();
    ledger.close();
    const db = new Database(join(dir, 'audit.db'), { readonly: true });
    expect((db.prepare('SELECT MIN(seq) AS s FROM records').get() as { s: number }).s).toBe(22);
    db.close();
  });
});

describe('retention in slices', () => {
  it('cuts a large backlog in several whole-segment passes that all verify', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock, key } = openLedger(dir, { checkpointEvery: 20 });
    for (let i = 0; i < 10; i++) appendRecords(ledger, clock, 20, i * 20); // a checkpoint per 20
    clock.advance(401 * DAY_MS);
    const passes: [number, number][] = [];
    for (
      let r = pruneExpired({
        ledger,
        key,
        retentionDays: 400,
        now: clock.now,
        maxRecordsPerPass: 50,
      });
      r;
    ) {
      passes.push([r.fromSeq, r.toSeq]);
      expect(r.toSeq - r.fromSeq + 1).toBeLessThanOrEqual(50);
      r = pruneExpired({ ledger, key, retentionDays: 400, now: clock.now, maxRecordsPerPass: 50 });
    }
    // Each pass ends on a checkpoint and the next one starts right after it (purge records included).
    expect(passes.length).toBeGreaterThan(3);
    for (let i = 1; i < passes.length; i++) expect(passes[i]![0]).toBe(passes[i - 1]![1] + 1);
    checkpointer.close();
    ledger.close();
    const r = await verifyDir(dir);
    expect(r.problems).toEqual([]);
    expect(r.pruned.length).toBeGreaterThan(0);
  });
});
