import type Database from 'better-sqlite3';
import {
  checkpointColumns,
  checkpointFromRow,
  parseCheckpoint,
  type Checkpoint,
  type CheckpointRow,
} from './checkpoint.js';
import { hasCheckpointsTable, hasSealsTable } from './schema.js';

/** A retention purge as its `audit.retention_purge` record states it. */
export interface Purge {
  seq: number;
  time: number;
  fromSeq: number;
  toSeq: number;
  chain: string;
}

/**
 * An archive as its `audit.archived` record states it (a Purge whose records moved to a file
 * instead of going; `chain`: the chain hash at toSeq, signed by checkpoint `checkpoint`):
 * believed only once verify-purge.ts found a signature over the record.
 */
export interface Archived extends Purge {
  records: number;
  /** Chain hash (hex) before fromSeq, which the archived rows extend. */
  prevChain: string;
  checkpoint: number;
  checkpointTime: number;
  firstTime: number;
  lastTime: number;
  /** Path of the file relative to the archive directory: `<ledgerId>/<from>-<to>.twa.gz`. */
  file: string;
  /** SHA-256 (hex) of the file's bytes. */
  sha256: string;
  bytes: number;
}

/** Everything verification needs besides the record scan. */
export interface Meta {
  schemaVersion: number;
  ledgerId: string | null;
  hasCheckpoints: boolean;
  checkpoints: Checkpoint[];
  malformed: { n: number; seq: number; message: string }[];
  /** No record at all: firstSeq and maxSeq are then 0, which is also a seq a row may hold. */
  empty: boolean;
  firstSeq: number;
  maxSeq: number;
  firstTime: number | null;
  lastTime: number | null;
  purges: Purge[];
  /** `audit.archived` records, seq order. */
  archives: Archived[];
  clockSkewRecords: number;
  degraded: { windows: number; droppedRecords: number };
  /** Schema v3 `seals` table present. */
  hasSeals: boolean;
  /** The genesis record (when still there) says the writer seals every batch. */
  genesisSeals: boolean;
  /** `ledger.discontinuity` records: breaks the service was told to start over. */
  discontinuities: { seq: number; time: number; found: string; atSeq: number | null }[];
}

/**
 * Everything but the record scan; call inside one read transaction. Only the few `audit.*`
 * rows are parsed: JSON.parse per record is what a fast verifier must avoid.
 */
export function readMeta(db: Database.Database): Meta {
  const schemaVersion = db.pragma('user_version', { simple: true }) as number;
  const fromMeta = db.prepare("SELECT v FROM meta WHERE k = 'ledger_id'").get() as
    { v: string } | undefined;
  let ledgerId = fromMeta?.v ?? null;
  if (ledgerId === null) {
    const genesis = db
      .prepare("SELECT attrs FROM records WHERE seq = 1 AND type = 'ledger.genesis'")
      .get() as { attrs: string } | undefined;
    const id = genesis ? safeParse(genesis.attrs).ledgerId : undefined;
    ledgerId = typeof id === 'string' ? id : null;
  }
  // Two statements: SQLite answers MIN or MAX alone from the b-tree's edge, both at once by a
  // full scan (0.3 s per million records).
  const edge = (fn: 'MIN' | 'MAX'): number | null =>
    (db.prepare(`SELECT ${fn}(seq) AS seq FROM records`).get() as { seq: number | null }).seq;
  const ends = { first: edge('MIN'), last: edge('MAX') };
  const timeAt = (seq: number | null): number | null =>
    seq === null
      ? null
      : ((
          db.prepare('SELECT time FROM records WHERE seq = ?').get(seq) as
            { time: number } | undefined
        )?.time ?? null);
  const hasCheckpoints = hasCheckpointsTable(db);
  const checkpoints: Checkpoint[] = [];
  const malformed: Meta['malformed'] = [];
  if (hasCheckpoints) {
    const rows = db
      .prepare(`SELECT ${checkpointColumns(db)} FROM checkpoints ORDER BY n`)
      .all() as CheckpointRow[];
    for (const row of rows) {
      let parsed: Checkpoint | string;
      try {
        parsed = parseCheckpoint(checkpointFromRow(row, ledgerId ?? ''));
      } catch (err) {
        parsed = (err as Error).message;
      }
      if (typeof parsed === 'string')
        malformed.push({ n: Number(row.n), seq: Number(row.seq), message: parsed });
      else checkpoints.push(parsed);
    }
  }
  const typed = (type: string) =>
    db.prepare('SELECT seq, time, attrs FROM records WHERE type = ? ORDER BY seq').all(type) as {
      seq: number;
      time: number;
      attrs: string;
    }[];
  const purges: Purge[] = [];
  for (const r of typed('audit.retention_purge')) {
    const p = parsePurge(r);
    if (p) purges.push(p);
  }
  const archives: Archived[] = [];
  for (const r of typed('audit.archived')) {
    const a = parseArchived(r);
    if (a) archives.push(a);
  }
  const degraded = { windows: 0, droppedRecords: 0 };
  for (const r of typed('audit.degraded')) {
    degraded.windows += 1;
    const dropped = safeParse(r.attrs).droppedRecords;
    if (typeof dropped === 'number') degraded.droppedRecords += dropped;
  }
  const discontinuities: Meta['discontinuities'] = [];
  for (const r of typed('ledger.discontinuity')) {
    const a = safeParse(r.attrs);
    discontinuities.push({
      seq: r.seq,
      time: r.time,
      found: typeof a.class === 'string' ? a.class : 'unknown',
      atSeq: typeof a.seq === 'number' ? a.seq : null,
    });
  }
  const genesisRow = db
    .prepare("SELECT attrs FROM records WHERE seq = 1 AND type = 'ledger.genesis'")
    .get() as { attrs: string } | undefined;
  const skew = db
    .prepare("SELECT COUNT(*) AS n FROM records WHERE type = 'audit.clock_skew'")
    .get() as { n: number };
  return {
    schemaVersion,
    ledgerId,
    hasCheckpoints,
    checkpoints,
    malformed,
    empty: ends.first === null,
    firstSeq: ends.first ?? 0,
    maxSeq: ends.last ?? 0,
    firstTime: timeAt(ends.first),
    lastTime: timeAt(ends.last),
    purges,
    archives,
    clockSkewRecords: skew.n,
    degraded,
    hasSeals: hasSealsTable(db),
    genesisSeals: genesisRow ? safeParse(genesisRow.attrs).batchSeals === 1 : false,
    discontinuities,
  };
}

/** A stored `audit.retention_purge` row as a Purge; undefined when its attributes lack a field. */
export function parsePurge(r: { seq: number; time: number; attrs: string }): Purge | undefined {
  const a = safeParse(r.attrs);
  return typeof a.fromSeq === 'number' && typeof a.toSeq === 'number' && typeof a.chain === 'string'
    ? { seq: r.seq, time: r.time, fromSeq: a.fromSeq, toSeq: a.toSeq, chain: a.chain }
    : undefined;
}

/**
 * A stored `audit.archived` row as an Archived; undefined when a field verification needs is
 * absent (not a record the ledger wrote: the range it claims stays unaccounted for).
 */
export function parseArchived(r: {
  seq: number;
  time: number;
  attrs: string;
}): Archived | undefined {
  const p = parsePurge(r);
  const a = safeParse(r.attrs);
  const num = (k: string): number => (typeof a[k] === 'number' ? a[k] : 0);
  const { prevChain, file, sha256 } = a;
  if (!p || typeof prevChain !== 'string' || typeof file !== 'string' || typeof sha256 !== 'string')
    return undefined;
  return {
    ...p,
    prevChain,
    file,
    sha256,
    records: typeof a.records === 'number' ? a.records : p.toSeq - p.fromSeq + 1,
    checkpoint: num('checkpoint'),
    checkpointTime: num('checkpointTime'),
    firstTime: num('firstTime'),
    lastTime: num('lastTime'),
    bytes: num('bytes'),
  };
}

function safeParse(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
