import {
  existsSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ArchiveJob } from '../../src/audit/archive.js';
import { parseArchive } from '../../src/audit/archive-file.js';
import { rehashArchivedRows } from '../../src/audit/archive-rehash.js';
import { ZERO_HASH, canonicalRecord, chainHash, leafHash } from '../../src/audit/canonical.js';
import { Ledger } from '../../src/audit/ledger.js';
import { decodeColumns, encodeColumns, type StoredColumns } from '../../src/audit/record-codec.js';
import { DAY_MS } from '../../src/audit/retention.js';
import { loadTrustedKey, resolveSigningKey } from '../../src/audit/signing-keys.js';
import { checkAtStart } from '../../src/audit/startup-check.js';
import { verifyLedger, type VerifyReport } from '../../src/audit/verify.js';
import { verify } from '../../src/cli/verify.js';
import { sink } from '../helpers/sink.js';
import type { FakeClock } from './helpers.js';
import { archivedLedger, type Archived } from './archive-helpers.js';
import { appendRecords, openLedger, recomputeChain, tamper, tempDir } from './helpers.js';

/** Verifies with the archive directory (`null`: without one). */
function verifyArchived(a: Archived, archiveDir: string | null = a.archiveDir) {
  return verifyLedger({
    dbPath: a.dbPath,
    checkpointLog: join(a.dir, 'checkpoints.jsonl'),
    trusted: [loadTrustedKey(join(a.dir, 'signing.pub'))],
    archiveDir: archiveDir ?? undefined,
  });
}

/** Rewrites an archive file's lines (gunzip, edit, gzip). */
function editArchive(path: string, edit: (lines: string[]) => string[]): void {
  const lines = gunzipSync(readFileSync(path)).toString('utf8').split('\n');
  writeFileSync(path, gzipSync(edit(lines).join('\n')));
}

describe('archive', () => {
  it('archives whole sealed segments to files that verify --archive re-hashes, and removes them from the database', async () => {
    const a = archivedLedger();
    const db = new Database(a.dbPath, { readonly: true });
    const min = db.prepare('SELECT MIN(seq) AS s FROM records').get() as { s: number };
    const kept = db.prepare('SELECT COUNT(*) AS n FROM records').get() as { n: number };
    const archivedRows = db
      .prepare("SELECT COUNT(*) AS n FROM records WHERE type = 'audit.archived'")
      .get() as { n: number };
    db.close();
    expect(archivedRows.n).toBe(1); // the first two records are inside the third file
    for (const f of a.files) expect(existsSync(f)).toBe(true);
    expect(readdirSync(join(a.archiveDir, readdirSync(a.archiveDir)[0] ?? '')).sort()).toEqual(
      a.files.map((f) => f.split('/').at(-1)).sort(),
    );

    const r = await verifyArchived(a);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.range?.first).toBe(min.s);
    expect(r.records).toBe(kept.n);
    expect(r.archives.map((x) => [x.fromSeq, x.checked])).toEqual([
      [1, true],
      [62, true],
      [122, true],
    ]);
    expect(r.archivedRecords).toBe(min.s - 1);
    expect(r.warnings.join('\n')).not.toMatch(/not checked/);
  });

  it('without --archive: ok, with a warning naming the archived ranges not checked', async () => {
    const a = archivedLedger();
    const r = await verifyArchived(a, null);
    expect(r.ok).toBe(true);
    expect(r.archives).toEqual([expect.objectContaining({ fromSeq: 122, checked: false })]);
    expect(r.archivedRecords).toBe(0);
    expect(r.warnings.join('\n')).toMatch(/archived record\(s\) not checked \(seq 122\.\./);
  });

  it('a missing file is archive_missing', async () => {
    const a = archivedLedger();
    rmSync(a.files[2] ?? '');
    const r = await verifyArchived(a);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.objectContaining({ class: 'archive_missing', seq: 122 })]);
  });

  it('an archive file whose row was edited and chain recomputed is archive_modified, and its rows do not reach the signed chain', async () => {
    const a = archivedLedger();
    const path = a.files[2] ?? '';
    const original = parseArchive(readFileSync(path));
    editArchive(path, (lines) => {
      // Row of seq 130: change the needle inside the compact attrs, then recompute every
      // leaf and chain after it in the file, as an attacker without the key would.
      const rows = lines
        .slice(1, 1 + original.header.records)
        .map((l) => JSON.parse(l) as unknown[]);
      let chain: Buffer = Buffer.from(original.header.prevChain, 'hex');
      for (const row of rows) {
        const b64 = (v: unknown) => Buffer.from((v as { b64: string }).b64, 'base64');
        const stored: StoredColumns = {
          seq: row[0] as number,
          time: row[1] as number,
          source: row[2] as string | null,
          type: row[3] as string | null,
          kind: row[4] as string | null,
          fingerprint: row[5] as string | null,
          attrs: typeof row[6] === 'string' ? row[6] : b64(row[6]),
        };
        let f = decodeColumns(stored);
        if (f.seq === 130) {
          f = { ...f, attrs: f.attrs.replace('needle-000128', 'needle-999999') };
          const c = encodeColumns(f, JSON.parse(f.attrs) as unknown);
          row[6] =
            c.attrs instanceof Uint8Array
              ? { b64: Buffer.from(c.attrs).toString('base64') }
              : c.attrs;
        }
        const leaf = leafHash(canonicalRecord(f));
        chain = chainHash(chain, leaf);
        row[7] = { b64: leaf.toString('base64') };
        row[8] = { b64: chain.toString('base64') };
      }
      return [
        lines[0] ?? '',
        ...rows.map((r) => JSON.stringify(r)),
        ...lines.slice(1 + rows.length),
      ];
    });
    const edited = parseArchive(readFileSync(path));
    // Even with a file hash the attacker could make match, the rows stop at the wrong chain.
    const rehash = rehashArchivedRows(
      edited.header.prevChain,
      edited.header.fromSeq,
      edited.records,
    );
    expect(rehash.problem).toBeUndefined();
    expect(rehash.chain).not.toBe(original.header.chain);
    const r = await verifyArchived(a);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      expect.objectContaining({
        class: 'archive_modified',
        seq: 122,
        detail: expect.stringMatching(/SHA-256/) as string,
      }),
    ]);
  });

  it('an archive file swapped for another segment, or truncated, is archive_modified', async () => {
    const a = archivedLedger();
    writeFileSync(a.files[2] ?? '', readFileSync(a.files[0] ?? ''));
    const swapped = await verifyArchived(a);
    expect(swapped.problems).toEqual([
      expect.objectContaining({ class: 'archive_modified', seq: 122 }),
    ]);
    const b = archivedLedger();
    const size = readFileSync(b.files[2] ?? '').length;
    truncateSync(b.files[2] ?? '', Math.floor(size / 2));
    const truncated = await verifyArchived(b);
    expect(truncated.problems).toEqual([
      expect.objectContaining({ class: 'archive_modified', seq: 122 }),
    ]);
    expect(() => parseArchive(readFileSync(b.files[2] ?? ''))).toThrow(/gzip/);
  });

  it('an archive of the walk (found inside a later file) that was modified is reported too', async () => {
    const a = archivedLedger();
    editArchive(a.files[0] ?? '', (lines) => lines.slice(0, -2).concat(''));
    const r = await verifyArchived(a);
    expect(r.problems).toEqual([expect.objectContaining({ class: 'archive_modified', seq: 1 })]);
  });

  it('an unsigned audit.archived record appended by a DB writer is forged_purge, in verify and at start', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock } = openLedger(dir, { checkpointEvery: 50 });
    appendRecords(ledger, clock, 60); // checkpoints at 1 and 61
    appendRecords(ledger, clock, 60, 60);
    checkpointer.close();
    ledger.close();
    const dbPath = join(dir, 'audit.db');
    tamper(dbPath, (db) => {
      const chain61 = (
        db.prepare('SELECT lower(hex(chain)) AS c FROM records WHERE seq = 61').get() as {
          c: string;
        }
      ).c;
      db.prepare('DELETE FROM records WHERE seq <= 61').run();
      const max = (db.prepare('SELECT MAX(seq) AS s FROM records').get() as { s: number }).s;
      db.prepare(
        "INSERT INTO records (seq, time, source, type, kind, fingerprint, attrs, leaf, chain) VALUES (?, ?, 'system', 'audit.archived', NULL, NULL, ?, ?, ?)",
      ).run(
        max + 1,
        clock.now(),
        JSON.stringify({
          fromSeq: 1,
          toSeq: 61,
          chain: chain61,
          prevChain: ZERO_HASH.toString('hex'),
          file: 'x/000000000001-000000000061.twa.gz',
          sha256: '0'.repeat(64),
        }),
        Buffer.alloc(32),
        Buffer.alloc(32),
      );
      recomputeChain(db, max + 1);
    });
    const r = await verifyLedger({
      dbPath,
      checkpointLog: join(dir, 'checkpoints.jsonl'),
      trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
    });
    expect(r.ok).toBe(false);
    expect(r.problems).toContainEqual(
      expect.objectContaining({
        class: 'forged_purge',
        seq: 1,
        toSeq: 61,
        detail: expect.stringMatching(
          /audit\.archived record .*no checkpoint or batch seal signs it/,
        ) as string,
      }),
    );
    const reopened = reopen(dir, clock);
    try {
      const s = checkAtStart({
        db: reopened.db,
        dbPath,
        ledgerId: reopened.ledgerId,
        logPath: join(dir, 'checkpoints.jsonl'),
        trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
      });
      expect(s.ok).toBe(false);
      expect(s.finding).toMatchObject({ class: 'forged_purge' });
    } catch (err) {
      // A ledger that refuses to open over the damage is as good as a failed check.
      expect(err).toBeUndefined();
    } finally {
      reopened.close();
    }
  });

  it('an appended unsigned record ending before an archive does not decide what the archive links to', async () => {
    const a = archivedLedger();
    tamper(a.dbPath, (db) => {
      const max = (db.prepare('SELECT MAX(seq) AS s FROM records').get() as { s: number }).s;
      db.prepare(
        "INSERT INTO records (seq, time, source, type, kind, fingerprint, attrs, leaf, chain) VALUES (?, ?, 'system', 'audit.retention_purge', NULL, NULL, ?, ?, ?)",
      ).run(
        max + 1,
        a.clock.now(),
        JSON.stringify({ fromSeq: 62, toSeq: 121, chain: 'ab'.repeat(32) }),
        Buffer.alloc(32),
        Buffer.alloc(32),
      );
      recomputeChain(db, max + 1);
    });
    const r = await verifyArchived(a);
    expect(r.problems.map((p) => p.class)).toEqual(['unsealed']);
  });

  it('the start-up check accepts a ledger whose first records were archived', () => {
    const a = archivedLedger();
    const ledger = reopen(a.dir, a.clock);
    try {
      const s = checkAtStart({
        db: ledger.db,
        dbPath: a.dbPath,
        ledgerId: ledger.ledgerId,
        logPath: join(a.dir, 'checkpoints.jsonl'),
        trusted: [loadTrustedKey(join(a.dir, 'signing.pub'))],
      });
      expect(s.finding).toBeUndefined();
      expect(s.ok).toBe(true);
    } finally {
      ledger.close();
    }
  });

  it('a removed file whose range is past the signed retention is a warning; a younger one stays damage', async () => {
    const a = archivedLedger();
    // Day 450: the day-0 segments (archives 1 and 2) are past the signed 400 days; 122.. is not.
    a.clock.advance(150 * DAY_MS);
    const { ledger, checkpointer } = openLedger(a.dir, {
      clock: a.clock,
      checkpointEvery: 50,
      retentionDays: 400,
    });
    appendRecords(ledger, a.clock, 5, 300);
    checkpointer.close();
    ledger.close();
    rmSync(a.files[0] ?? '');
    const r = await verifyArchived(a);
    expect(r.problems).toEqual([]);
    expect(r.warnings.join('\n')).toMatch(
      /000000000001-000000000061\.twa\.gz \(seq 1\.\.61\) is not in .*past the signed retention/,
    );
    rmSync(a.files[2] ?? '');
    const younger = await verifyArchived(a);
    expect(younger.problems).toEqual([
      expect.objectContaining({ class: 'archive_missing', seq: 122 }),
    ]);
  });

  it('tokenwatch verify reads archive/ beside the database, or --archive DIR, and lists the archives', async () => {
    const a = archivedLedger();
    const beside = sink();
    expect(await verify(['--db', a.dbPath], beside.out)).toBe(0);
    expect(beside.text()).toMatch(/re-hashing the archive files beside the database/);
    expect(beside.text()).toMatch(/^archived: seq 1\.\.61 \(61 records\) in .*: re-hashed/m);
    expect(beside.text()).toMatch(/^archived records re-hashed: 243$/m);
    const moved = join(a.dir, 'elsewhere');
    renameSync(a.archiveDir, moved);
    const without = sink();
    expect(await verify(['--db', a.dbPath, '--json'], without.out)).toBe(0);
    const report = JSON.parse(without.text()) as VerifyReport;
    expect(report.archives).toEqual([expect.objectContaining({ fromSeq: 122, checked: false })]);
    const given = sink();
    expect(await verify(['--db', a.dbPath, '--archive', moved], given.out)).toBe(0);
    expect(given.text()).toMatch(/^archived: seq 122\.\.243 \(122 records\) in .*: re-hashed/m);
    const empty = sink();
    expect(await verify(['--db', a.dbPath, '--archive', tempDir()], empty.out)).toBe(1);
    expect(empty.text()).toMatch(/^FAILED: archive_missing at seq 122/m);
  });

  it('the job drains pass after pass on later turns of the event loop, counting what it moved', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock, key } = openLedger(dir, { checkpointEvery: 50 });
    appendRecords(ledger, clock, 60); // checkpoints at 1 and 61
    appendRecords(ledger, clock, 60, 60); // checkpoint at 121
    clock.advance(40 * DAY_MS);
    appendRecords(ledger, clock, 10, 120);
    const moved: number[] = [];
    const job = new ArchiveJob({
      ledger,
      key,
      afterDays: 30,
      dir: join(dir, 'archive'),
      maxRecordsPerPass: 61,
      now: clock.now,
      observer: { archived: (records) => moved.push(records), failed: () => undefined },
    });
    job.start();
    expect(moved).toEqual([61]); // the first pass runs at start, the next one later
    await new Promise((r) => setTimeout(r, 50));
    expect(moved).toEqual([61, 60]);
    job.close();
    job.close();
    checkpointer.close();
    ledger.close();
  });

  it('a failed pass leaves the database untouched and counts the failure', () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock, key } = openLedger(dir, { checkpointEvery: 50 });
    appendRecords(ledger, clock, 60);
    clock.advance(40 * DAY_MS);
    appendRecords(ledger, clock, 10, 60);
    // The archive directory cannot be created: a file sits where it should be.
    const blocked = join(dir, 'archive');
    writeFileSync(blocked, 'not a directory');
    let failed = 0;
    const job = new ArchiveJob({
      ledger,
      key,
      afterDays: 30,
      dir: blocked,
      now: clock.now,
      observer: { archived: () => undefined, failed: () => (failed += 1) },
    });
    const before = ledger.db.prepare('SELECT MIN(seq) AS s, COUNT(*) AS n FROM records').get();
    expect(job.runNow()).toBeUndefined();
    expect(failed).toBe(1);
    expect(ledger.db.prepare('SELECT MIN(seq) AS s, COUNT(*) AS n FROM records').get()).toEqual(
      before,
    );
    job.close();
    checkpointer.close();
    ledger.close();
  });
});

function reopen(dir: string, clock: FakeClock): Ledger {
  return new Ledger({
    path: join(dir, 'audit.db'),
    batchSize: 100,
    flushIntervalMs: 5,
    maxPending: 1000,
    hmacKeyIds: ['k1'],
    signingKey: resolveSigningKey(undefined, join(dir, 'audit.db')).key,
    now: clock.now,
  });
}
