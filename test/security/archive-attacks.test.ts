import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { archiveExpired } from '../../src/audit/archive.js';
import { removeExpiredArchives } from '../../src/audit/archive-retention.js';
import { DAY_MS, pruneExpired } from '../../src/audit/retention.js';
import { loadTrustedKey } from '../../src/audit/signing-keys.js';
import { verifyLedger } from '../../src/audit/verify.js';
import { archivedIntegrity } from '../compliance/archived-report.js';
import { archivedLedger, type Archived } from '../audit/archive-helpers.js';
import { appendRecords, openLedger, tamper, tempDir } from '../audit/helpers.js';

/**
 * Adversarial review of ledger archival (issue #16, trust model of #14). The attacker writes the
 * database and the archive directory, never the signing key or the external checkpoint log: the
 * public key and a copy of the log are kept outside the data directory, so verdicts are anchored.
 */
function anchors(a: Archived): { log: string; pub: string } {
  const outside = tempDir('tw-anchors-');
  const log = join(outside, 'checkpoints.jsonl');
  const pub = join(outside, 'signing.pub');
  copyFileSync(join(a.dir, 'checkpoints.jsonl'), log);
  copyFileSync(join(a.dir, 'signing.pub'), pub);
  return { log, pub };
}

interface CheckpointRow {
  n: number;
  seq: number;
  chain: Buffer;
  reason: string;
  key_id: string;
  sig: Buffer;
}

/**
 * Appends checkpoint n+1 to the database: the newest authentic checkpoint's signature, chain and
 * seq, with a time and retention the attacker chose. No key is needed to write it.
 */
function forgeNewerCheckpoint(dbPath: string, time: number, retentionDays: number): void {
  tamper(dbPath, (db) => {
    const top = db
      .prepare('SELECT n, seq, chain, reason, key_id, sig FROM checkpoints ORDER BY n DESC LIMIT 1')
      .get() as CheckpointRow;
    db.prepare(
      'INSERT INTO checkpoints (n, seq, chain, time, reason, key_id, prev, sig, retention_days) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(
      top.n + 1,
      top.seq,
      top.chain,
      time,
      'heartbeat',
      top.key_id,
      top.sig,
      top.sig,
      retentionDays,
    );
  });
}

describe('archive attacks (DB writer + archive dir writer, no key, log kept elsewhere)', () => {
  it('a copied checkpoint with a later time does not make a young archive file expire in verify', async () => {
    const a = archivedLedger(); // third file 122..245: sealed on day 200, ledger closed on day 300
    const { log, pub } = anchors(a);
    forgeNewerCheckpoint(a.dbPath, a.clock.now() + 1000 * DAY_MS, 400);
    rmSync(a.files[2] ?? '');
    const r = await verifyLedger({
      dbPath: a.dbPath,
      checkpointLog: log,
      trusted: [loadTrustedKey(pub)],
      archiveDir: a.archiveDir,
    });
    expect(r.anchors.anchored).toBe(true);
    // The removed file is younger than the signed retention: damage, never a warning.
    expect(r.problems.map((p) => p.class)).toContain('archive_missing');
  });

  it('a copied checkpoint with a later time does not make the retention job remove a young file', () => {
    const a = archivedLedger();
    forgeNewerCheckpoint(a.dbPath, a.clock.now() + 1000 * DAY_MS, 400);
    const opened = openLedger(a.dir, { clock: a.clock, checkpointEvery: 50, retentionDays: 400 });
    try {
      removeExpiredArchives({
        ledger: opened.ledger,
        retentionDays: 400,
        dir: a.archiveDir,
        key: opened.key,
      });
    } catch {
      // Refusing to run over a forged checkpoint is a correct outcome too.
    } finally {
      opened.checkpointer.close();
      opened.ledger.close();
    }
    // Day 300 of the ledger: none of the files is past 400 days.
    expect(a.files.map((f) => existsSync(f))).toEqual([true, true, true]);
  });

  // Whoever writes the archive directory can put anything under a file's name: verify must
  // report it, never throw (a crash is no verdict) or block (a FIFO with no writer).
  it.each([
    [
      'a 3 GiB sparse file',
      (f: string) => {
        writeFileSync(f, '');
        truncateSync(f, 3 * 1024 ** 3);
      },
    ],
    ['a directory', (f: string) => mkdirSync(f)],
    ['a FIFO', (f: string) => execFileSync('mkfifo', [f])],
  ])(
    'an archive file replaced by %s is archive_modified, not a crash or a hang',
    async (_, put) => {
      const a = archivedLedger();
      const { log, pub } = anchors(a);
      const young = a.files[2] ?? '';
      rmSync(young);
      put(young);
      const r = await verifyLedger({
        dbPath: a.dbPath,
        checkpointLog: log,
        trusted: [loadTrustedKey(pub)],
        archiveDir: a.archiveDir,
      });
      expect(r.problems.map((p) => p.class)).toContain('archive_modified');
    },
  );

  it('a symlink planted at the temp name does not make the archive job write outside the directory', () => {
    const dir = tempDir();
    const archiveDir = join(dir, 'archive');
    const { ledger, checkpointer, clock, key } = openLedger(dir, { checkpointEvery: 50 });
    appendRecords(ledger, clock, 60); // checkpoints at seq 1 and 61
    clock.advance(100 * DAY_MS);
    appendRecords(ledger, clock, 5, 60);
    // The temp name is predictable (range from the database, pid from ps): point it at a file
    // the service can write but the attacker must not reach, e.g. the external checkpoint log.
    const victim = join(tempDir('tw-victim-'), 'checkpoints.jsonl');
    writeFileSync(victim, 'precious\n');
    const target = join(archiveDir, ledger.ledgerId, '000000000001-000000000061.twa.gz');
    mkdirSync(dirname(target), { recursive: true });
    symlinkSync(victim, `${target}.tmp-${process.pid}`);
    try {
      archiveExpired({
        ledger,
        key,
        afterDays: 30,
        dir: archiveDir,
        now: clock.now,
        maxRecordsPerPass: 61,
      });
    } catch {
      // Refusing the pass is a correct outcome too.
    } finally {
      checkpointer.close();
      ledger.close();
    }
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
  });
});

describe('a back-dated checkpoint row does not get young records removed', () => {
  // The DB writer moves the authentic checkpoints through seq 61 1000 days into the past: the
  // rows now say the segment they seal is old, but their signatures no longer verify. Before
  // the selection checked them, the retention job pruned (and the archive job archived) records
  // 1..61 written today.
  it.each(['retention', 'archive'] as const)('the %s pass refuses and removes nothing', (job) => {
    const dir = tempDir();
    const { ledger, checkpointer, clock, key } = openLedger(dir, { checkpointEvery: 50 });
    appendRecords(ledger, clock, 60); // checkpoints at seq 1 and 61, today
    appendRecords(ledger, clock, 5, 60);
    ledger.flush();
    tamper(join(dir, 'audit.db'), (db) => {
      db.prepare('UPDATE checkpoints SET time = time - ? WHERE seq <= 61').run(1000 * DAY_MS);
    });
    const pass = () =>
      job === 'retention'
        ? pruneExpired({ ledger, key, retentionDays: 400, now: clock.now })
        : archiveExpired({ ledger, key, afterDays: 30, dir: join(dir, 'archive'), now: clock.now });
    try {
      expect(pass).toThrow(/does not verify under the writer's key/);
      expect(ledger.db.prepare('SELECT MIN(seq) AS s FROM records').get()).toEqual({ s: 1 });
    } finally {
      checkpointer.close();
      ledger.close();
    }
  });
});

describe('report over a period whose oldest records sit in archives named only inside archives', () => {
  // archivedLedger: day 0 holds seq 1..121 (two files, whose audit.archived records are inside
  // the third file, 122..243); the database names only the third file.
  it('the integrity section accounts for every archived record of the period', async () => {
    const i = await archivedIntegrity(archivedLedger(), 0, 400);
    expect(i.status).toBe('verified');
    // Before the fix: archived = [122..243] only, reason null: the day-0 records (seq 1..121)
    // of the period vanished from the report without a word while it said "verified".
    expect(i.archived.map((x) => [x.fromSeq, x.toSeq])).toEqual([[122, 243]]);
    expect(i.archivedEarlier).toEqual({ toSeq: 121, namedIn: i.archived[0]!.file });
  });
});
