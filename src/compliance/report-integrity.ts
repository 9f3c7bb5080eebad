import { canonicalRecord, chainHashHex, leafHashHex } from '../audit/canonical.js';
import {
  checkpointFromRow,
  checkpointSignatureValid,
  type Checkpoint,
  type CheckpointRow,
} from '../audit/checkpoint.js';
import { readCheckpointLog } from '../audit/checkpoint-log.js';
import { leafMatches } from '../audit/record-codec.js';
import type { TrustedKey } from '../audit/signing-keys.js';
import type { LedgerStore } from '../audit/store/ledger-store.js';
import type { SeqRange } from '../audit/store/range-reads.js';
import type { SeqAttrs } from '../audit/store/record-columns.js';
import { parseArchived, type Archived } from '../audit/verify-meta.js';
import { checkPurge } from '../audit/verify-purge.js';
import { besideDatabase } from '../audit/verify-seals.js';
import { isTokenwatchError } from '../errors.js';
import { yieldToLoop } from './yield-to-loop.js';
import type { ArchivedRange, CheckpointRef, IntegritySection } from './report-types.js';

const LISTED = 20;

/**
 * Verifies the report's records the way verify-export verifies a bundle, on the database: each
 * record re-hashed against its stored leaf and chain, the chain recomputed from the anchor at
 * firstSeq-1 up to the first checkpoint at or after lastSeq, and every checkpoint from the
 * anchor to that one checked against the trusted keys and linked by `prev`.
 */
export async function checkRange(
  store: LedgerStore,
  range: SeqRange | null,
  ledgerId: string,
  trusted: readonly TrustedKey[],
  where: { dbPath?: string; checkpointLog?: string } = {},
  from?: number,
  to?: number,
): Promise<IntegritySection> {
  const problems: string[] = [];
  const archived = from === undefined || to === undefined ? [] : archivedIn(store, from, to);
  const anchoring = anchorsOf(trusted, where);
  const logged = loggedCheckpoints(where.checkpointLog, ledgerId, problems);
  if (!range) {
    // A period whose records are gone: only a retention purge that holds may explain it.
    const purgeProblems =
      from === undefined ? [] : prunedBefore(store, from, ledgerId, trusted, logged);
    problems.push(...purgeProblems);
    const status = purgeProblems.length > 0 ? 'failed' : 'empty';
    const verdict = verdictOf(status, problems);
    const [a] = archived;
    if (status === 'empty' && a) {
      verdict.reason = `the period's records are archived (seq ${a.fromSeq}..${a.toSeq} in ${a.file}${archived.length > 1 ? ` and ${archived.length - 1} more file(s)` : ''}): re-hash them with tokenwatch verify --archive DIR`;
    } else if (status === 'empty' && from !== undefined) {
      const older = archivedBefore(store, from);
      if (older) verdict.reason = older;
    }
    return {
      status,
      ...verdict,
      archived,
      archivedEarlier:
        from === undefined ? null : archivedEarlier(store, archived, from, ledgerId, trusted),
      ...anchoring,
      recordsChecked: 0,
      anchor: null,
      sealedBy: null,
      checkpointCount: 0,
      checkpoints: [],
      keyIds: [],
      problems,
    };
  }
  let anchor: IntegritySection['anchor'] = null;
  try {
    anchor = store.chainAnchor(range.firstSeq);
  } catch (err) {
    problems.push(isTokenwatchError(err) ? err.message : String(err));
  }
  const sealed = store.sealingCheckpoint(range.lastSeq, ledgerId);
  const keys = new Map(trusted.map((k) => [k.keyId, k] as const));
  if (sealed && logged !== null && !logged.has(sealed.n) && logged.size > 0) {
    const newestLogged = Math.max(...logged);
    if (sealed.n <= newestLogged)
      problems.push(`checkpoint #${sealed.n} is not in the external checkpoint log`);
  }
  // A pruned or archived start first: a record nobody signed explains nothing after it.
  if (anchor?.source === 'retention_purge' || anchor?.source === 'archived') {
    problems.push(...purgeProblems(store, range.firstSeq - 1, ledgerId, trusted, logged));
  }
  // Without a checkpoint at the end yet: the newest batch seal, which signs every record before
  // it through the chain (schema v3). A tail nobody signed is not evidence.
  let sealedBySeal: { seq: number; chain: string } | null = null;
  if (!sealed && store.hasSealsTable()) {
    const max = store.maxSeq();
    const seal = store.newestSeal(ledgerId, range.lastSeq - 1, max ?? 0, trusted);
    if (seal.chain !== null) sealedBySeal = { seq: seal.top, chain: seal.chain };
    else if (store.hasAnySeal())
      problems.push(
        `unsealed: records from seq ${range.lastSeq} on carry no signature (no checkpoint or batch seal covers them)`,
      );
  }
  const endSeq = sealed?.seq ?? sealedBySeal?.seq ?? range.lastSeq;
  const breaks = store.discontinuities(range.firstSeq, endSeq, 5);
  for (const b of breaks) {
    const a = safeParse(b.attrs);
    problems.push(
      `discontinuity: ledger.discontinuity record ${b.seq} states that the service was started over ${typeof a.class === 'string' ? a.class : 'unknown'} damage${typeof a.seq === 'number' ? ` at seq ${a.seq}` : ''}`,
    );
  }
  const verdict = (c: Checkpoint): boolean | null => {
    const k = keys.get(c.keyId);
    return k ? checkpointSignatureValid(c, k.publicKey) : null;
  };

  const bySeq = new Map<number, string>();
  const refs: CheckpointRef[] = []; // the first LISTED ...
  const last: CheckpointRef[] = []; // ... and the last LISTED
  let count = 0;
  let prev: Checkpoint | undefined;
  const keyIds = new Set<string>();
  if (sealed) {
    for (const c of store.checkpointsBetween(range.firstSeq - 1, sealed.n, ledgerId)) {
      const ok = verdict(c);
      keyIds.add(c.keyId);
      if (ok === false)
        problems.push(`checkpoint #${c.n} (seq ${c.seq}) does not verify under key ${c.keyId}`);
      if (ok === null)
        problems.push(`checkpoint #${c.n} is signed by key ${c.keyId}, which is not trusted`);
      if (prev && (c.n !== prev.n + 1 || c.prev !== prev.sig))
        problems.push(`checkpoint #${c.n} does not link to #${prev.n}`);
      prev = c;
      if (ok) bySeq.set(c.seq, c.chain);
      count += 1;
      const ref = toRef(c, ok);
      if (refs.length < LISTED) refs.push(ref);
      else {
        last.push(ref);
        if (last.length > LISTED) last.shift();
      }
    }
  }

  let checked = 0;
  if (anchor) {
    let chain = anchor.chain;
    let expected = range.firstSeq;
    const end = endSeq;
    outer: for (const page of store.recordPages(range.firstSeq, end)) {
      for (const r of page) {
        if (r.seq !== expected) {
          problems.push(`record ${expected} is missing (next is ${r.seq})`);
          break outer;
        }
        expected += 1;
        const leaf = leafHashHex(canonicalRecord(r));
        if (!leafMatches(leaf, r.leaf))
          problems.push(`record ${r.seq} does not hash to its stored leaf`);
        chain = chainHashHex(chain, leaf);
        if (chain !== r.chain) {
          problems.push(`record ${r.seq}: stored chain differs from the recomputed one`);
          break outer;
        }
        const signed = bySeq.get(r.seq);
        if (signed !== undefined && signed !== chain)
          problems.push(`the chain at seq ${r.seq} differs from the signed checkpoint`);
        if (r.seq <= range.lastSeq) checked += 1;
        if (problems.length > 20) break outer;
      }
      await yieldToLoop();
    }
    if (problems.length === 0 && expected !== end + 1)
      problems.push(`the ledger ends at seq ${expected - 1}, before seq ${end}`);
    if (sealed && problems.length === 0 && chain !== sealed.chain)
      problems.push(`the chain does not reach checkpoint #${sealed.n}`);
    if (sealedBySeal && problems.length === 0 && chain !== sealedBySeal.chain)
      problems.push(`the chain does not reach the batch seal at seq ${sealedBySeal.seq}`);
  }

  const sealedRef = sealed ? toRef(sealed, verdict(sealed)) : null;
  const status = problems.length > 0 ? 'failed' : sealed || sealedBySeal ? 'verified' : 'unsealed';
  return {
    status,
    ...verdictOf(status, problems),
    ...anchoring,
    archived,
    archivedEarlier:
      from === undefined ? null : archivedEarlier(store, archived, from, ledgerId, trusted),
    recordsChecked: checked,
    anchor,
    sealedBy: sealedRef,
    checkpointCount: count,
    checkpoints: [...refs, ...last],
    keyIds: [...keyIds],
    problems,
  };
}

function toRef(c: Checkpoint, valid: boolean | null): CheckpointRef {
  return {
    n: c.n,
    seq: c.seq,
    time: c.time,
    reason: c.reason,
    keyId: c.keyId,
    chain: c.chain,
    signature: c.sig,
    signatureValid: valid,
  };
}

/** The words of the verdict: only `verified` is verified; anything else names its reason. */
function verdictOf(
  status: IntegritySection['status'],
  problems: readonly string[],
): Pick<IntegritySection, 'verdict' | 'reason'> {
  if (status === 'verified') return { verdict: 'verified', reason: null };
  const reason =
    problems[0] ??
    (status === 'unsealed'
      ? 'no signed checkpoint or batch seal covers the end of the period yet'
      : 'no records in the period');
  return { verdict: 'not verified', reason };
}

/** Which anchors the verdict rests on (the same rule as tokenwatch verify). */
function anchorsOf(
  trusted: readonly TrustedKey[],
  where: { dbPath?: string; checkpointLog?: string },
): Pick<IntegritySection, 'anchored' | 'anchors'> {
  const anchors: string[] = [];
  let anchored = trusted.length > 0 && where.checkpointLog !== undefined;
  for (const k of trusted) {
    const beside = where.dbPath !== undefined && besideDatabase(k.source, where.dbPath);
    if (beside || where.dbPath === undefined) anchored = false;
    anchors.push(
      `public key ${k.keyId} from ${k.source}${beside ? ' (beside the database: not independent of it)' : ''}`,
    );
  }
  if (trusted.length === 0) anchors.push('no trusted public key: signatures are not checked');
  if (where.checkpointLog === undefined) {
    anchors.push('no external checkpoint log was read');
  } else {
    const beside = where.dbPath !== undefined && besideDatabase(where.checkpointLog, where.dbPath);
    if (beside) anchored = false;
    anchors.push(
      `checkpoint log ${where.checkpointLog}${beside ? ' (beside the database: not independent of it)' : ''}`,
    );
  }
  return { anchored, anchors };
}

/** Numbers of the checkpoints of `ledgerId` in the external log; null when none is given. */
function loggedCheckpoints(
  path: string | undefined,
  ledgerId: string,
  problems: string[],
): Set<number> | null {
  if (path === undefined) return null;
  try {
    return new Set(
      readCheckpointLog(path)
        .entries.filter((c) => c.ledgerId === ledgerId)
        .map((c) => c.n),
    );
  } catch (err) {
    problems.push(`cannot read the checkpoint log: ${(err as Error).message}`);
    return new Set();
  }
}

/** Problems of a period before the first record: its records were pruned, or deleted. */
function prunedBefore(
  store: LedgerStore,
  from: number,
  ledgerId: string,
  trusted: readonly TrustedKey[],
  logged: Set<number> | null,
): string[] {
  const first = store.firstRecord();
  if (!first || first.seq <= 1 || from >= first.time) return [];
  return purgeProblems(store, first.seq - 1, ledgerId, trusted, logged);
}

/**
 * Archived ranges (from the database's `audit.archived` records) holding records observed in
 * [from, to): the report says that part of its period is in archive files, not re-hashed here.
 */
function archivedIn(store: LedgerStore, from: number, to: number): ArchivedRange[] {
  return store
    .archivedRecords()
    .map(parseArchived)
    .filter((a): a is Archived => a !== undefined && a.firstTime < to && a.lastTime >= from)
    .map((a) => ({
      fromSeq: a.fromSeq,
      toSeq: a.toSeq,
      records: a.records,
      firstTime: a.firstTime,
      lastTime: a.lastTime,
      file: a.file,
      sha256: a.sha256,
    }));
}

/**
 * The period reaches back before the oldest archived range the database names, and what lies
 * before that range was archived too (no retention purge or listed archive ends right before
 * it): those records sit in files named only inside the oldest listed archive's file.
 */
function archivedEarlier(
  store: LedgerStore,
  archived: readonly ArchivedRange[],
  from: number,
  ledgerId: string,
  trusted: readonly TrustedKey[],
): IntegritySection['archivedEarlier'] {
  const oldest = archived.reduce<ArchivedRange | undefined>(
    (o, a) => (o === undefined || a.fromSeq < o.fromSeq ? a : o),
    undefined,
  );
  if (!oldest || oldest.fromSeq <= 1 || from >= oldest.firstTime) return null;
  const before = oldest.fromSeq - 1;
  const ends = (rows: SeqAttrs[]) => rows.some((r) => safeParse(r.attrs).toSeq === before);
  // Pruned by retention: gone by policy, which the purge checks already account for.
  if (ends(store.retentionPurges())) return null;
  // An archive the database names ends there but lies before the period: so does all before it.
  if (ends(store.archivedRecords())) return null;
  // The checkpoint that sealed them was signed after the last of them: when a trusted key
  // signs that it precedes the period, so do they. An unsigned time proves nothing (a DB writer
  // could move it to hide the note), so then the report says they may belong to the period.
  const row = store.sealingCheckpointRow(before);
  if (row) {
    const c = checkpointFromRow(row, ledgerId);
    const key = trusted.find((k) => k.keyId === c.keyId);
    if (key && checkpointSignatureValid(c, key.publicKey) && c.time < from) return null;
  }
  return { toSeq: before, namedIn: oldest.file };
}

/**
 * Why a period before the first stored record has no records, when an archive removed the
 * records right before it: older archive records sit inside the archive files (each is appended
 * after its range), so the database alone cannot name the file of the period.
 */
function archivedBefore(store: LedgerStore, from: number): string | undefined {
  const first = store.firstRecord();
  if (!first || first.seq <= 1 || from >= first.time) return undefined;
  const a = store
    .archivedRecords()
    .map(parseArchived)
    .filter((x): x is Archived => x?.toSeq === first.seq - 1)
    .at(-1);
  if (!a) return undefined;
  return `the period precedes the first record in the database (seq ${first.seq}, ${new Date(first.time).toISOString()}): its records were moved to archive files (or pruned before them); the newest archive is seq ${a.fromSeq}..${a.toSeq} in ${a.file}, older archives are named inside it: re-hash them with tokenwatch verify --archive DIR`;
}

/**
 * The retention purge or archive that removed records up to `toSeq` (the newer one when both
 * name it, as chainAnchor reads it), checked like verify checks it.
 */
function purgeProblems(
  store: LedgerStore,
  toSeq: number,
  ledgerId: string,
  trusted: readonly TrustedKey[],
  logged: Set<number> | null,
): string[] {
  const ending = (rows: (SeqAttrs & { time: number })[]) =>
    rows.filter((r) => safeParse(r.attrs).toSeq === toSeq).at(-1);
  const purgeRow = ending(store.retentionPurges());
  const archiveRow = ending(store.archivedRecords());
  const archive = archiveRow !== undefined && archiveRow.seq > (purgeRow?.seq ?? 0);
  const row = archive ? archiveRow : purgeRow;
  if (!row)
    return [
      `records 1..${toSeq} are missing and no audit.retention_purge or audit.archived record covers them`,
    ];
  const a = safeParse(row.attrs);
  const purge = {
    seq: row.seq,
    time: row.time,
    fromSeq: typeof a.fromSeq === 'number' ? a.fromSeq : 1,
    toSeq,
    chain: typeof a.chain === 'string' ? a.chain : '',
  };
  const keys = new Map(trusted.map((k) => [k.keyId, k] as const));
  const authentic = (r: CheckpointRow): Checkpoint | undefined => {
    const c = checkpointFromRow(r, ledgerId);
    const k = keys.get(c.keyId);
    return k && checkpointSignatureValid(c, k.publicKey) ? c : undefined;
  };
  const candidates = store.purgeCheckpointRows(toSeq, row.seq);
  const valid = candidates.map(authentic).filter((c): c is Checkpoint => c !== undefined);
  const covering = store.sealingCheckpointRow(row.seq);
  const coveringValid = covering ? authentic(covering) : undefined;
  const max = store.maxSeq() ?? 0;
  const seal = store.hasSealsTable() ? store.newestSeal(ledgerId, row.seq - 1, max, trusted) : null;
  const signedUpTo = Math.max(coveringValid?.seq ?? 0, seal?.top ?? 0);
  const check = checkPurge({
    purge,
    kind: archive ? 'archive' : 'purge',
    valid,
    logged,
    signedUpTo,
  });
  return check.problems.map((p) => `${p.class}: ${p.detail}`);
}

function safeParse(text: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
