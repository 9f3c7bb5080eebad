import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ZERO_HASH } from '../../src/audit/canonical.js';
import { verifyRange, type RangeTask } from '../../src/audit/verify-rows.js';
import { chooseThreads, rangeTasks } from '../../src/audit/verify-scan.js';
import { buildLedger, recomputeChain, tamper } from './helpers.js';

// verifyRange on slices of a built ledger, the way the scan hands them to its threads (a worker
// runs exactly this function on its slice): anchors, gaps at slice ends, checkpoint comparison,
// clock regressions and the problem cap.
const ZERO = ZERO_HASH.toString('hex');

function task(dbPath: string, over: Partial<RangeTask>): RangeTask {
  return { dbPath, from: 1, to: 1, checkpoints: [], clockToleranceMs: 1000, ...over };
}

function chainOf(dbPath: string, seq: number): string {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (
      db.prepare('SELECT lower(hex(chain)) AS c FROM records WHERE seq = ?').get(seq) as {
        c: string;
      }
    ).c;
  } finally {
    db.close();
  }
}

describe('verifyRange', () => {
  it('verifies a whole intact ledger from the zero anchor, and each slice on its own', () => {
    const b = buildLedger(60);
    const all = verifyRange(task(b.dbPath, { from: 1, to: 61, anchor: ZERO }));
    expect(all).toMatchObject({ from: 1, to: 61, rows: 61, problems: [], moreProblems: 0 });
    // A later slice anchors on the stored chain of the record before it.
    const tail = verifyRange(task(b.dbPath, { from: 31, to: 61 }));
    expect(tail).toMatchObject({ rows: 31, problems: [], regressions: 0 });
    const mid = verifyRange(task(b.dbPath, { from: 11, to: 20 }));
    expect(mid.rows).toBe(10);
    expect(mid.problems).toEqual([]);
  });

  it('a wrong anchor → modified at the first record of the slice (link, not leaf)', () => {
    const b = buildLedger(20);
    const r = verifyRange(task(b.dbPath, { from: 1, to: 21, anchor: 'ab'.repeat(32) }));
    expect(r.problems).toEqual([
      {
        class: 'modified',
        seq: 1,
        detail: 'record 1: stored chain hash is not SHA-256(previous chain || leaf)',
      },
    ]);
    // The next slice's anchor is the stored chain of seq 10: a wrong one fails at seq 11 only.
    const s = verifyRange(task(b.dbPath, { from: 11, to: 21, anchor: chainOf(b.dbPath, 11) }));
    expect(s.problems.map((p) => p.seq)).toEqual([11]);
    expect(
      verifyRange(task(b.dbPath, { from: 11, to: 21, anchor: chainOf(b.dbPath, 10) })).problems,
    ).toEqual([]);
  });

  it('an unanchored slice (null) does not check the first link', () => {
    const b = buildLedger(20);
    expect(verifyRange(task(b.dbPath, { from: 5, to: 21, anchor: null })).problems).toEqual([]);
  });

  it('a slice whose previous record is missing starts unanchored, and the gap belongs to the slice before', () => {
    const b = buildLedger(30);
    tamper(b.dbPath, (db) => db.prepare('DELETE FROM records WHERE seq = 10').run());
    expect(verifyRange(task(b.dbPath, { from: 11, to: 31 })).problems).toEqual([]);
    const before = verifyRange(task(b.dbPath, { from: 1, to: 10, anchor: ZERO }));
    expect(before.rows).toBe(9);
    expect(before.problems).toEqual([
      { class: 'missing', seq: 10, toSeq: 10, detail: 'record 10 is missing (seq gap)' },
    ]);
  });

  it('a gap inside the slice → one missing range, and the record after it is not a link failure', () => {
    const b = buildLedger(30);
    tamper(b.dbPath, (db) => db.prepare('DELETE FROM records WHERE seq BETWEEN 12 AND 14').run());
    const r = verifyRange(task(b.dbPath, { from: 1, to: 31, anchor: ZERO }));
    expect(r.rows).toBe(28);
    expect(r.problems).toEqual([
      { class: 'missing', seq: 12, toSeq: 14, detail: 'records 12..14 are missing (seq gap)' },
    ]);
  });

  it('a slice reaching past the last record → missing up to its end', () => {
    const b = buildLedger(10);
    const r = verifyRange(task(b.dbPath, { from: 1, to: 15, anchor: ZERO }));
    expect(r.rows).toBe(11);
    expect(r.problems).toEqual([
      { class: 'missing', seq: 12, toSeq: 15, detail: 'records 12..15 are missing (seq gap)' },
    ]);
  });

  it('compares the stored chain with each signed checkpoint inside the slice', () => {
    const b = buildLedger(30);
    const c10 = chainOf(b.dbPath, 10);
    const c20 = chainOf(b.dbPath, 20);
    const wrong = 'cd'.repeat(32);
    const r = verifyRange(
      task(b.dbPath, {
        from: 5,
        to: 25,
        checkpoints: [
          [3, wrong], // before the slice: not this slice's business
          [10, c10],
          [20, wrong],
          [20, c20],
          [30, wrong], // after it
        ],
      }),
    );
    expect(r.problems).toEqual([]);
    expect(r.checkpointMismatches).toEqual([{ seq: 20, stored: c20, signed: wrong }]);
  });

  it('counts records earlier than the previous one by more than the tolerance', () => {
    const b = buildLedger(30);
    tamper(b.dbPath, (db) => {
      const t = (seq: number): number =>
        (db.prepare('SELECT time FROM records WHERE seq = ?').get(seq) as { time: number }).time;
      const set = db.prepare('UPDATE records SET time = ? WHERE seq = ?');
      set.run(t(9) - 1000, 10); // exactly the tolerance: not a regression
      set.run(t(19) - 1001, 20); // one ms beyond it
      recomputeChain(db, 10);
    });
    const r = verifyRange(task(b.dbPath, { from: 1, to: 31, anchor: ZERO }));
    expect(r.problems).toEqual([]);
    expect(r.regressions).toBe(1);
    expect(r.regressionSeqs).toEqual([20]);
    // A slice starting at 20 compares with the time of record 19 before it.
    expect(verifyRange(task(b.dbPath, { from: 20, to: 31 })).regressionSeqs).toEqual([20]);
    expect(verifyRange(task(b.dbPath, { from: 21, to: 31 })).regressions).toBe(0);
    // A larger tolerance accepts it.
    expect(
      verifyRange(task(b.dbPath, { from: 1, to: 31, anchor: ZERO, clockToleranceMs: 1001 }))
        .regressions,
    ).toBe(0);
  });

  it('lists at most 10 regression seqs but counts them all', () => {
    const b = buildLedger(30);
    tamper(b.dbPath, (db) => {
      // Every other record from 4 on jumps back an hour and the next one forward again.
      const set = db.prepare('UPDATE records SET time = time - 3600000 WHERE seq = ?');
      for (let seq = 4; seq <= 28; seq += 2) set.run(seq);
      recomputeChain(db, 4);
    });
    const r = verifyRange(task(b.dbPath, { from: 1, to: 31, anchor: ZERO }));
    expect(r.problems).toEqual([]);
    expect(r.regressions).toBe(13);
    expect(r.regressionSeqs).toEqual([4, 6, 8, 10, 12, 14, 16, 18, 20, 22]);
  });

  it('a leaf or chain of the wrong size → modified, and the chain goes on from the stored one', () => {
    const b = buildLedger(20);
    tamper(b.dbPath, (db) =>
      db.prepare('UPDATE records SET leaf = zeroblob(5) WHERE seq = 7').run(),
    );
    const r = verifyRange(task(b.dbPath, { from: 1, to: 21, anchor: ZERO }));
    expect(r.problems).toEqual([
      { class: 'modified', seq: 7, detail: 'record 7: leaf or chain is not of its stored size' },
    ]);
    // A chain of the wrong size: the next record cannot be linked, so only this one is reported.
    tamper(b.dbPath, (db) =>
      db.prepare('UPDATE records SET chain = zeroblob(31) WHERE seq = 12').run(),
    );
    const r2 = verifyRange(task(b.dbPath, { from: 1, to: 21, anchor: ZERO }));
    expect(r2.problems.map((p) => [p.seq, p.detail])).toEqual([
      [7, 'record 7: leaf or chain is not of its stored size'],
      [12, 'record 12: leaf or chain is not of its stored size'],
    ]);
  });

  it('keeps the first 1000 problems and counts the rest', () => {
    const b = buildLedger(1050);
    tamper(b.dbPath, (db) => db.prepare('UPDATE records SET leaf = zeroblob(5)').run());
    const r = verifyRange(task(b.dbPath, { from: 1, to: 1051, anchor: ZERO }));
    expect(r.rows).toBe(1051);
    expect(r.problems).toHaveLength(1000);
    expect(r.problems[999]?.seq).toBe(1000);
    expect(r.moreProblems).toBe(51);
  });

  it('a file that is not a database → one modified finding over the slice', () => {
    const b = buildLedger(5);
    const r = verifyRange(task(b.dbPath, { from: 1, to: 6, anchor: ZERO }));
    expect(r.problems).toEqual([]);
    const bad = join(b.dir, 'garbage.db');
    writeFileSync(bad, Buffer.alloc(8192, 7));
    const g = verifyRange(task(bad, { from: 3, to: 9, anchor: ZERO }));
    expect(g.problems).toHaveLength(1);
    expect(g.problems[0]).toMatchObject({ class: 'modified', seq: 3, toSeq: 9 });
    expect(g.problems[0]?.detail).toMatch(/^SQLite cannot read the file past seq 2: /);
  });
});

describe('chooseThreads', () => {
  it('one thread when no verify worker was built, whatever was asked', () => {
    expect(chooseThreads(8, 1_000_000, false, 8)).toBe(1);
    expect(chooseThreads(undefined, 1_000_000, false, 8)).toBe(1);
  });

  it('a request is bounded by 16 and by one thread per 1000 records, and is at least 1', () => {
    expect(chooseThreads(8, 1_000_000, true, 2)).toBe(8);
    expect(chooseThreads(64, 1_000_000, true, 2)).toBe(16);
    expect(chooseThreads(8, 1500, true, 2)).toBe(2);
    expect(chooseThreads(8, 1000, true, 2)).toBe(1);
    expect(chooseThreads(8, 1001, true, 2)).toBe(2);
    expect(chooseThreads(0, 5000, true, 2)).toBe(1);
    expect(chooseThreads(-3, 5000, true, 2)).toBe(1);
  });

  it('by default one thread below 100 000 records, then the cores up to 4', () => {
    expect(chooseThreads(undefined, 99_999, true, 8)).toBe(1);
    expect(chooseThreads(undefined, 100_000, true, 8)).toBe(4);
    expect(chooseThreads(undefined, 100_000, true, 3)).toBe(3);
    expect(chooseThreads(undefined, 100_000, true, 0)).toBe(1);
  });
});

describe('rangeTasks', () => {
  it('cuts first..max into equal slices, the last shorter; only the first carries the anchor', () => {
    const pairs: [number, string][] = [
      [5, 'a'],
      [8, 'b'],
      [9, 'c'],
      [14, 'd'],
    ];
    const t = rangeTasks('db', { firstSeq: 5, maxSeq: 14 }, 'anc', pairs, 3, 250);
    expect(t).toEqual([
      {
        dbPath: 'db',
        from: 5,
        to: 8,
        anchor: 'anc',
        checkpoints: [
          [5, 'a'],
          [8, 'b'],
        ],
        clockToleranceMs: 250,
      },
      { dbPath: 'db', from: 9, to: 12, checkpoints: [[9, 'c']], clockToleranceMs: 250 },
      { dbPath: 'db', from: 13, to: 14, checkpoints: [[14, 'd']], clockToleranceMs: 250 },
    ]);
    expect('anchor' in (t[1] as object)).toBe(false);
  });

  it('one thread: one slice over everything; a null anchor is passed on as null', () => {
    const t = rangeTasks('db', { firstSeq: 1, maxSeq: 7 }, null, [[3, 'x']], 1, 1000);
    expect(t).toEqual([
      {
        dbPath: 'db',
        from: 1,
        to: 7,
        anchor: null,
        checkpoints: [[3, 'x']],
        clockToleranceMs: 1000,
      },
    ]);
  });

  it('more threads than records: one record per slice', () => {
    const t = rangeTasks('db', { firstSeq: 1, maxSeq: 3 }, 'z', [], 8, 0);
    expect(t.map((x) => [x.from, x.to])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });
});
