import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  LEDGER_FORMAT_VERSION,
  ZERO_HASH,
  canonicalRecord,
  leafHash,
} from '../../src/audit/canonical.js';
import { verifyRange, type RangeTask } from '../../src/audit/verify-rows.js';
import { buildLedger, fieldsAt, tamper, tempDir } from './helpers.js';

// Row-level findings of verifyRange an auditor relies on, each on a specific damage: which seq,
// which class, which reason. Complements verify-rows.test.ts (issue #18, mutation score).
const ZERO = ZERO_HASH.toString('hex');

function task(dbPath: string, over: Partial<RangeTask>): RangeTask {
  return { dbPath, from: 1, to: 1, checkpoints: [], clockToleranceMs: 1000, ...over };
}

function maxSeq(dbPath: string): number {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (db.prepare('SELECT MAX(seq) AS m FROM records').get() as { m: number }).m;
  } finally {
    db.close();
  }
}

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

/**
 * Rebuilds `records` without STRICT and without a primary key, as whoever edits the file can:
 * every value keeps its storage class, then `fn` edits the loose table.
 */
function rebuildLoose(dbPath: string, fn: (db: Database.Database) => void): void {
  tamper(dbPath, (db) => {
    db.exec(`ALTER TABLE records RENAME TO records_strict;
      CREATE TABLE records (seq INTEGER, time, source, type, kind, fingerprint, attrs, leaf, chain);
      INSERT INTO records SELECT seq, time, source, type, kind, fingerprint, attrs, leaf, chain
        FROM records_strict;`);
    fn(db);
  });
}

/** Swaps the rows at seqs a and b whole (content, leaf, chain): rows moved, nothing recomputed. */
function swapRows(db: Database.Database, a: number, b: number): void {
  db.prepare('UPDATE records SET seq = -seq WHERE seq IN (?, ?)').run(a, b);
  db.prepare('UPDATE records SET seq = ? WHERE seq = ?').run(b, -a);
  db.prepare('UPDATE records SET seq = ? WHERE seq = ?').run(a, -b);
}

describe('verifyRange: specific damage, specific finding', () => {
  it('a duplicated seq (table rebuilt without its key) → reordered at that seq, once', () => {
    const b = buildLedger(20);
    rebuildLoose(b.dbPath, (db) =>
      db.exec('INSERT INTO records SELECT * FROM records_strict WHERE seq = 10'),
    );
    const r = verifyRange(task(b.dbPath, { from: 1, to: 21, anchor: ZERO }));
    expect(r.rows).toBe(22);
    expect(r.problems).toEqual([
      { class: 'reordered', seq: 10, detail: 'seq 10 is stored after seq 10' },
    ]);
  });

  it('a NULL time (table rebuilt without STRICT) → wrong type at that seq, and no clock regression', () => {
    const b = buildLedger(20);
    rebuildLoose(b.dbPath, (db) => db.exec('UPDATE records SET time = NULL WHERE seq = 10'));
    const r = verifyRange(task(b.dbPath, { from: 1, to: 21, anchor: ZERO }));
    expect(r.problems).toEqual([
      {
        class: 'modified',
        seq: 10,
        detail:
          'record 10: a column holds a value of the wrong type (the table was rebuilt without STRICT)',
      },
    ]);
    expect(r.regressions).toBe(0);
    expect(r.regressionSeqs).toEqual([]);
  });

  it('a chain one byte too long → size finding at that seq; the next link is not checked against it', () => {
    const b = buildLedger(20);
    tamper(b.dbPath, (db) => {
      const { chain } = db.prepare('SELECT chain FROM records WHERE seq = 10').get() as {
        chain: Buffer;
      };
      db.prepare('UPDATE records SET chain = ? WHERE seq = 10').run(
        Buffer.concat([chain, Buffer.alloc(1)]),
      );
    });
    const r = verifyRange(task(b.dbPath, { from: 1, to: 21, anchor: ZERO }));
    expect(r.problems).toEqual([
      { class: 'modified', seq: 10, detail: 'record 10: leaf or chain is not of its stored size' },
    ]);
  });

  it('a compact record whose attributes blob does not decode → modified at that seq only', () => {
    const b = buildLedger(20);
    tamper(b.dbPath, (db) => db.exec("UPDATE records SET attrs = x'ff' WHERE seq = 10"));
    const r = verifyRange(task(b.dbPath, { from: 1, to: 21, anchor: ZERO }));
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ class: 'modified', seq: 10 });
    expect(r.problems[0]?.detail).toMatch(/^record 10: compact attributes do not decode \(.+\)$/);
  });

  it('a leaf forged as the record hashed at seq 0 is modified, not a move from seq 0', () => {
    const b = buildLedger(10);
    tamper(b.dbPath, (db) => {
      const canon = canonicalRecord(fieldsAt(db, 1));
      const prefix = `[${LEDGER_FORMAT_VERSION},1,`;
      expect(canon.startsWith(prefix)).toBe(true);
      const forged = leafHash(`[${LEDGER_FORMAT_VERSION},0,${canon.slice(prefix.length)}`);
      db.prepare('UPDATE records SET leaf = ? WHERE seq = 1').run(forged);
    });
    const r = verifyRange(task(b.dbPath, { from: 1, to: 11, anchor: ZERO }));
    expect(r.problems).toEqual([
      { class: 'modified', seq: 1, detail: 'record 1 does not match its leaf hash' },
    ]);
  });

  it('rows moved exactly 256 seqs apart are still named as a move', () => {
    const b = buildLedger(300);
    tamper(b.dbPath, (db) => swapRows(db, 5, 261));
    const r = verifyRange(task(b.dbPath, { from: 1, to: maxSeq(b.dbPath), anchor: ZERO }));
    expect(r.problems).toEqual([
      {
        class: 'reordered',
        seq: 5,
        detail: 'record at seq 5 was hashed as seq 261: rows were moved',
      },
      {
        class: 'reordered',
        seq: 261,
        detail: 'record at seq 261 was hashed as seq 5: rows were moved',
      },
    ]);
  });

  it('the first 100 moved rows are named as moves; later ones are reported as leaf mismatches', () => {
    const b = buildLedger(300);
    // 60 swapped pairs: 120 rows whose leaf does not match where they stand.
    tamper(b.dbPath, (db) => {
      for (let k = 0; k < 60; k++) swapRows(db, 10 + 2 * k, 11 + 2 * k);
    });
    const r = verifyRange(task(b.dbPath, { from: 1, to: maxSeq(b.dbPath), anchor: ZERO }));
    const leafFindings = r.problems.filter((p) => !p.detail.includes('stored chain hash'));
    expect(leafFindings).toHaveLength(120);
    expect(leafFindings.slice(0, 100).every((p) => p.class === 'reordered')).toBe(true);
    expect(leafFindings[0]).toEqual({
      class: 'reordered',
      seq: 10,
      detail: 'record at seq 10 was hashed as seq 11: rows were moved',
    });
    expect(leafFindings[100]).toEqual({
      class: 'modified',
      seq: 110,
      detail: 'record 110 does not match its leaf hash',
    });
    expect(leafFindings.slice(100).map((p) => p.class)).toEqual(Array(20).fill('modified'));
  });

  it('pages past 4096 rows: a long slice is read whole, once, in order', () => {
    const b = buildLedger(4200);
    const last = maxSeq(b.dbPath);
    expect(last).toBeGreaterThan(4096 + 100);
    // Damage on the second page is found there.
    tamper(b.dbPath, (db) => db.exec(`UPDATE records SET attrs = x'ff' WHERE seq = ${last - 5}`));
    const r = verifyRange(task(b.dbPath, { from: 1, to: last, anchor: ZERO }));
    expect(r.rows).toBe(last);
    expect(r.moreProblems).toBe(0);
    expect(r.problems.map((p) => [p.class, p.seq])).toEqual([['modified', last - 5]]);
  });

  it('a one-record slice reads that record', () => {
    const b = buildLedger(10);
    const r = verifyRange(task(b.dbPath, { from: 5, to: 5 }));
    expect(r).toMatchObject({ rows: 1, problems: [], moreProblems: 0 });
  });

  it('a slice from seq 1 without an anchor reads the first record without a link check', () => {
    const b = buildLedger(10);
    const r = verifyRange(task(b.dbPath, { from: 1, to: 11 }));
    expect(r).toMatchObject({ rows: 11, problems: [], regressions: 0 });
  });

  it('a slice anchors on the stored chain (and time) of the record before it', () => {
    const b = buildLedger(20);
    tamper(b.dbPath, (db) => {
      db.prepare('UPDATE records SET chain = ? WHERE seq = 10').run(Buffer.alloc(32, 0xab));
    });
    const r = verifyRange(task(b.dbPath, { from: 11, to: 21 }));
    expect(r.problems).toEqual([
      {
        class: 'modified',
        seq: 11,
        detail: 'record 11: stored chain hash is not SHA-256(previous chain || leaf)',
      },
    ]);
    const c = buildLedger(20);
    tamper(c.dbPath, (db) => db.exec('UPDATE records SET time = time + 3600000 WHERE seq = 10'));
    const t = verifyRange(task(c.dbPath, { from: 11, to: 21 }));
    expect(t.regressions).toBe(1);
    expect(t.regressionSeqs).toEqual([11]);
  });

  it('a file SQLite cannot read as a ledger → modified from the slice start, with the reason', () => {
    const b = buildLedger(10);
    tamper(b.dbPath, (db) =>
      db.exec('ALTER TABLE records RENAME TO gone; CREATE TABLE records (seq INTEGER PRIMARY KEY)'),
    );
    const r = verifyRange(task(b.dbPath, { from: 1, to: 5, anchor: ZERO }));
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ class: 'modified', seq: 1, toSeq: 5 });
    expect(r.problems[0]?.detail).toMatch(/^SQLite cannot read the file past seq 0: \S/);
  });

  it('a missing database file throws and is not created', () => {
    const path = join(tempDir(), 'missing.db');
    expect(() => verifyRange(task(path, { from: 1, to: 5, anchor: ZERO }))).toThrow();
    expect(existsSync(path)).toBe(false);
  });

  it('closes the file it opened, and leaves a handle it was given open', () => {
    const b = buildLedger(10);
    const before = fdsOn(b.dbPath);
    expect(verifyRange(task(b.dbPath, { from: 1, to: 11, anchor: ZERO })).problems).toEqual([]);
    expect(fdsOn(b.dbPath)).toBe(before);
    const db = new Database(b.dbPath, { readonly: true });
    try {
      expect(verifyRange(task(b.dbPath, { from: 1, to: 11, anchor: ZERO }), db).rows).toBe(11);
      expect(db.open).toBe(true);
      expect(db.prepare('SELECT COUNT(*) AS n FROM records').get()).toEqual({ n: 11 });
    } finally {
      db.close();
    }
  });
});
