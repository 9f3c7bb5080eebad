import { TokenwatchError } from '../errors.js';
import { ZERO_HASH } from './canonical.js';
import type { Checkpoint } from './checkpoint.js';
import { readCheckpointLog } from './checkpoint-log.js';
import { sortDamage, type Damage } from './damage.js';
import { openReadOnly } from './query.js';
import type { TrustedKey } from './signing-keys.js';
import { analyzeCheckpoints } from './verify-checkpoints.js';
import { readMeta, type Meta, type Purge } from './verify-meta.js';
import { checkArchives, type ArchiveEntry } from './verify-archive.js';
import { checkPurge } from './verify-purge.js';
import { DAY_MS } from './retention.js';
import type { RangeResult } from './verify-rows.js';
import { chooseThreads, scan } from './verify-scan.js';
import { besideDatabase, newestSeal } from './verify-seals.js';

export interface VerifyOptions {
  dbPath: string;
  /** External checkpoint log (JSON lines); without it truncation shows only against the DB's own checkpoints. */
  checkpointLog?: string | undefined;
  /** Public keys trusted for checkpoint signatures. */
  trusted: readonly TrustedKey[];
  /** Threads for the record scan; default: up to 4, used from 100 000 records on. */
  threads?: number | undefined;
  /** Record times earlier than the previous record's by more than this are reported. Default 1000. */
  clockToleranceMs?: number;
  /**
   * Directory of archive files (config `audit.archive.dir`): each `audit.archived` range is
   * re-hashed from its file. Without it the archived ranges are named in a warning.
   */
  archiveDir?: string | undefined;
}

/**
 * What the verdict rests on. Trust comes only from outside the file: a key or log that sits in
 * the database's directory may be written by whoever writes the database, so the verdict is
 * then `anchored: false` (docs/ledger-format.md#threat-model).
 */
export interface VerifyAnchors {
  anchored: boolean;
  publicKeys: { keyId: string; source: string; besideDatabase: boolean }[];
  checkpointLog: { path: string; besideDatabase: boolean } | null;
}

/** What `tokenwatch verify` found: `ok` when there is no damage (warnings do not fail). */
export interface VerifyReport {
  ok: boolean;
  anchors: VerifyAnchors;
  ledgerId: string | null;
  schemaVersion: number;
  records: number;
  range: { first: number; last: number } | null;
  time: { first: number; last: number } | null;
  checkpoints: {
    database: number;
    log: number | null;
    last: { n: number; seq: number; time: number } | null;
    keyIds: string[];
  };
  /** Records at the end that neither a checkpoint nor a batch seal signs. */
  unsealed: number;
  /** Records after the newest checkpoint, signed by a batch seal. */
  sealedByBatch: number;
  /** The newest signed retention (days) and where it is stated; null when none is signed. */
  retention: { days: number; checkpoint: number } | null;
  /** Ranges removed by retention, from their `audit.retention_purge` records. */
  pruned: { fromSeq: number; toSeq: number; at: number; seq: number }[];
  /** Ranges moved to archive files, and whether each file was read and re-hashed. */
  archives: ArchiveEntry[];
  /** Records re-hashed from archive files (not counted in `records`). */
  archivedRecords: number;
  /** `ledger.discontinuity` records (each is also a `discontinuity` problem). */
  discontinuities: { seq: number; time: number; found: string; atSeq: number | null }[];
  clock: {
    /** Records whose time is earlier than the previous record's (seq stays authoritative). */
    regressions: number;
    regressionSeqs: number[];
    /** `audit.clock_skew` records the writer left. */
    flagged: number;
  };
  degraded: { windows: number; droppedRecords: number };
  problems: Damage[];
  /** Problems found beyond the ones listed. */
  moreProblems: number;
  warnings: string[];
  stats: { durationMs: number; recordsPerSecond: number; threads: number };
}

/**
 * Verifies a ledger file end to end (CloudTrail `validate-logs` for the SQLite ledger): the hash
 * chain of every record, the signed checkpoints, the database against the external checkpoint
 * log, and the retention purges in between. Reads v1 files (no checkpoints table) too.
 */
export async function verifyLedger(opts: VerifyOptions): Promise<VerifyReport> {
  const started = performance.now();
  const tolerance = opts.clockToleranceMs ?? 1000;
  const warnings: string[] = [];
  const problems: Damage[] = [];

  // The log first: whatever it holds was committed to the database before it was written, so a
  // database snapshot taken afterwards must contain it (no false `truncated` on a live ledger).
  let log: Checkpoint[] | null = null;
  if (opts.checkpointLog !== undefined) {
    const read = readCheckpointLog(opts.checkpointLog);
    log = read.entries;
    for (const p of read.problems) warnings.push(`checkpoint log line ${p.line}: ${p.message}`);
  } else {
    warnings.push(
      'no external checkpoint log given: truncation and rollback show only against checkpoints inside the database itself',
    );
  }

  const db = openReadOnly(opts.dbPath);
  let meta: Meta;
  try {
    db.exec('BEGIN'); // one read snapshot for every query below
    meta = readMeta(db);
    db.exec('COMMIT');
  } catch (err) {
    db.close();
    throw new TokenwatchError(
      'ERR_LEDGER_INTEGRITY',
      `cannot read ${opts.dbPath}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }

  const analysis = analyzeCheckpoints({
    ledgerId: meta.ledgerId,
    database: meta.checkpoints,
    databaseMalformed: meta.malformed,
    log,
    trusted: opts.trusted,
    firstSeq: meta.firstSeq,
    maxSeq: meta.maxSeq,
  });
  problems.push(...analysis.problems);
  warnings.push(...analysis.warnings);
  if (!meta.hasCheckpoints) {
    warnings.push(
      `schema v${meta.schemaVersion} ledger without checkpoints: only the hash chain is checked (truncation and a recomputed chain are not detectable)`,
    );
  } else if (
    analysis.valid.length === 0 &&
    meta.checkpoints.length === 0 &&
    (log?.length ?? 0) === 0
  ) {
    warnings.push('no checkpoints yet: truncation and a recomputed chain are not detectable');
  }

  // Where the scan starts: seq 1 extends the zero hash; after a retention purge or an archive,
  // the chain hash its record states, which checkPurge / checkArchives (below, once the
  // signatures are known) must confirm.
  let anchor: string | null = ZERO_HASH.toString('hex');
  const ending = <T extends Purge>(list: readonly T[]): T | undefined =>
    list.filter((p) => p.toSeq === meta.firstSeq - 1).at(-1);
  const lastPurge = meta.firstSeq > 1 ? ending(meta.purges) : undefined;
  const lastArchive = meta.firstSeq > 1 ? ending(meta.archives) : undefined;
  // The newer record wins, as chainAnchor reads it; an archive is checked with every archive.
  const purge = lastPurge && (lastArchive?.seq ?? 0) < lastPurge.seq ? lastPurge : undefined;
  const removal = purge ?? lastArchive;
  if (meta.firstSeq > 1) {
    if (!removal) {
      anchor = null;
      problems.push({
        class: 'missing',
        seq: 1,
        toSeq: meta.firstSeq - 1,
        detail: `records 1..${meta.firstSeq - 1} are missing and no audit.retention_purge or audit.archived record covers them`,
      });
    } else {
      anchor = removal.chain;
    }
  }

  // What signs the end of the ledger: the newest checkpoint inside it, then the newest batch
  // seal after that (every commit of a schema v3 writer is sealed).
  const cpTop = analysis.valid
    .filter((c) => c.seq <= meta.maxSeq)
    .reduce((m, c) => Math.max(m, c.seq), 0);
  const seals =
    meta.hasSeals && meta.maxSeq > cpTop
      ? newestSeal(db, meta.ledgerId ?? '', cpTop, meta.maxSeq, opts.trusted)
      : { top: 0, chain: null, problems: [], keyIds: [] };
  problems.push(...seals.problems);
  const signedUpTo = Math.max(cpTop, seals.top);
  const retentionSigned = analysis.valid.filter((c) => c.retentionDays !== undefined);
  const sealingExpected =
    (meta.hasSeals && (seals.top > 0 || meta.genesisSeals)) || retentionSigned.length > 0;
  if (purge) {
    const pc = checkPurge({ purge, valid: analysis.valid, logged: analysis.logged, signedUpTo });
    problems.push(...pc.problems);
    warnings.push(...pc.warnings);
  }
  const newestRetention = retentionSigned.at(-1);
  const newestTime = analysis.valid.reduce((m, c) => Math.max(m, c.time), 0);
  const archived = checkArchives({
    archives: meta.archives,
    purges: meta.purges,
    valid: analysis.valid,
    logged: analysis.logged,
    signedUpTo,
    ledgerId: meta.ledgerId,
    dir: opts.archiveDir,
    expiredBefore:
      newestRetention?.retentionDays === undefined
        ? null
        : newestTime - newestRetention.retentionDays * DAY_MS,
  });
  problems.push(...archived.problems);
  warnings.push(...archived.warnings);
  for (const d of meta.discontinuities) {
    problems.push({
      class: 'discontinuity',
      seq: d.seq,
      detail: `ledger.discontinuity record ${d.seq}: the service was started over ${d.found} damage${d.atSeq === null ? '' : ` at seq ${d.atSeq}`} (serve --accept-discontinuity); records up to seq ${d.seq - 1} are not trustworthy evidence`,
    });
  }

  const pairs: [number, string][] = analysis.valid
    .filter((c) => c.seq >= meta.firstSeq && c.seq <= meta.maxSeq)
    .map((c) => [c.seq, c.chain] as [number, string]);
  if (seals.chain !== null) pairs.push([seals.top, seals.chain]);
  pairs.sort((a, b) => a[0] - b[0]);
  const span = meta.empty ? 0 : meta.maxSeq - meta.firstSeq + 1;
  const threads = chooseThreads(opts.threads, span);
  const results =
    span === 0 ? [] : await scan(opts.dbPath, db, meta, anchor, pairs, threads, tolerance);
  db.close();

  let records = 0;
  let moreProblems = 0;
  let regressions = 0;
  const regressionSeqs: number[] = [];
  const mismatches: RangeResult['checkpointMismatches'] = [];
  for (const r of results) {
    records += r.rows;
    moreProblems += r.moreProblems;
    problems.push(...r.problems);
    regressions += r.regressions;
    regressionSeqs.push(...r.regressionSeqs);
    mismatches.push(...r.checkpointMismatches);
  }
  // A stored chain that verified row by row yet differs from a signed checkpoint: the records
  // were edited and the chain recomputed. Only the segment since the previous checkpoint can be
  // named. Segments that already hold a row-level finding are not reported twice.
  const rowSeqs = problems
    .filter((p) => p.checkpoint === undefined)
    .map((p) => p.seq)
    .sort((a, b) => a - b);
  const sealedSeqs = [...new Set(analysis.valid.map((c) => c.seq))].sort((a, b) => a - b);
  const signedBy = new Map(analysis.valid.map((c) => [`${c.seq}:${c.chain}`, c] as const));
  const sealSeq = seals.chain === null ? -1 : seals.top;
  for (const m of new Map(mismatches.map((x) => [x.seq, x])).values()) {
    const before = sealedSeqs[lowerBound(sealedSeqs, m.seq) - 1];
    const segStart = (before ?? meta.firstSeq - 1) + 1;
    const firstRowProblem = rowSeqs[lowerBound(rowSeqs, segStart)];
    if (firstRowProblem !== undefined && firstRowProblem <= m.seq) continue;
    const cp = signedBy.get(`${m.seq}:${m.signed}`);
    if (!cp && m.seq === sealSeq) {
      problems.push({
        class: 'modified',
        seq: segStart,
        toSeq: m.seq,
        detail: `records ${segStart}..${m.seq} do not match the batch seal at seq ${m.seq}: a record was changed and the chain recomputed`,
      });
      continue;
    }
    problems.push({
      class: 'modified',
      seq: segStart,
      toSeq: m.seq,
      ...(cp ? { checkpoint: cp.n } : {}),
      detail: `records ${segStart}..${m.seq} do not match signed checkpoint${cp ? ` #${cp.n}` : ''}: a record was changed and the chain recomputed`,
    });
  }

  const last = analysis.valid.filter((c) => c.seq <= meta.maxSeq).at(-1) ?? null;
  const afterCheckpoint = span > 0 ? meta.maxSeq - Math.max(cpTop, meta.firstSeq - 1) : 0;
  const unsealed =
    meta.hasCheckpoints && span > 0 ? meta.maxSeq - Math.max(signedUpTo, meta.firstSeq - 1) : 0;
  // With no trusted key (or a seal that does not verify) the signature findings say it already.
  // A checkpoint beyond the end (truncated, rolled back) already names the cut.
  const cut = analysis.valid.some((c) => c.seq > meta.maxSeq);
  if (
    unsealed > 0 &&
    sealingExpected &&
    !cut &&
    opts.trusted.length > 0 &&
    seals.problems.length === 0
  ) {
    const from = meta.maxSeq - unsealed + 1;
    problems.push({
      class: 'unsealed',
      seq: from,
      toSeq: meta.maxSeq,
      detail: `${unsealed} record(s) from seq ${from} carry no signature (no checkpoint or batch seal covers them): appended by someone without the signing key`,
    });
  } else if (unsealed > 0 && !sealingExpected) {
    warnings.push(
      `${unsealed} record(s) after seq ${meta.maxSeq - unsealed} are not sealed by a checkpoint yet (hash chain only; ledger written without batch seals)`,
    );
  }
  const anchors = anchorsOf(opts);
  if (!anchors.anchored) {
    warnings.unshift(
      `anchored: false: ${anchors.publicKeys.length === 0 ? 'no public key given' : anchors.publicKeys.some((k) => k.besideDatabase) ? 'the public key comes from the database directory' : 'public key given'}, ${anchors.checkpointLog === null ? 'no checkpoint log given' : anchors.checkpointLog.besideDatabase ? 'the checkpoint log comes from the database directory' : 'checkpoint log given'}; whoever can write the database may have written these too, so this verdict does not rest on anything outside the file. Pass --public-key and --checkpoints copies kept elsewhere (secret store, write-once storage)`,
    );
  }
  const sorted = sortDamage(problems);
  const durationMs = performance.now() - started;
  return {
    ok: sorted.length === 0 && moreProblems === 0,
    anchors,
    ledgerId: meta.ledgerId,
    schemaVersion: meta.schemaVersion,
    records,
    range: span > 0 ? { first: meta.firstSeq, last: meta.maxSeq } : null,
    time:
      meta.firstTime === null || meta.lastTime === null
        ? null
        : { first: meta.firstTime, last: meta.lastTime },
    checkpoints: {
      database: meta.checkpoints.length + meta.malformed.length,
      log: log === null ? null : log.length,
      last: last && { n: last.n, seq: last.seq, time: last.time },
      keyIds: analysis.keyIds,
    },
    unsealed,
    sealedByBatch: Math.max(0, afterCheckpoint - unsealed),
    retention: newestRetention
      ? { days: newestRetention.retentionDays ?? 0, checkpoint: newestRetention.n }
      : null,
    discontinuities: meta.discontinuities,
    pruned: meta.purges.map((p) => ({
      fromSeq: p.fromSeq,
      toSeq: p.toSeq,
      at: p.time,
      seq: p.seq,
    })),
    archives: archived.archives,
    archivedRecords: archived.records,
    clock: {
      regressions,
      regressionSeqs: regressionSeqs.slice(0, 10),
      flagged: meta.clockSkewRecords,
    },
    degraded: meta.degraded,
    problems: sorted,
    moreProblems,
    warnings,
    stats: {
      durationMs: Math.round(durationMs),
      recordsPerSecond: durationMs > 0 ? Math.round(records / (durationMs / 1000)) : 0,
      threads,
    },
  };
}

/** Which anchors the verdict rests on, and whether any of them sits beside the database. */
function anchorsOf(opts: VerifyOptions): VerifyAnchors {
  const publicKeys = opts.trusted.map((k) => ({
    keyId: k.keyId,
    source: k.source,
    besideDatabase: besideDatabase(k.source, opts.dbPath),
  }));
  const checkpointLog =
    opts.checkpointLog === undefined
      ? null
      : {
          path: opts.checkpointLog,
          besideDatabase: besideDatabase(opts.checkpointLog, opts.dbPath),
        };
  return {
    anchored:
      publicKeys.length > 0 &&
      publicKeys.every((k) => !k.besideDatabase) &&
      checkpointLog !== null &&
      !checkpointLog.besideDatabase,
    publicKeys,
    checkpointLog,
  };
}

/** Index of the first element >= x in an ascending array. */
function lowerBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] ?? Infinity) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
