import { checkpointMessage, checkpointSignatureValid, type Checkpoint } from './checkpoint.js';
import type { Damage } from './damage.js';
import type { TrustedKey } from './signing-keys.js';

export interface CheckpointInput {
  /** The ledger id the database states (meta / genesis). */
  ledgerId: string | null;
  /** Checkpoints from the database's table, parsed. */
  database: readonly Checkpoint[];
  /** Rows of the table that are not checkpoints at all (n and why). */
  databaseMalformed: readonly { n: number; seq: number; message: string }[];
  /** Checkpoints from the external log; null when no log was given. */
  log: readonly Checkpoint[] | null;
  trusted: readonly TrustedKey[];
  /** First and last record seq in the database (0 when empty). */
  firstSeq: number;
  maxSeq: number;
}

export interface CheckpointAnalysis {
  /** Authentic checkpoints of this ledger (database and log merged by n; the log's copy wins). */
  valid: Checkpoint[];
  problems: Damage[];
  warnings: string[];
  keyIds: string[];
  /** Numbers of the authentic checkpoints the external log holds; null without a log. */
  logged: Set<number> | null;
}

/**
 * Checks checkpoints on their own and against each other, before any record is read: signature
 * and key (RFC 6962 §3.5 / CloudTrail digest signatures), the prev-signature links that make
 * them one chain, the database's copy against the external log's, and the end of the database
 * against the newest checkpoint (a hash chain alone cannot show a cut tail).
 */
export function analyzeCheckpoints(input: CheckpointInput): CheckpointAnalysis {
  const problems: Damage[] = [];
  const warnings: string[] = [];
  const keys = new Map(input.trusted.map((k) => [k.keyId, k] as const));
  const unknownKeys = new Map<string, Checkpoint[]>();
  // Each distinct checkpoint is checked once (the database and the log hold the same ones). The
  // key is the whole signed message plus the signature: a row that copies an authentic
  // checkpoint's signature, chain and seq but states another time, number, link or retention is
  // another message and must be verified on its own, or a DB writer could move signed times.
  const verdicts = new Map<string, boolean>();

  for (const m of input.databaseMalformed) {
    problems.push({
      class: 'bad_signature',
      seq: m.seq,
      checkpoint: m.n,
      detail: `checkpoint #${m.n} in the database is malformed: ${m.message}`,
    });
  }

  let log = input.log;
  if (log && input.ledgerId !== null) {
    const mine = log.filter((c) => c.ledgerId === input.ledgerId);
    const others = new Set(log.filter((c) => c.ledgerId !== input.ledgerId).map((c) => c.ledgerId));
    if (mine.length === 0 && others.size > 0) {
      problems.push({
        class: 'rollback',
        seq: 1,
        detail: `the checkpoint log belongs to ledger ${[...others].join(', ')}, the database is ledger ${input.ledgerId}: the database was replaced`,
      });
    } else if (others.size > 0) {
      warnings.push(
        `checkpoint log also holds checkpoints of other ledgers (${[...others].join(', ')}); ignored`,
      );
    }
    log = mine;
  }

  const authentic = (c: Checkpoint, where: string): boolean => {
    const key = keys.get(c.keyId);
    if (!key) {
      const list = unknownKeys.get(c.keyId) ?? [];
      list.push(c);
      unknownKeys.set(c.keyId, list);
      return false;
    }
    const id = `${c.sig}\n${checkpointMessage(c).toString('utf8')}`;
    let ok = verdicts.get(id);
    if (ok === undefined) {
      ok = checkpointSignatureValid(c, key.publicKey);
      verdicts.set(id, ok);
    }
    if (!ok) {
      problems.push({
        class: 'bad_signature',
        seq: c.seq,
        checkpoint: c.n,
        detail: `checkpoint #${c.n} (seq ${c.seq}) in the ${where} does not verify under key ${c.keyId}`,
      });
    }
    return ok;
  };

  const fromDb = new Map<number, Checkpoint>();
  for (const c of input.database) if (authentic(c, 'database')) fromDb.set(c.n, c);
  const fromLog = new Map<number, Checkpoint>();
  for (const c of log ?? []) {
    if (fromLog.has(c.n)) {
      if (fromLog.get(c.n)?.sig !== c.sig) {
        problems.push({
          class: 'bad_signature',
          seq: c.seq,
          checkpoint: c.n,
          detail: `the checkpoint log holds two different checkpoints #${c.n}`,
        });
      }
      continue;
    }
    if (authentic(c, 'checkpoint log')) fromLog.set(c.n, c);
  }

  for (const [keyId, list] of unknownKeys) {
    const first = list[0];
    if (!first) continue;
    problems.push({
      class: 'unknown_key',
      seq: first.seq,
      checkpoint: first.n,
      detail: `${list.length} checkpoint(s) from #${first.n} are signed by key ${keyId}, which is not trusted${
        input.trusted.length === 0 ? ' (no --public-key given)' : ''
      }`,
    });
  }

  // One chain of checkpoints: the log's copy wins; two authentic copies that differ are a fork.
  const merged = new Map<number, Checkpoint>(fromDb);
  for (const [n, c] of fromLog) {
    const d = fromDb.get(n);
    if (d && d.sig !== c.sig) {
      problems.push({
        class: 'rollback',
        seq: Math.min(d.seq, c.seq),
        checkpoint: n,
        detail: `checkpoint #${n} in the database (seq ${d.seq}) differs from #${n} in the checkpoint log (seq ${c.seq}): the database was replaced by a copy that forked`,
      });
    }
    merged.set(n, c);
  }
  const valid = [...merged.values()].sort((a, b) => a.n - b.n);
  const present = new Set<number>([
    ...input.database.map((c) => c.n),
    ...(log ?? []).map((c) => c.n),
    ...input.databaseMalformed.map((m) => m.n),
  ]);
  let prev: Checkpoint | undefined;
  for (const c of valid) {
    const expected = (prev?.n ?? 0) + 1;
    if (c.n > expected) {
      // Numbers present but not authentic were reported already (signature, key); count the
      // truly absent ones without enumerating the range (n comes from the file).
      let first = expected;
      while (first < c.n && present.has(first)) first += 1;
      let known = 0;
      for (const n of present) if (n >= expected && n < c.n) known += 1;
      if (known < c.n - expected) {
        problems.push({
          class: 'missing',
          seq: c.seq,
          checkpoint: first,
          detail: `${c.n - expected - known} checkpoint(s) between #${expected - 1} and #${c.n} are in neither the database nor the log`,
        });
      }
    } else if ((prev?.sig ?? null) !== c.prev) {
      problems.push({
        class: 'bad_signature',
        seq: c.seq,
        checkpoint: c.n,
        detail: `checkpoint #${c.n} does not link to the signature of checkpoint #${c.n - 1}`,
      });
    }
    if (prev && c.seq < prev.seq) {
      problems.push({
        class: 'bad_signature',
        seq: c.seq,
        checkpoint: c.n,
        detail: `checkpoint #${c.n} covers seq ${c.seq}, less than #${prev.n} (seq ${prev.seq})`,
      });
    }
    prev = c;
  }

  const bySeq = new Map<number, Checkpoint>();
  for (const c of valid) {
    const other = bySeq.get(c.seq);
    if (other && other.chain !== c.chain) {
      problems.push({
        class: 'rollback',
        seq: c.seq,
        checkpoint: c.n,
        detail: `checkpoints #${other.n} and #${c.n} sign different chains for seq ${c.seq}: the ledger forked`,
      });
    }
    bySeq.set(c.seq, c);
  }

  // The end of the database against the newest checkpoints.
  let dbMaxN = 0;
  for (const c of input.database) dbMaxN = Math.max(dbMaxN, c.n);
  const lastLog = [...fromLog.values()].sort((a, b) => a.n - b.n).at(-1);
  const beyond = valid
    .filter((c) => c.seq > input.maxSeq)
    .sort((a, b) => a.seq - b.seq)
    .at(-1);
  if (lastLog && lastLog.n > dbMaxN) {
    problems.push({
      class: 'rollback',
      seq: input.maxSeq + 1,
      checkpoint: lastLog.n,
      detail: `the database is older than the checkpoint log: it ends at seq ${input.maxSeq} with checkpoint #${dbMaxN}, the log reaches checkpoint #${lastLog.n} at seq ${lastLog.seq}`,
    });
  } else if (beyond) {
    problems.push({
      class: 'truncated',
      seq: input.maxSeq + 1,
      toSeq: beyond.seq,
      checkpoint: beyond.n,
      detail: `checkpoint #${beyond.n} covers seq ${beyond.seq} but the database ends at seq ${input.maxSeq}: ${beyond.seq - input.maxSeq} record(s) were cut from the tail`,
    });
  }

  return {
    valid,
    problems,
    warnings,
    keyIds: [...new Set(valid.map((c) => c.keyId))],
    logged: input.log === null ? null : new Set(fromLog.keys()),
  };
}
