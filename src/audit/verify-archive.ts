import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArchive, readArchiveFile, type ArchiveContent } from './archive-file.js';
import { rehashArchivedRows } from './archive-rehash.js';
import { ZERO_HASH } from './canonical.js';
import type { Checkpoint } from './checkpoint.js';
import type { Damage } from './damage.js';
import { parseArchived, parsePurge, type Archived, type Purge } from './verify-meta.js';
import { checkPurge } from './verify-purge.js';

/** One archived range as `verify` lists it. */
export interface ArchiveEntry {
  fromSeq: number;
  toSeq: number;
  records: number;
  file: string;
  /** Seq of its `audit.archived` record (in the database or inside a later archive file). */
  seq: number;
  /** The file was read and its rows re-hashed to the signed checkpoint. */
  checked: boolean;
}

export interface ArchiveCheckInput {
  /** `audit.archived` records of the database. */
  archives: readonly Archived[];
  /** `audit.retention_purge` records of the database. */
  purges: readonly Purge[];
  /** Authentic checkpoints, any order. */
  valid: readonly Checkpoint[];
  logged: ReadonlySet<number> | null;
  /** Highest seq a checkpoint or batch seal signs (verify.ts). */
  signedUpTo: number;
  ledgerId: string | null;
  /** Archive directory; undefined: files are not read (a warning names the ranges). */
  dir: string | undefined;
  /**
   * Ranges sealed before this time (unix ms) are past the signed retention: a missing file is
   * then a warning (the retention job or an operator removed an expired file), not damage. Null:
   * no signed retention.
   */
  expiredBefore: number | null;
}

export interface ArchiveCheck {
  problems: Damage[];
  warnings: string[];
  archives: ArchiveEntry[];
  /** Records re-hashed from archive files. */
  records: number;
}

/**
 * Checks archived ranges (CloudTrail validate-logs for the archive directory). Each one is
 * evidence only when (trusting only signatures, never the file or the database):
 * 1. its `audit.archived` record is signed as a retention purge must be (verify-purge.ts rules
 *    1 and 2: covered by a seal or checkpoint, ends at a logged checkpoint whose chain it states),
 *    or it sits inside an archive file that itself re-hashed to a signed checkpoint;
 * 2. the file it names exists and hashes to the SHA-256 the record states;
 * 3. its header states the same ledger, range and chains, and its rows re-hash (the codec,
 *    canonical and leaf code of the database scan) from the stated previous chain to the chain
 *    the checkpoint signs;
 * 4. its previous chain is the chain of the archive or purge that ends right before it (the
 *    zero hash at seq 1), when that record is known.
 * Archive records found inside checked files extend the walk backwards: an `audit.archived`
 * record is appended after its range, so a later archive may hold it.
 */
export function checkArchives(i: ArchiveCheckInput): ArchiveCheck {
  const problems: Damage[] = [];
  const warnings: string[] = [];
  const entries: ArchiveEntry[] = [];
  let records = 0;
  const before = new Map<number, string>(); // toSeq -> chain, of every known removal
  const note = (p: Purge): void => {
    if (!before.has(p.toSeq)) before.set(p.toSeq, p.chain);
  };
  // Only records a signature covers: an appended one must not decide what an archive links to.
  for (const p of [...i.purges, ...i.archives].sort((a, b) => b.seq - a.seq)) {
    if (p.seq <= i.signedUpTo) note(p);
  }
  const queue: { a: Archived; inFile: boolean }[] = i.archives.map((a) => ({ a, inFile: false }));
  const seen = new Set<string>();
  const linked: Archived[] = [];
  const damaged = (
    a: Archived,
    cls: 'archive_missing' | 'archive_modified',
    detail: string,
  ): void => {
    problems.push({
      class: cls,
      seq: a.fromSeq,
      toSeq: a.toSeq,
      detail: `archive ${a.file} (seq ${a.fromSeq}..${a.toSeq}, audit.archived record ${a.seq}): ${detail}`,
    });
  };
  while (queue.length > 0) {
    const { a, inFile } = queue.shift() as { a: Archived; inFile: boolean };
    const key = `${a.fromSeq}:${a.toSeq}:${a.sha256}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const entry: ArchiveEntry = {
      fromSeq: a.fromSeq,
      toSeq: a.toSeq,
      records: a.records,
      file: a.file,
      seq: a.seq,
      checked: false,
    };
    entries.push(entry);
    const pc = checkPurge({
      purge: a,
      kind: 'archive',
      valid: i.valid,
      logged: i.logged,
      // Inside a file that re-hashed to a signed checkpoint, the record is signed by that chain.
      signedUpTo: inFile ? Number.MAX_SAFE_INTEGER : i.signedUpTo,
    });
    problems.push(...pc.problems);
    if (!inFile) warnings.push(...pc.warnings);
    if (pc.problems.length > 0) continue;
    linked.push(a);
    if (i.dir === undefined) continue;
    const path = resolve(i.dir, a.file);
    if (!existsSync(path)) {
      const sealed = i.valid.find((c) => c.seq === a.toSeq)?.time ?? a.checkpointTime;
      if (i.expiredBefore !== null && sealed < i.expiredBefore) {
        warnings.push(
          `archive ${a.file} (seq ${a.fromSeq}..${a.toSeq}) is not in ${i.dir}: its records are past the signed retention, so removing the file was allowed`,
        );
      } else {
        damaged(a, 'archive_missing', `no such file in ${i.dir}`);
      }
      continue;
    }
    const read = readArchiveFile(path, a.bytes);
    if ('problem' in read) {
      damaged(a, 'archive_modified', `the file ${read.problem}`);
      continue;
    }
    const { data, sha256 } = read;
    if (sha256 !== a.sha256) {
      damaged(a, 'archive_modified', `SHA-256 ${sha256} is not the signed ${a.sha256}`);
      continue;
    }
    let content: ArchiveContent;
    try {
      content = parseArchive(data);
    } catch (err) {
      damaged(a, 'archive_modified', (err as Error).message);
      continue;
    }
    const h = content.header;
    if (
      h.ledgerId !== i.ledgerId ||
      h.fromSeq !== a.fromSeq ||
      h.toSeq !== a.toSeq ||
      h.chain !== a.chain ||
      h.prevChain !== a.prevChain
    ) {
      damaged(a, 'archive_modified', 'its header states another ledger, range or chain');
      continue;
    }
    const r = rehashArchivedRows(a.prevChain, a.fromSeq, content.records);
    if (r.problem) {
      damaged(a, 'archive_modified', r.problem.detail);
      continue;
    }
    if (r.rows !== a.toSeq - a.fromSeq + 1 || r.chain !== a.chain) {
      damaged(
        a,
        'archive_modified',
        `its rows re-hash to seq ${a.fromSeq + r.rows - 1}, not to the chain checkpoint #${a.checkpoint} signs at seq ${a.toSeq}`,
      );
      continue;
    }
    entry.checked = true;
    records += r.rows;
    for (const row of content.records) {
      const [seq, time, , type, , , attrs] = row;
      if (typeof seq !== 'number' || typeof time !== 'number' || typeof attrs !== 'string')
        continue;
      if (type === 'audit.archived') {
        const found = parseArchived({ seq, time, attrs });
        if (found) {
          note(found);
          queue.push({ a: found, inFile: true });
        }
      } else if (type === 'audit.retention_purge') {
        const found = parsePurge({ seq, time, attrs });
        if (found) note(found);
      }
    }
  }
  for (const a of linked) {
    const expected = a.fromSeq === 1 ? ZERO_HASH.toString('hex') : before.get(a.fromSeq - 1);
    if (expected === undefined) {
      warnings.push(
        `archive ${a.file} (seq ${a.fromSeq}..${a.toSeq}): no archive or purge record ending at seq ${a.fromSeq - 1} is known, so its link to the records before it is not checked`,
      );
    } else if (expected !== a.prevChain) {
      damaged(
        a,
        'archive_modified',
        `its previous chain is not the chain at seq ${a.fromSeq - 1} that the record before it states`,
      );
    }
  }
  entries.sort((x, y) => x.fromSeq - y.fromSeq);
  if (i.dir === undefined && entries.length > 0) {
    const n = entries.reduce((s, e) => s + e.records, 0);
    const named = entries.slice(0, 5).map((e) => `seq ${e.fromSeq}..${e.toSeq} in ${e.file}`);
    if (entries.length > 5) named.push(`${entries.length - 5} more file(s)`);
    warnings.push(
      `${n} archived record(s) not checked (${named.join(', ')}): pass --archive DIR to re-hash them`,
    );
  }
  return { problems, warnings, archives: entries, records };
}
