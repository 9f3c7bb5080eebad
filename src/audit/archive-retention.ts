import { closeSync, existsSync, fsyncSync, openSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  checkpointColumns,
  checkpointFromRow,
  checkpointSignatureValid,
  type Checkpoint,
  type CheckpointRow,
} from './checkpoint.js';
import type { Ledger } from './ledger.js';
import { DAY_MS } from './day.js';
import type { TrustedKey } from './signing-keys.js';

/** Archive file names as archiveFileName writes them. */
const NAME = /^(\d{12})-(\d{12})\.twa\.gz$/;

/** What one pass removed; also the attributes of its `audit.archive_expired` record. */
export interface ExpiredArchives {
  files: { file: string; fromSeq: number; toSeq: number; checkpoint: number }[];
  retentionDays: number;
  /** Files whose checkpoint was signed before this time (unix ms) were removed. */
  cutoff: number;
  /** Seq of the `audit.archive_expired` record. */
  seq: number;
}

export interface ArchiveExpiryOptions {
  ledger: Ledger;
  retentionDays: number;
  /** The archive directory (config `audit.archive.dir`). */
  dir: string;
  /** The writer's own key: a checkpoint's time is believed only under its signature. */
  key: Pick<TrustedKey, 'keyId' | 'publicKey'>;
  now?: () => number;
  logger?: Logger;
}

/**
 * Removes archive files whose whole range is past retention, so a year of archives does not
 * grow forever. A file goes only when (1) its range is no longer in the database, and (2) the
 * checkpoint at its last seq verifies under the writer's key and was signed more than
 * `retentionDays` before the newest authentic checkpoint: a DB writer who edits a checkpoint's
 * time cannot make a young file look old. The cutoff is measured from the newest checkpoint, not
 * the clock, so `verify --archive`, which judges a missing file by the same signed times
 * (verify-archive.ts), always calls these removals expired. The `audit.archive_expired` record
 * naming the files commits before they are removed (a crash in between leaves files that the
 * next pass removes; the record only ever overstates).
 *
 * Returns undefined when nothing is expired.
 */
export function removeExpiredArchives(o: ArchiveExpiryOptions): ExpiredArchives | undefined {
  const { ledger } = o;
  const dir = join(o.dir, ledger.ledgerId);
  if (!existsSync(dir)) return undefined;
  const db = ledger.db;
  const cols = checkpointColumns(db);
  // The first row that verifies under the writer's key: a DB writer cannot forge its time.
  const authentic = (rows: CheckpointRow[]): Checkpoint | undefined =>
    rows
      .map((r) => checkpointFromRow(r, ledger.ledgerId))
      .find((c) => c.keyId === o.key.keyId && checkpointSignatureValid(c, o.key.publicKey));
  const newest = authentic(
    db.prepare(`SELECT ${cols} FROM checkpoints ORDER BY n DESC LIMIT 1`).all() as CheckpointRow[],
  );
  if (!newest) return undefined;
  const cutoff = newest.time - o.retentionDays * DAY_MS;
  const first = (db.prepare('SELECT MIN(seq) AS s FROM records').get() as { s: number | null }).s;
  const files: ExpiredArchives['files'] = [];
  for (const name of readdirSync(dir).sort()) {
    const m = NAME.exec(name);
    if (!m) continue;
    const fromSeq = Number(m[1]);
    const toSeq = Number(m[2]);
    if (first !== null && toSeq >= first) break; // still (partly) in the database
    const cp = authentic(
      db
        .prepare(`SELECT ${cols} FROM checkpoints WHERE seq = ? ORDER BY n`)
        .all(toSeq) as CheckpointRow[],
    );
    if (!cp || !(cp.time < cutoff)) break; // names sort in seq order: the rest is younger
    files.push({ file: `${ledger.ledgerId}/${name}`, fromSeq, toSeq, checkpoint: cp.n });
  }
  if (files.length === 0) return undefined;
  const attrs = { files, retentionDays: o.retentionDays, cutoff };
  const [committed] = ledger.commitWith(
    [{ time: (o.now ?? Date.now)(), source: 'system', type: 'audit.archive_expired', attrs }],
    () => undefined,
  );
  for (const f of files) rmSync(join(o.dir, f.file), { force: true });
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  o.logger?.info(
    { files: files.length, toSeq: files.at(-1)?.toSeq, recordSeq: committed?.seq },
    'audit retention: removed archive files past retention',
  );
  return { ...attrs, seq: committed?.seq ?? 0 };
}
