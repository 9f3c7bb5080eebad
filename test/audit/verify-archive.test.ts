import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { parseArchive, writeArchive, type ArchiveContent } from '../../src/audit/archive-file.js';
import { signCheckpoint, type Checkpoint } from '../../src/audit/checkpoint.js';
import { resolveSigningKey } from '../../src/audit/signing-keys.js';
import { checkArchives, type ArchiveCheckInput } from '../../src/audit/verify-archive.js';
import { readMeta, type Archived, type Purge } from '../../src/audit/verify-meta.js';
import { archiveExpired } from '../../src/audit/archive.js';
import { DAY_MS, pruneExpired } from '../../src/audit/retention.js';
import { archivedLedger } from './archive-helpers.js';
import { appendRecords, openLedger, tempDir } from './helpers.js';

/**
 * checkArchives on the inputs verify.ts gives it, read from a real archived ledger
 * (archive-helpers.ts: files 1..61 and 62..121 whose records sit inside the file 122..N, whose
 * record is in the database). Checkpoints are the ledger's own (the caller has verified them).
 */
function fixture() {
  const a = archivedLedger();
  const db = new Database(a.dbPath, { readonly: true });
  const meta = readMeta(db);
  db.close();
  const third = meta.archives[0];
  if (!third || meta.archives.length !== 1) throw new Error('fixture: one archive record in DB');
  const input: ArchiveCheckInput = {
    archives: meta.archives,
    purges: meta.purges,
    valid: meta.checkpoints,
    logged: new Set(meta.checkpoints.map((c) => c.n)),
    signedUpTo: meta.maxSeq,
    ledgerId: meta.ledgerId,
    dir: a.archiveDir,
    expiredBefore: null,
  };
  const at = (seq: number): Checkpoint => {
    const c = meta.checkpoints.find((x) => x.seq === seq);
    if (!c) throw new Error(`fixture: no checkpoint at ${seq}`);
    return c;
  };
  return { a, input, third, at };
}

/**
 * Rewrites an archive's content into a new file and returns the record naming it with the new
 * file's SHA-256: what a key holder's record would state, so the checks after the hash decide.
 */
function rewritten(
  dir: string,
  a: Archived,
  edit: (c: ArchiveContent) => ArchiveContent,
): Archived {
  const c = edit(parseArchive(readFileSync(join(dir, a.file))));
  const file = `${a.file}.edited`;
  const w = writeArchive(join(dir, file), c.header, [c.records], [c.seals]);
  return { ...a, file, sha256: w.sha256, bytes: w.bytes };
}

describe('checkArchives', () => {
  it('accepts the real archives, walks into the records held by files, and counts each once', () => {
    const { input, third } = fixture();
    // The database's record listed twice, as a file would also list it: one entry, one count.
    const r = checkArchives({ ...input, archives: [third, third] });
    expect(r.problems).toEqual([]);
    expect(r.archives.map((e) => [e.fromSeq, e.toSeq, e.checked])).toEqual([
      [1, 61, true],
      [62, 121, true],
      [122, third.toSeq, true],
    ]);
    expect(r.records).toBe(third.toSeq);
    expect(r.warnings).toEqual([]);
  });

  it('without a checkpoint log warns about the database record only, not about the records inside checked files', () => {
    const { input, third } = fixture();
    const r = checkArchives({ ...input, logged: null });
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([
      expect.stringMatching(new RegExp(`^archive record ${third.seq}: no external checkpoint log`)),
    ]);
  });

  it('a record no signature covers is forged_purge only: its file is not read nor its link checked', () => {
    const { input, third } = fixture();
    const r = checkArchives({ ...input, signedUpTo: third.seq - 1 });
    expect(r.problems.map((p) => [p.class, p.seq])).toEqual([['forged_purge', 122]]);
    expect(r.archives).toEqual([expect.objectContaining({ fromSeq: 122, checked: false })]);
    expect(r.records).toBe(0);
  });

  it('a missing file is archive_missing naming the directory', () => {
    const { a, input, third } = fixture();
    rmSync(join(a.archiveDir, third.file));
    const r = checkArchives(input);
    expect(r.problems).toEqual([
      expect.objectContaining({
        class: 'archive_missing',
        seq: 122,
        toSeq: third.toSeq,
        detail: expect.stringContaining(`no such file in ${a.archiveDir}`) as string,
      }),
    ]);
  });

  it('a missing file is allowed only when the signed checkpoint time (not the record) is before the expiry', () => {
    const { a, input, third, at } = fixture();
    rmSync(join(a.archiveDir, third.file));
    const sealed = at(third.toSeq).time;
    // The record claims an ancient checkpoint time: the signed one decides.
    const archives = [{ ...third, checkpointTime: 0 }];
    const atExpiry = checkArchives({ ...input, archives, expiredBefore: sealed });
    expect(atExpiry.problems.map((p) => p.class)).toEqual(['archive_missing']);
    const after = checkArchives({ ...input, archives, expiredBefore: sealed + 1 });
    expect(after.problems).toEqual([]);
    expect(after.warnings.join('\n')).toMatch(/is not in .*past the signed retention/);
  });

  it('something other than a regular file in its place is archive_modified, saying what it is', () => {
    const { a, input, third } = fixture();
    const path = join(a.archiveDir, third.file);
    rmSync(path);
    mkdirSync(path);
    const r = checkArchives(input);
    expect(r.problems).toEqual([
      expect.objectContaining({
        class: 'archive_modified',
        seq: 122,
        detail: expect.stringMatching(/: the file is not a regular file$/) as string,
      }),
    ]);
  });

  it('a file of the signed SHA-256 that is not an archive is archive_modified with the parse error', () => {
    const { a, input, third } = fixture();
    const file = `${third.file}.junk`;
    writeFileSync(join(a.archiveDir, file), 'not gzip');
    const sha256 = createHash('sha256').update('not gzip').digest('hex');
    const r = checkArchives({ ...input, archives: [{ ...third, file, sha256, bytes: 8 }] });
    expect(r.problems).toEqual([
      expect.objectContaining({
        class: 'archive_modified',
        seq: 122,
        detail: expect.stringMatching(/: not a readable gzip file/) as string,
      }),
    ]);
  });

  it('a retention purge record found inside a checked file states the link of the archive that holds it', () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock, key } = openLedger(dir, {
      checkpointEvery: 50,
      retentionDays: 400,
    });
    appendRecords(ledger, clock, 60); // checkpoints at 1 and 61, day 0
    clock.advance(500 * DAY_MS);
    appendRecords(ledger, clock, 60, 60); // checkpoint at 121, day 500
    expect(pruneExpired({ ledger, key, retentionDays: 400, now: clock.now })).toMatchObject({
      fromSeq: 1,
      toSeq: 61,
    });
    appendRecords(ledger, clock, 60, 120);
    clock.advance(100 * DAY_MS);
    appendRecords(ledger, clock, 5, 180);
    const archived = archiveExpired({
      ledger,
      key,
      afterDays: 30,
      dir: join(dir, 'archive'),
      now: clock.now,
    });
    checkpointer.close();
    ledger.close();
    expect(archived?.fromSeq).toBe(62);
    const db = new Database(join(dir, 'audit.db'), { readonly: true });
    const meta = readMeta(db);
    db.close();
    // The purge record went into the file: only the file states the chain at seq 61.
    expect(meta.purges).toEqual([]);
    const r = checkArchives({
      archives: meta.archives,
      purges: meta.purges,
      valid: meta.checkpoints,
      logged: new Set(meta.checkpoints.map((c) => c.n)),
      signedUpTo: meta.maxSeq,
      ledgerId: meta.ledgerId,
      dir: join(dir, 'archive'),
      expiredBefore: null,
    });
    expect(r.problems).toEqual([]);
    expect(r.archives).toEqual([expect.objectContaining({ fromSeq: 62, checked: true })]);
    expect(r.warnings).toEqual([]);
  });

  it('audit.archived and retention purge records inside a checked file that lack fields are passed over', () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock, key } = openLedger(dir, { checkpointEvery: 50 });
    appendRecords(ledger, clock, 60); // checkpoints at 1 and 61
    // Records of those types that are not what the ledger writes: no range they could claim.
    for (const type of ['audit.archived', 'audit.retention_purge']) {
      ledger.append({ time: clock.now(), source: 'system', type, attrs: { note: 'no range' } });
    }
    appendRecords(ledger, clock, 58, 60); // checkpoint at 121
    clock.advance(100 * DAY_MS);
    appendRecords(ledger, clock, 5, 118);
    const archiveDir = join(dir, 'archive');
    const archived = archiveExpired({
      ledger,
      key,
      afterDays: 30,
      dir: archiveDir,
      now: clock.now,
    });
    checkpointer.close();
    ledger.close();
    expect(archived).toMatchObject({ fromSeq: 1, toSeq: 121 });
    const db = new Database(join(dir, 'audit.db'), { readonly: true });
    const meta = readMeta(db);
    db.close();
    const r = checkArchives({
      archives: meta.archives,
      purges: meta.purges,
      valid: meta.checkpoints,
      logged: new Set(meta.checkpoints.map((c) => c.n)),
      signedUpTo: meta.maxSeq,
      ledgerId: meta.ledgerId,
      dir: archiveDir,
      expiredBefore: null,
    });
    expect(r.problems).toEqual([]);
    expect(r.archives).toEqual([
      expect.objectContaining({ fromSeq: 1, toSeq: 121, checked: true }),
    ]);
    expect(r.records).toBe(121);
    expect(r.warnings).toEqual([]);
  });

  const headerEdits: [string, (h: ArchiveContent['header']) => ArchiveContent['header']][] = [
    ['another ledger', (h) => ({ ...h, ledgerId: 'another-ledger' })],
    ['another first seq', (h) => ({ ...h, fromSeq: h.fromSeq + 1 })],
    ['another last seq', (h) => ({ ...h, toSeq: h.toSeq - 1 })],
    ['another chain', (h) => ({ ...h, chain: 'ab'.repeat(32) })],
    ['another previous chain', (h) => ({ ...h, prevChain: 'ab'.repeat(32) })],
  ];
  it.each(headerEdits)(
    'a file of the signed SHA-256 whose header states %s is archive_modified',
    (_, edit) => {
      const { a, input, third } = fixture();
      const forged = rewritten(a.archiveDir, third, (c) => ({ ...c, header: edit(c.header) }));
      const r = checkArchives({ ...input, archives: [forged] });
      expect(r.problems).toEqual([
        expect.objectContaining({
          class: 'archive_modified',
          seq: 122,
          detail: expect.stringMatching(
            /its header states another ledger, range or chain$/,
          ) as string,
        }),
      ]);
      expect(r.archives[0]?.checked).toBe(false);
      expect(r.records).toBe(0);
    },
  );

  it('a row that does not re-hash is archive_modified naming the record', () => {
    const { a, input, third } = fixture();
    const forged = rewritten(a.archiveDir, third, (c) => {
      const records = c.records.map((row) => [...row]);
      const row = records[8];
      if (!row) throw new Error('fixture: row 130');
      row[1] = (row[1] as number) + 1; // the time of seq 130
      return { ...c, records };
    });
    const r = checkArchives({ ...input, archives: [forged] });
    expect(r.problems).toEqual([
      expect.objectContaining({
        class: 'archive_modified',
        seq: 122,
        detail: expect.stringMatching(/: record 130 does not match its leaf hash$/) as string,
      }),
    ]);
    expect(r.archives[0]?.checked).toBe(false);
  });

  it('rows that stop short of the signed checkpoint are archive_modified, naming where they end', () => {
    const { a, input, third } = fixture();
    const forged = rewritten(a.archiveDir, third, (c) => ({
      ...c,
      header: { ...c.header, records: c.records.length - 3 },
      records: c.records.slice(0, -3),
    }));
    const r = checkArchives({ ...input, archives: [forged] });
    expect(r.problems).toEqual([
      expect.objectContaining({
        class: 'archive_modified',
        seq: 122,
        detail: expect.stringMatching(
          new RegExp(
            `: its rows re-hash to seq ${third.toSeq - 3}, not to the chain checkpoint #${third.checkpoint} signs at seq ${third.toSeq}$`,
          ),
        ) as string,
      }),
    ]);
  });

  it('every row re-hashing to a chain other than the signed one is archive_modified', () => {
    const { a, input, third, at } = fixture();
    // A record, header and checkpoint that agree on a chain the rows do not reach.
    const chain = 'cd'.repeat(32);
    const forged = rewritten(a.archiveDir, { ...third, chain }, (c) => ({
      ...c,
      header: { ...c.header, chain },
    }));
    const valid = input.valid.map((c) => (c === at(third.toSeq) ? { ...c, chain } : c));
    const r = checkArchives({ ...input, valid, archives: [forged] });
    expect(r.problems).toEqual([
      expect.objectContaining({
        class: 'archive_modified',
        seq: 122,
        detail: expect.stringMatching(
          new RegExp(`its rows re-hash to seq ${third.toSeq}, not`),
        ) as string,
      }),
    ]);
  });

  it('a file with no rows whose signed chain is its previous chain is archive_modified', () => {
    const { a, input, third, at } = fixture();
    const chain = third.prevChain;
    const forged = rewritten(a.archiveDir, { ...third, chain }, (c) => ({
      header: { ...c.header, chain, records: 0, seals: 0 },
      records: [],
      seals: [],
    }));
    const valid = input.valid.map((c) => (c === at(third.toSeq) ? { ...c, chain } : c));
    const r = checkArchives({ ...input, valid, archives: [forged] });
    expect(r.problems).toEqual([
      expect.objectContaining({
        class: 'archive_modified',
        seq: 122,
        detail: expect.stringMatching(/its rows re-hash to seq 121, not/) as string,
      }),
    ]);
  });

  describe('the link to the records before an archive', () => {
    /** The database's archive record alone, files not read: only DB records state seq 121. */
    function unread() {
      const f = fixture();
      return { ...f, input: { ...f.input, dir: undefined } };
    }
    const purge = (seq: number, chain: string): Purge => ({
      seq,
      time: 0,
      fromSeq: 1,
      toSeq: 121,
      chain,
    });

    it('unknown: a warning naming the seq before it', () => {
      const { input } = unread();
      const r = checkArchives(input);
      expect(r.problems).toEqual([]);
      expect(r.warnings).toContainEqual(
        expect.stringMatching(
          /seq 122\.\.\d+\): no archive or purge record ending at seq 121 is known, so its link/,
        ),
      );
    });

    it('a signed record ending before it with another chain is archive_modified', () => {
      const { input, at } = unread();
      const ok = checkArchives({ ...input, purges: [purge(input.signedUpTo, at(121).chain)] });
      expect(ok.problems).toEqual([]);
      expect(ok.warnings.join('\n')).not.toMatch(/ending at seq 121/);
      const r = checkArchives({ ...input, purges: [purge(input.signedUpTo, 'ef'.repeat(32))] });
      expect(r.problems).toEqual([
        expect.objectContaining({
          class: 'archive_modified',
          seq: 122,
          detail: expect.stringMatching(
            /: its previous chain is not the chain at seq 121 that the record before it states$/,
          ) as string,
        }),
      ]);
    });

    it('a record no signature covers does not decide the link', () => {
      const { input } = unread();
      const r = checkArchives({ ...input, purges: [purge(input.signedUpTo + 1, 'ef'.repeat(32))] });
      expect(r.problems).toEqual([]);
      expect(r.warnings.join('\n')).toMatch(/no archive or purge record ending at seq 121/);
    });

    it('of two signed records ending at the same seq, the newer one decides', () => {
      const { input, at } = unread();
      const good = at(121).chain;
      const bad = 'ef'.repeat(32);
      const newerGood = checkArchives({ ...input, purges: [purge(10, bad), purge(20, good)] });
      expect(newerGood.problems).toEqual([]);
      const newerBad = checkArchives({ ...input, purges: [purge(10, good), purge(20, bad)] });
      expect(newerBad.problems.map((p) => p.class)).toEqual(['archive_modified']);
    });
  });

  describe('without an archive directory', () => {
    const { key } = resolveSigningKey(undefined, join(tempDir(), 'audit.db'));
    /** `n` signed archive records of 10 records each (seq 1..10n), listed newest first. */
    function records(n: number): ArchiveCheckInput {
      const valid: Checkpoint[] = [];
      const archives: Archived[] = [];
      let prevChain = '00'.repeat(32);
      for (let i = 1; i <= n; i++) {
        const chain = i.toString(16).padStart(64, '0');
        valid.push(
          signCheckpoint(
            { ledgerId: 'L', n: i, seq: 10 * i, chain, time: i, reason: 'records', prev: null },
            key,
          ),
        );
        archives.unshift({
          seq: 10 * n + i,
          time: i,
          fromSeq: 10 * i - 9,
          toSeq: 10 * i,
          chain,
          prevChain,
          records: 10,
          checkpoint: i,
          checkpointTime: i,
          firstTime: i,
          lastTime: i,
          file: `L/${i}.twa.gz`,
          sha256: '0'.repeat(64),
          bytes: 1,
        });
        prevChain = chain;
      }
      return {
        archives,
        purges: [],
        valid,
        logged: new Set(valid.map((c) => c.n)),
        signedUpTo: 20 * n,
        ledgerId: 'L',
        dir: undefined,
        expiredBefore: null,
      };
    }

    it('five archives: one warning naming each range and the record total', () => {
      const r = checkArchives(records(5));
      expect(r.problems).toEqual([]);
      expect(r.warnings).toEqual([
        '50 archived record(s) not checked (seq 1..10 in L/1.twa.gz, seq 11..20 in L/2.twa.gz, seq 21..30 in L/3.twa.gz, seq 31..40 in L/4.twa.gz, seq 41..50 in L/5.twa.gz): pass --archive DIR to re-hash them',
      ]);
    });

    it('more than five: the first five by seq and how many more', () => {
      const r = checkArchives(records(7));
      expect(r.problems).toEqual([]);
      expect(r.warnings).toEqual([
        '70 archived record(s) not checked (seq 1..10 in L/1.twa.gz, seq 11..20 in L/2.twa.gz, seq 21..30 in L/3.twa.gz, seq 31..40 in L/4.twa.gz, seq 41..50 in L/5.twa.gz, 2 more file(s)): pass --archive DIR to re-hash them',
      ]);
    });
  });
});
