import { appendFileSync, copyFileSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { DAY_MS, pruneExpired } from '../../src/audit/retention.js';
import { loadTrustedKey } from '../../src/audit/signing-keys.js';
import { verifyLedger } from '../../src/audit/verify.js';
import {
  appendRecords,
  builtAt,
  buildLedger,
  openLedger,
  recomputeChain,
  rewriteRecord,
  tamper,
  tempDir,
  verifyBuilt,
} from './helpers.js';

// verifyLedger end to end on real temp ledgers: what the report states for a specific damage or
// a specific shape of ledger (issue #18, mutation score of src/audit/verify.ts).

/** Open file descriptors of this process on `path` (Linux /proc). */
function fdsOn(path: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}

function query<T>(dbPath: string, sql: string): T[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

/** A closed ledger written in flushes of 50 records: a checkpoint after every 50 (Built shape). */
function segmented(records: number): ReturnType<typeof buildLedger> {
  const dir = tempDir();
  const { ledger, checkpointer, key, clock } = openLedger(dir);
  for (let i = 0; i < records; i += 50) appendRecords(ledger, clock, 50, i);
  checkpointer.close();
  ledger.close();
  return builtAt(dir, key, clock);
}

function checkpointSeqs(dbPath: string): number[] {
  return query<{ seq: number }>(dbPath, 'SELECT seq FROM checkpoints ORDER BY n').map((r) => r.seq);
}

describe('verifyLedger: report fields an auditor reads', () => {
  it('an intact ledger closed on a checkpoint: every record counted, none unsealed or batch-sealed', async () => {
    const b = buildLedger(120);
    const last = Math.max(
      ...query<{ m: number }>(b.dbPath, 'SELECT MAX(seq) AS m FROM records').map((r) => r.m),
    );
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(true);
    expect(r.problems).toEqual([]);
    expect(r.records).toBe(last);
    expect(r.range).toEqual({ first: 1, last });
    expect(r.checkpoints.last?.seq).toBe(last);
    expect(r.unsealed).toBe(0);
    expect(r.sealedByBatch).toBe(0);
    expect(r.warnings.some((w) => w.startsWith('no checkpoints yet'))).toBe(false);
  });

  it('a two-record ledger is scanned whole', async () => {
    const b = buildLedger(1);
    const n = query<{ n: number }>(b.dbPath, 'SELECT COUNT(*) AS n FROM records')[0]?.n;
    const r = await verifyBuilt(b);
    expect(r.records).toBe(n);
    expect(r.ok).toBe(true);
  });

  it('a rolled-back tail: the newest checkpoint still inside the file is the last one reported', async () => {
    const b = segmented(200);
    const seqs = checkpointSeqs(b.dbPath);
    const keep = seqs[seqs.length - 3] ?? 0;
    expect(keep).toBeGreaterThan(1);
    tamper(b.dbPath, (db) => {
      db.prepare('DELETE FROM records WHERE seq > ?').run(keep);
      db.prepare('DELETE FROM checkpoints WHERE seq > ?').run(keep);
      for (const { name } of db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'seals'")
        .all() as { name: string }[])
        db.exec(`DROP TRIGGER "${name}"`);
      db.exec('DELETE FROM seals');
    });
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(false);
    expect(r.range?.last).toBe(keep);
    expect(r.checkpoints.last?.seq).toBe(keep);
    expect(r.unsealed).toBe(0);
    expect(r.sealedByBatch).toBe(0);
    // The external log still holds the later checkpoints: the cut is named.
    expect(r.problems.map((p) => p.class)).toContain('rollback');
  });

  it('with the checkpoints deleted from the file and no log, the batch seals still sign every record', async () => {
    const b = buildLedger(30);
    tamper(b.dbPath, (db) => db.exec('DELETE FROM checkpoints'));
    const last = query<{ m: number }>(b.dbPath, 'SELECT MAX(seq) AS m FROM records')[0]?.m;
    const r = await verifyLedger({ dbPath: b.dbPath, trusted: b.trusted });
    expect(r.checkpoints.last).toBeNull();
    expect(r.unsealed).toBe(0);
    expect(r.sealedByBatch).toBe(last);
  });

  it('a batch seal that does not verify is reported, and the records it claimed are not called unsealed twice', async () => {
    const b = segmented(100);
    const seals = query<{ seq: number }>(b.dbPath, 'SELECT seq FROM seals ORDER BY seq DESC');
    const [top = 0, below = 0] = seals.map((s) => s.seq);
    expect(below).toBeGreaterThan(0);
    tamper(b.dbPath, (db) => {
      db.exec('DELETE FROM checkpoints');
      db.exec('DROP TRIGGER IF EXISTS seals_no_update');
      db.prepare('UPDATE seals SET sig = ? WHERE seq = ?').run(Buffer.alloc(64, 7), top);
    });
    const r = await verifyLedger({ dbPath: b.dbPath, trusted: b.trusted });
    expect(r.ok).toBe(false);
    expect(r.problems).toContainEqual({
      class: 'bad_signature',
      seq: top,
      detail: `the batch seal at seq ${top} does not verify under key ${b.trusted[0]?.keyId}`,
    });
    expect(r.problems.map((p) => p.class)).not.toContain('unsealed');
    expect(r.unsealed).toBe(top - below);
  });

  it('"no checkpoints yet" only when neither the file nor the log holds one', async () => {
    const b = buildLedger(30);
    // No trusted key: no checkpoint verifies, yet the file holds checkpoints.
    const untrusted = await verifyBuilt(b, { trusted: [] });
    expect(untrusted.warnings.some((w) => w.startsWith('no checkpoints yet'))).toBe(false);
    // The file's checkpoints deleted, the log still holds them.
    tamper(b.dbPath, (db) => db.exec('DELETE FROM checkpoints'));
    const logged = await verifyBuilt(b, { trusted: [] });
    expect(logged.warnings.some((w) => w.startsWith('no checkpoints yet'))).toBe(false);
  });

  it('clock regressions: counted all, the first ten seqs named', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock } = openLedger(dir);
    appendRecords(ledger, clock, 5);
    for (let i = 0; i < 12; i++) {
      clock.advance(-5000);
      appendRecords(ledger, clock, 1, 100 + i);
    }
    checkpointer.close();
    ledger.close();
    const dbPath = join(dir, 'audit.db');
    const rows = query<{ seq: number; time: number }>(
      dbPath,
      'SELECT seq, time FROM records ORDER BY seq',
    );
    const expected: number[] = [];
    for (let i = 1; i < rows.length; i++) {
      const prev = rows[i - 1];
      const cur = rows[i];
      if (prev && cur && cur.time < prev.time - 1000) expected.push(cur.seq);
    }
    expect(expected.length).toBeGreaterThanOrEqual(12);
    const r = await verifyLedger({
      dbPath,
      checkpointLog: join(dir, 'checkpoints.jsonl'),
      trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
    });
    expect(r.clock.regressions).toBe(expected.length);
    expect(r.clock.regressionSeqs).toEqual(expected.slice(0, 10));
  });

  it('a recomputed chain is named per checkpoint segment, except where a row finding already names it', async () => {
    const b = segmented(200);
    const seqs = checkpointSeqs(b.dbPath).filter((s) => s > 1);
    expect(seqs.length).toBeGreaterThanOrEqual(4);
    const [c1 = 0, c2 = 0, c3 = 0] = seqs;
    // Edit a record in the second segment and recompute the chain from there on, then edit the
    // record at the third checkpoint again without recomputing (a row-level finding there).
    const edited = c1 + 5;
    tamper(b.dbPath, (db) => {
      rewriteRecord(db, edited, (f) => ({ ...f, attrs: f.attrs.replace('redis-0', 'redis-9') }));
      recomputeChain(db, edited);
      rewriteRecord(db, c3, (f) => ({ ...f, attrs: f.attrs.replace('redis-0', 'redis-9') }));
    });
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(false);
    const seg2 = r.problems.find((p) => p.seq === c1 + 1 && p.toSeq === c2);
    expect(seg2).toMatchObject({ class: 'modified' });
    expect(seg2?.detail).toMatch(/do not match signed checkpoint #\d+: a record was changed/);
    // The third segment holds the row finding at its checkpoint: not reported again as a segment.
    expect(r.problems.filter((p) => p.seq === c2 + 1 && p.toSeq === c3)).toEqual([]);
    expect(r.problems.find((p) => p.seq === c3)).toMatchObject({ class: 'modified' });
  });

  it('a recomputed chain in the first segment is named from the record after the genesis checkpoint', async () => {
    const b = segmented(200);
    const seqs = checkpointSeqs(b.dbPath);
    const c1 = seqs.find((s) => s > 10) ?? 0;
    const start = Math.max(0, ...seqs.filter((s) => s < 10)) + 1;
    tamper(b.dbPath, (db) => {
      rewriteRecord(db, 10, (f) => ({ ...f, attrs: f.attrs.replace('redis-0', 'redis-9') }));
      recomputeChain(db, 10);
    });
    const r = await verifyBuilt(b);
    expect(r.problems.find((p) => p.toSeq === c1)).toMatchObject({ class: 'modified', seq: start });
  });

  it('anchored only when both the key and the log come from outside the database directory', async () => {
    const b = buildLedger(10);
    const elsewhere = tempDir();
    copyFileSync(b.publicKeyPath, join(elsewhere, 'signing.pub'));
    copyFileSync(b.logPath, join(elsewhere, 'checkpoints.jsonl'));
    const trusted = [loadTrustedKey(join(elsewhere, 'signing.pub'))];
    const both = await verifyLedger({
      dbPath: b.dbPath,
      trusted,
      checkpointLog: join(elsewhere, 'checkpoints.jsonl'),
    });
    expect(both.anchors.anchored).toBe(true);
    const noLog = await verifyLedger({ dbPath: b.dbPath, trusted });
    expect(noLog.anchors).toMatchObject({ anchored: false, checkpointLog: null });
    expect(noLog.warnings[0]).toMatch(
      /^anchored: false: public key given, no checkpoint log given;/,
    );
  });

  it('closes the database after a verdict and after a file it cannot read', async () => {
    const b = buildLedger(10);
    const before = fdsOn(b.dbPath);
    await verifyBuilt(b);
    expect(fdsOn(b.dbPath)).toBe(before);

    const bad = join(tempDir(), 'empty.db');
    new Database(bad).close();
    const err = await verifyLedger({ dbPath: bad, trusted: b.trusted }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'ERR_LEDGER_INTEGRITY' });
    expect((err as Error).message).toContain(`cannot read ${bad}: `);
    expect((err as Error).cause).toBeInstanceOf(Error);
    expect(fdsOn(bad)).toBe(0);
  });
  it('a recomputed chain from the first record is named at the genesis checkpoint itself', async () => {
    const b = segmented(100);
    expect(checkpointSeqs(b.dbPath)[0]).toBe(1);
    tamper(b.dbPath, (db) => {
      rewriteRecord(db, 1, (f) => ({
        ...f,
        attrs: JSON.stringify({ ...(JSON.parse(f.attrs) as object), forged: 1 }),
      }));
      recomputeChain(db, 1);
    });
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(false);
    expect(r.problems).toContainEqual(
      expect.objectContaining({ class: 'modified', seq: 1, toSeq: 1, checkpoint: 1 }),
    );
  });

  it('a checkpoint log shared with another ledger: the foreign lines are ignored with a warning', async () => {
    const b = buildLedger(10);
    const other = buildLedger(5);
    appendFileSync(b.logPath, readFileSync(other.logPath));
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(true);
    expect(
      r.warnings.some((w) =>
        w.startsWith('checkpoint log also holds checkpoints of other ledgers'),
      ),
    ).toBe(true);
  });

  it('a retention purge verified without the external log says its checkpoint could not be checked', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock, key } = openLedger(dir, { checkpointEvery: 50 });
    appendRecords(ledger, clock, 60);
    clock.advance(500 * DAY_MS);
    appendRecords(ledger, clock, 60, 60);
    const purge = pruneExpired({ ledger, key, retentionDays: 400, now: clock.now });
    expect(purge).toBeDefined();
    checkpointer.close();
    ledger.close();
    const r = await verifyLedger({
      dbPath: join(dir, 'audit.db'),
      trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
    });
    expect(r.problems).toEqual([]);
    expect(
      r.warnings.some((w) =>
        w.startsWith(`retention purge record ${purge?.seq}: no external checkpoint log given`),
      ),
    ).toBe(true);
  });
});
