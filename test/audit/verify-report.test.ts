import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { loadTrustedKey } from '../../src/audit/signing-keys.js';
import { verifyLedger } from '../../src/audit/verify.js';
import {
  appendRecords,
  buildLedger,
  openLedger,
  recomputeChain,
  rewriteRecord,
  tamper,
  tempDir,
  verifyBuilt,
} from './helpers.js';

// The fields of the verify report besides the attack table: what the verdict rests on
// (anchors), what signs the tail (checkpoint, batch seal, nothing), and the records the writer
// left about itself (discontinuity, retention).

/** A ledger whose newest records are signed only by batch seals (no shutdown checkpoint). */
function sealedTail() {
  const dir = tempDir();
  const { ledger, checkpointer, clock } = openLedger(dir, { checkpointEvery: 10 });
  appendRecords(ledger, clock, 20); // checkpoint #2 at seq 21
  appendRecords(ledger, clock, 5, 20); // 22..26: fewer than 10, a batch seal only
  ledger.close(); // before the checkpointer: no shutdown checkpoint
  checkpointer.close();
  return {
    dir,
    dbPath: join(dir, 'audit.db'),
    logPath: join(dir, 'checkpoints.jsonl'),
    trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
  };
}

function maxSeq(dbPath: string): number {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (db.prepare('SELECT MAX(seq) AS m FROM records').get() as { m: number }).m;
  } finally {
    db.close();
  }
}

/** Appends a copy of the last record at the next seq with a valid chain: no key needed. */
function appendForged(dbPath: string): number {
  const next = maxSeq(dbPath) + 1;
  tamper(dbPath, (db) => {
    db.prepare(
      `INSERT INTO records (seq, time, source, type, kind, fingerprint, attrs, leaf, chain)
       SELECT seq + 1, time + 1, source, type, kind, fingerprint, attrs, leaf, chain
       FROM records WHERE seq = ?`,
    ).run(next - 1);
    recomputeChain(db, next);
  });
  return next;
}

describe('verify report: anchors', () => {
  it('key and log kept outside the database directory → anchored, no anchored warning', async () => {
    const b = buildLedger(20);
    const elsewhere = tempDir();
    const pub = join(elsewhere, 'signing.pub');
    const log = join(elsewhere, 'checkpoints.jsonl');
    copyFileSync(b.publicKeyPath, pub);
    copyFileSync(b.logPath, log);
    const r = await verifyLedger({
      dbPath: b.dbPath,
      checkpointLog: log,
      trusted: [loadTrustedKey(pub)],
    });
    expect(r.ok).toBe(true);
    expect(r.anchors).toEqual({
      anchored: true,
      publicKeys: [{ keyId: b.key.keyId, source: pub, besideDatabase: false }],
      checkpointLog: { path: log, besideDatabase: false },
    });
    expect(r.warnings).toEqual([]);
    expect(r.checkpoints.log).toBe(r.checkpoints.database);
  });

  it('a key from elsewhere but the log beside the database → anchored: false, saying which', async () => {
    const b = buildLedger(20);
    const pub = join(tempDir(), 'signing.pub');
    copyFileSync(b.publicKeyPath, pub);
    const r = await verifyLedger({
      dbPath: b.dbPath,
      checkpointLog: b.logPath,
      trusted: [loadTrustedKey(pub)],
    });
    expect(r.anchors.anchored).toBe(false);
    expect(r.anchors.checkpointLog).toEqual({ path: b.logPath, besideDatabase: true });
    expect(r.warnings[0]).toMatch(
      /^anchored: false: public key given, the checkpoint log comes from the database directory; whoever can write the database/,
    );
  });

  it('no key and no log → anchored: false first, then the missing log, then the unknown key', async () => {
    const b = buildLedger(20);
    const r = await verifyLedger({ dbPath: b.dbPath, trusted: [] });
    expect(r.anchors).toEqual({ anchored: false, publicKeys: [], checkpointLog: null });
    expect(r.warnings).toEqual([
      expect.stringMatching(/^anchored: false: no public key given, no checkpoint log given;/),
      'no external checkpoint log given: truncation and rollback show only against checkpoints inside the database itself',
    ]);
    expect(r.checkpoints.log).toBeNull();
    // Without a trusted key nothing is authentic: unknown_key, and no unsealed finding on top.
    expect(r.problems.map((p) => p.class)).toEqual(['unknown_key']);
    expect(r.unsealed).toBe(21);
    expect(r.checkpoints.last).toBeNull();
    expect(r.checkpoints.keyIds).toEqual([]);
  });

  it('a log kept elsewhere but no key → anchored: false (a log alone anchors nothing)', async () => {
    const b = buildLedger(20);
    const log = join(tempDir(), 'checkpoints.jsonl');
    copyFileSync(b.logPath, log);
    const r = await verifyLedger({ dbPath: b.dbPath, checkpointLog: log, trusted: [] });
    expect(r.anchors).toEqual({
      anchored: false,
      publicKeys: [],
      checkpointLog: { path: log, besideDatabase: false },
    });
    expect(r.warnings[0]).toMatch(/^anchored: false: no public key given, checkpoint log given;/);
  });

  it('two keys, one of them beside the database → anchored: false, said of that key', async () => {
    const b = buildLedger(20);
    const elsewhere = tempDir();
    const pub = join(elsewhere, 'signing.pub');
    const log = join(elsewhere, 'checkpoints.jsonl');
    copyFileSync(b.publicKeyPath, pub);
    copyFileSync(b.logPath, log);
    const r = await verifyLedger({
      dbPath: b.dbPath,
      checkpointLog: log,
      trusted: [loadTrustedKey(pub), ...b.trusted],
    });
    expect(r.ok).toBe(true);
    expect(r.anchors.anchored).toBe(false);
    expect(r.warnings[0]).toMatch(
      /^anchored: false: the public key comes from the database directory, checkpoint log given;/,
    );
  });

  it('a key beside the database and no log', async () => {
    const b = buildLedger(20);
    const r = await verifyLedger({ dbPath: b.dbPath, trusted: b.trusted });
    expect(r.ok).toBe(true);
    expect(r.warnings[0]).toMatch(
      /^anchored: false: the public key comes from the database directory, no checkpoint log given;/,
    );
  });
});

describe('verify report: what signs the tail', () => {
  it('records after the newest checkpoint signed by a batch seal: sealedByBatch, not unsealed', async () => {
    const s = sealedTail();
    const r = await verifyLedger({
      dbPath: s.dbPath,
      checkpointLog: s.logPath,
      trusted: s.trusted,
    });
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.records).toBe(26);
    expect(r.checkpoints.last?.seq).toBe(21);
    expect(r.sealedByBatch).toBe(5);
    expect(r.unsealed).toBe(0);
  });

  it('a record appended after the last seal → unsealed damage naming it', async () => {
    const s = sealedTail();
    const forged = appendForged(s.dbPath);
    const r = await verifyLedger({
      dbPath: s.dbPath,
      checkpointLog: s.logPath,
      trusted: s.trusted,
    });
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      {
        class: 'unsealed',
        seq: forged,
        toSeq: forged,
        detail: `1 record(s) from seq ${forged} carry no signature (no checkpoint or batch seal covers them): appended by someone without the signing key`,
      },
    ]);
    expect(r.unsealed).toBe(1);
    expect(r.sealedByBatch).toBe(5);
    expect(r.records).toBe(27);
    expect(r.range).toEqual({ first: 1, last: forged });
  });

  it('records appended after the shutdown checkpoint → unsealed from the first of them', async () => {
    const b = buildLedger(20);
    const first = appendForged(b.dbPath);
    const second = appendForged(b.dbPath);
    const r = await verifyBuilt(b);
    expect(r.problems).toEqual([
      expect.objectContaining({ class: 'unsealed', seq: first, toSeq: second }),
    ]);
    expect(r.problems[0]?.detail).toMatch(/^2 record\(s\) from seq 22 carry no signature/);
    expect(r.unsealed).toBe(2);
    expect(r.sealedByBatch).toBe(0);
  });

  it('a batch-sealed record edited and the chain recomputed → modified up to the seal', async () => {
    const s = sealedTail();
    tamper(s.dbPath, (db) => {
      rewriteRecord(db, 24, (f) => ({ ...f, attrs: f.attrs.replace('redis-0', 'redis-9') }));
      recomputeChain(db, 24);
    });
    const r = await verifyLedger({
      dbPath: s.dbPath,
      checkpointLog: s.logPath,
      trusted: s.trusted,
    });
    expect(r.problems).toEqual([
      {
        class: 'modified',
        seq: 22,
        toSeq: 26,
        detail:
          'records 22..26 do not match the batch seal at seq 26: a record was changed and the chain recomputed',
      },
    ]);
  });

  it('a checkpointed record edited and the chain recomputed → modified back to the checkpoint before', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock } = openLedger(dir, { checkpointEvery: 10 });
    for (let i = 0; i < 40; i += 10) appendRecords(ledger, clock, 10, i);
    checkpointer.close();
    ledger.close();
    const b = {
      dbPath: join(dir, 'audit.db'),
      logPath: join(dir, 'checkpoints.jsonl'),
      trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
    };
    tamper(b.dbPath, (db) => {
      rewriteRecord(db, 15, (f) => ({ ...f, attrs: f.attrs.replace('redis-0', 'redis-9') }));
      recomputeChain(db, 15);
    });
    const r = await verifyLedger({
      dbPath: b.dbPath,
      checkpointLog: b.logPath,
      trusted: b.trusted,
    });
    // Checkpoints at 1, 11, 21, 31, 41: the first that disagrees is #3 at seq 21.
    const modified = r.problems.filter((p) => p.class === 'modified');
    expect(modified[0]).toEqual({
      class: 'modified',
      seq: 12,
      toSeq: 21,
      checkpoint: 3,
      detail:
        'records 12..21 do not match signed checkpoint #3: a record was changed and the chain recomputed',
    });
  });

  it('a ledger whose checkpoints are all gone, no log → warning that truncation is not detectable', async () => {
    const b = buildLedger(20);
    tamper(b.dbPath, (db) => db.exec('DELETE FROM checkpoints'));
    const r = await verifyLedger({ dbPath: b.dbPath, trusted: b.trusted });
    expect(r.warnings).toContain(
      'no checkpoints yet: truncation and a recomputed chain are not detectable',
    );
    expect(r.checkpoints.database).toBe(0);
  });
});

describe('verify report: records the writer left', () => {
  it('a ledger.discontinuity record → discontinuity damage and a discontinuities entry', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock } = openLedger(dir);
    appendRecords(ledger, clock, 5);
    ledger.append({
      time: clock.now(),
      source: 'system',
      type: 'ledger.discontinuity',
      attrs: { class: 'modified', seq: 3 },
    });
    ledger.append({
      time: clock.now(),
      source: 'system',
      type: 'ledger.discontinuity',
      attrs: { other: 1 },
    });
    checkpointer.close();
    ledger.close();
    const r = await verifyLedger({
      dbPath: join(dir, 'audit.db'),
      checkpointLog: join(dir, 'checkpoints.jsonl'),
      trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
    });
    expect(r.ok).toBe(false);
    expect(r.discontinuities).toEqual([
      { seq: 7, time: clock.now(), found: 'modified', atSeq: 3 },
      { seq: 8, time: clock.now(), found: 'unknown', atSeq: null },
    ]);
    expect(r.problems).toEqual([
      {
        class: 'discontinuity',
        seq: 7,
        detail:
          'ledger.discontinuity record 7: the service was started over modified damage at seq 3 (serve --accept-discontinuity); records up to seq 6 are not trustworthy evidence',
      },
      {
        class: 'discontinuity',
        seq: 8,
        detail:
          'ledger.discontinuity record 8: the service was started over unknown damage (serve --accept-discontinuity); records up to seq 7 are not trustworthy evidence',
      },
    ]);
  });

  it('the retention signed in the newest checkpoint is reported with its number', async () => {
    const b = buildLedger(20, { retentionDays: 45, checkpointEvery: 10 });
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(true);
    expect(r.retention).toEqual({ days: 45, checkpoint: r.checkpoints.last?.n });
    expect(r.pruned).toEqual([]);
    expect(r.discontinuities).toEqual([]);
  });

  it('stats: one thread from the sources, a rate computed from the records', async () => {
    const b = buildLedger(50);
    const r = await verifyBuilt(b);
    expect(r.stats.threads).toBe(1);
    expect(r.stats.durationMs).toBeGreaterThanOrEqual(0);
    expect(r.stats.recordsPerSecond).toBeGreaterThan(0);
    expect(r.time).toEqual({ first: expect.any(Number) as number, last: b.clock.now() });
  });

  it('records after the last checkpoint in a ledger without batch seals → a warning, not damage', async () => {
    const s = sealedTail();
    tamper(s.dbPath, (db) => db.exec('DROP TABLE seals'));
    const r = await verifyLedger({
      dbPath: s.dbPath,
      checkpointLog: s.logPath,
      trusted: s.trusted,
    });
    expect(r.ok).toBe(true);
    expect(r.problems).toEqual([]);
    expect(r.unsealed).toBe(5);
    expect(r.sealedByBatch).toBe(0);
    expect(r.warnings).toContain(
      '5 record(s) after seq 21 are not sealed by a checkpoint yet (hash chain only; ledger written without batch seals)',
    );
  });
});

describe('verify report: edges', () => {
  it('early records deleted without a purge record → missing from seq 1, saying no purge covers them', async () => {
    const b = buildLedger(20);
    tamper(b.dbPath, (db) => db.prepare('DELETE FROM records WHERE seq <= 4').run());
    const r = await verifyBuilt(b);
    expect(r.problems[0]).toEqual({
      class: 'missing',
      seq: 1,
      toSeq: 4,
      detail:
        'records 1..4 are missing and no audit.retention_purge or audit.archived record covers them',
    });
    expect(r.range).toEqual({ first: 5, last: 21 });
    expect(r.records).toBe(17);
    expect(r.unsealed).toBe(0);
  });

  it('a ledger with every record gone: no range, no time, the checkpoints show the cut', async () => {
    const b = buildLedger(10);
    tamper(b.dbPath, (db) => db.exec('DELETE FROM records'));
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(false);
    expect(r.records).toBe(0);
    expect(r.range).toBeNull();
    expect(r.time).toBeNull();
    expect(r.unsealed).toBe(0);
    expect(r.sealedByBatch).toBe(0);
    // The cut, and no "record 0 is missing" for a seq no ledger uses.
    expect(r.problems.map((p) => [p.class, p.seq])).toEqual([['truncated', 1]]);
  });

  it('malformed checkpoint rows count among the database checkpoints', async () => {
    const b = buildLedger(10);
    const before = (await verifyBuilt(b)).checkpoints.database;
    tamper(b.dbPath, (db) => db.exec("UPDATE checkpoints SET reason = 'bogus' WHERE n = 1"));
    const r = await verifyBuilt(b);
    expect(r.checkpoints.database).toBe(before);
    expect(r.problems).toContainEqual(
      expect.objectContaining({
        class: 'bad_signature',
        checkpoint: 1,
        detail: 'checkpoint #1 in the database is malformed: unknown reason',
      }),
    );
  });

  it('problems beyond the listed ones fail the verdict and are counted', async () => {
    const b = buildLedger(1050);
    tamper(b.dbPath, (db) => db.prepare('UPDATE records SET leaf = zeroblob(5)').run());
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(false);
    expect(r.moreProblems).toBe(51);
    expect(r.problems).toHaveLength(1000);
  });

  it('a file SQLite cannot read as a ledger → ERR_LEDGER_INTEGRITY naming it', async () => {
    const dir = tempDir();
    const path = join(dir, 'audit.db');
    writeFileSync(path, Buffer.alloc(8192, 7));
    await expect(verifyLedger({ dbPath: path, trusted: [] })).rejects.toMatchObject({
      code: 'ERR_LEDGER_INTEGRITY',
      message: expect.stringMatching(new RegExp(`^cannot read ${path}: `)) as string,
    });
  });

  it('the rate is records per second of the measured duration', async () => {
    const b = buildLedger(300);
    const r = await verifyBuilt(b);
    const { durationMs, recordsPerSecond } = r.stats;
    expect(r.records).toBe(301);
    expect(recordsPerSecond).toBeGreaterThanOrEqual(Math.floor((301 * 1000) / (durationMs + 0.5)));
    if (durationMs >= 1) {
      expect(recordsPerSecond).toBeLessThanOrEqual(Math.ceil((301 * 1000) / (durationMs - 0.5)));
    }
  });
});
