import Database from 'better-sqlite3';
import { TokenwatchError } from '../errors.js';
import {
  ARCHIVE_FORMAT,
  ARCHIVE_VERSION,
  RECORD_COLUMNS,
  SEAL_COLUMNS,
  writeArchive,
  type ArchivedRow,
  type WrittenArchive,
} from './archive-file.js';
import { rehashArchivedRows } from './archive-rehash.js';
import { ZERO_HASH } from './canonical.js';
import type { SealedSegment } from './sealed-segment.js';

const ROWS_SQL = `SELECT ${RECORD_COLUMNS.join(', ')} FROM records
  WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT 4096`;

/**
 * Writes the archive file of one sealed segment (archive-file.ts) from the database: its rows
 * page by page, each page re-hashed on the way from `prevChain`, and the seals up to its end.
 * Throws ERR_LEDGER_INTEGRITY (no file is left) when a row does not re-hash or the rows do not
 * reach the chain the segment's checkpoint signs: a damaged segment is never archived.
 */
export function writeSegmentArchive(
  db: Database.Database,
  ledgerId: string,
  seg: Pick<SealedSegment, 'fromSeq' | 'toSeq' | 'records' | 'checkpoint' | 'chain'>,
  prevChain: string,
  path: string,
): WrittenArchive {
  const chain = seg.chain.toString('hex');
  const sealCount = (
    db.prepare('SELECT COUNT(*) AS n FROM seals WHERE seq <= ?').get(seg.toSeq) as { n: number }
  ).n;
  const stmt = db.prepare(ROWS_SQL).raw(true);
  const pages = function* (): Generator<ArchivedRow[]> {
    let next = seg.fromSeq;
    let prev = prevChain;
    let rows = 0;
    while (next <= seg.toSeq) {
      const page = stmt.all(next, seg.toSeq) as ArchivedRow[];
      if (page.length === 0) break;
      const r = rehashArchivedRows(prev, next, page);
      if (r.problem) {
        throw new TokenwatchError(
          'ERR_LEDGER_INTEGRITY',
          `not archiving seq ${seg.fromSeq}..${seg.toSeq}: ${r.problem.detail}; run tokenwatch verify`,
        );
      }
      prev = r.chain;
      rows += r.rows;
      next = Number(page.at(-1)?.[0]) + 1;
      yield page;
    }
    if (rows !== seg.records || prev !== chain) {
      throw new TokenwatchError(
        'ERR_LEDGER_INTEGRITY',
        `not archiving seq ${seg.fromSeq}..${seg.toSeq}: the rows do not chain to checkpoint #${seg.checkpoint}; run tokenwatch verify`,
      );
    }
  };
  const seals = function* (): Generator<unknown[][]> {
    yield db
      .prepare(`SELECT ${SEAL_COLUMNS.join(', ')} FROM seals WHERE seq <= ? ORDER BY seq`)
      .raw(true)
      .all(seg.toSeq) as unknown[][];
  };
  return writeArchive(
    path,
    {
      format: ARCHIVE_FORMAT,
      version: ARCHIVE_VERSION,
      ledgerId: ledgerId,
      fromSeq: seg.fromSeq,
      toSeq: seg.toSeq,
      records: seg.records,
      seals: sealCount,
      prevChain,
      chain,
      checkpoint: seg.checkpoint,
      recordColumns: RECORD_COLUMNS,
      sealColumns: SEAL_COLUMNS,
    },
    pages(),
    seals(),
  );
}

/**
 * A whole closed ledger file (records 1..max) as one archive file: what `src/bench/ledger-disk.ts`
 * measures, with exactly the job's writer. Opens the file read-only and closes it.
 */
export function archiveWholeLedger(
  dbPath: string,
  path: string,
): WrittenArchive & { records: number } {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const last = db.prepare('SELECT seq, chain FROM records ORDER BY seq DESC LIMIT 1').get() as
      { seq: number; chain: Buffer } | undefined;
    if (!last) throw new RangeError(`${dbPath} holds no records`);
    const seg = {
      fromSeq: 1,
      toSeq: last.seq,
      records: last.seq,
      checkpoint: 0,
      chain: last.chain,
    };
    const written = writeSegmentArchive(db, 'bench', seg, ZERO_HASH.toString('hex'), path);
    return { ...written, records: last.seq };
  } finally {
    db.close();
  }
}
