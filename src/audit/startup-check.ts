import type Database from 'better-sqlite3';
import { ZERO_HASH } from './canonical.js';
import {
  checkpointColumns,
  checkpointFromRow,
  checkpointSignatureValid,
  type Checkpoint,
  type CheckpointRow,
} from './checkpoint.js';
import { readLastCheckpoint } from './checkpoint-log.js';
import type { Damage, DamageClass } from './damage.js';
import type { Ledger } from './ledger.js';
import { newestSeal } from './verify-seals.js';
import { verifyRange } from './verify-rows.js';
import type { TrustedKey } from './signing-keys.js';

export interface StartupCheckOptions {
  db: Database.Database;
  dbPath: string;
  ledgerId: string;
  /** The external checkpoint log (read, never written here). */
  logPath: string;
  /** The public half of the writer's signing key (and any older keys still trusted). */
  trusted: readonly TrustedKey[];
}

/** What the start-up check found: the first damage, if any. */
export interface StartupCheck {
  ok: boolean;
  finding: { class: DamageClass; seq: number; detail: string } | undefined;
  /** The checkpoint the tail was checked from, and where it came from. */
  anchor: { source: 'log' | 'database' | 'none'; n: number; seq: number; chain: string };
  /** Records checked inline (the tail after the anchor). */
  checkedRecords: number;
  /**
   * The previous run ended cleanly: its newest authentic checkpoint is a `shutdown` one that
   * signs the head of the file. Read from a signature, never from the type of the last record.
   */
  cleanShutdown: boolean;
  warnings: string[];
  durationMs: number;
}

/** {@link checkAtStart} on an open Ledger's own connection (the app: no raw db leaves src/audit). */
export function checkLedgerAtStart(
  ledger: Pick<Ledger, 'db' | 'ledgerId'>,
  o: Omit<StartupCheckOptions, 'db' | 'ledgerId'>,
): StartupCheck {
  return checkAtStart({ ...o, db: ledger.db, ledgerId: ledger.ledgerId });
}

/**
 * Checks the database against the external checkpoint log and the batch seals before the
 * service writes or signs anything (a start that signs an unverified head would launder a
 * forged one, audit-integrity.md). Fast on any size: only the tail after the newest external
 * checkpoint is read; the full file is verified in the background afterwards.
 *
 * Trusts: the public key(s) given (the writer's own key) and the external log's last line, but
 * only once its signature verifies. Nothing in the database is believed unless a signature
 * covers it.
 */
export function checkAtStart(o: StartupCheckOptions): StartupCheck {
  const started = performance.now();
  const warnings: string[] = [];
  const keys = new Map(o.trusted.map((k) => [k.keyId, k] as const));
  const { db } = o;
  const edge = (fn: 'MIN' | 'MAX'): number =>
    (db.prepare(`SELECT ${fn}(seq) AS s FROM records`).get() as { s: number | null }).s ?? 0;
  const firstSeq = edge('MIN');
  const maxSeq = edge('MAX');
  const chainAt = (seq: number): string | undefined =>
    (
      db.prepare('SELECT lower(hex(chain)) AS c FROM records WHERE seq = ?').get(seq) as
        { c: string } | undefined
    )?.c;
  let anchor: StartupCheck['anchor'] = {
    source: 'none',
    n: 0,
    seq: 0,
    chain: ZERO_HASH.toString('hex'),
  };
  const result = (
    finding: StartupCheck['finding'],
    checkedRecords = 0,
    cleanShutdown = false,
  ): StartupCheck => ({
    ok: finding === undefined,
    finding,
    anchor,
    checkedRecords,
    cleanShutdown,
    warnings,
    durationMs: Math.round(performance.now() - started),
  });
  const authentic = (c: Checkpoint): boolean | undefined => {
    const k = keys.get(c.keyId);
    return k ? checkpointSignatureValid(c, k.publicKey) : undefined;
  };

  // 1. The newest checkpoint of the external log: the anchor, once its signature verifies.
  const logged = readLastCheckpoint(o.logPath);
  if (logged) {
    if (logged.ledgerId !== o.ledgerId) {
      return result({
        class: 'rollback',
        seq: 1,
        detail: `the checkpoint log ${o.logPath} belongs to ledger ${logged.ledgerId}, the database is ledger ${o.ledgerId}: the database was replaced`,
      });
    }
    const ok = authentic(logged);
    if (ok === false) {
      return result({
        class: 'bad_signature',
        seq: logged.seq,
        detail: `checkpoint #${logged.n} of the checkpoint log does not verify under key ${logged.keyId}`,
      });
    }
    if (ok === undefined) {
      warnings.push(
        `the newest logged checkpoint #${logged.n} is signed by key ${logged.keyId}, not the configured one (rotated?): its signature is not checked at start`,
      );
    }
    anchor = { source: 'log', n: logged.n, seq: logged.seq, chain: logged.chain };
  }

  // 2. Database checkpoints after it (about to be published): authentic and linked.
  const rows = db
    .prepare(`SELECT ${checkpointColumns(db)} FROM checkpoints WHERE n > ? ORDER BY n`)
    .all(anchor.n) as CheckpointRow[];
  let prev: Checkpoint | undefined = logged;
  let newest: Checkpoint | undefined = logged;
  for (const row of rows) {
    const c = checkpointFromRow(row, o.ledgerId);
    const ok = authentic(c);
    if (ok !== true) {
      return result({
        class: ok === undefined ? 'unknown_key' : 'bad_signature',
        seq: c.seq,
        detail: `checkpoint #${c.n} in the database ${ok === undefined ? `is signed by key ${c.keyId}, which is not configured` : 'does not verify'}`,
      });
    }
    if (prev && (c.n !== prev.n + 1 || c.prev !== prev.sig)) {
      return result({
        class: 'bad_signature',
        seq: c.seq,
        detail: `checkpoint #${c.n} in the database does not link to checkpoint #${prev.n}`,
      });
    }
    prev = c;
    newest = c;
  }
  if (!logged && newest) {
    warnings.push(
      'the checkpoint log is empty or new: the start-up check rests on the checkpoints inside the database only',
    );
    anchor = { source: 'database', n: newest.n, seq: newest.seq, chain: newest.chain };
  }

  // 3. The database holds the anchor's seq with the same chain (or pruned it exactly there).
  if (anchor.seq > maxSeq) {
    return result({
      class: anchor.source === 'log' ? 'rollback' : 'truncated',
      seq: maxSeq + 1,
      detail: `checkpoint #${anchor.n} (${anchor.source}) covers seq ${anchor.seq} but the database ends at seq ${maxSeq}: records were cut or an older copy restored`,
    });
  }
  if (anchor.seq > 0) {
    const stored = chainAt(anchor.seq);
    const purged = stored === undefined && anchor.seq === firstSeq - 1;
    if (stored === undefined && !purged) {
      return result({
        class: 'missing',
        seq: anchor.seq,
        detail: `record ${anchor.seq}, which checkpoint #${anchor.n} signs, is missing`,
      });
    }
    if (stored !== undefined && stored !== anchor.chain) {
      return result({
        class: 'modified',
        seq: anchor.seq,
        detail: `record ${anchor.seq} does not have the chain hash checkpoint #${anchor.n} (${anchor.source}) signs: records up to it were changed`,
      });
    }
  }
  if (firstSeq > 1) {
    const purge = db
      .prepare(
        "SELECT seq FROM records WHERE type IN ('audit.retention_purge', 'audit.archived') AND typeof(attrs) = 'text' AND json_extract(attrs, '$.toSeq') = ? ORDER BY seq DESC LIMIT 1",
      )
      .get(firstSeq - 1) as { seq: number } | undefined;
    if (!purge) {
      return result({
        class: 'missing',
        seq: 1,
        detail: `records 1..${firstSeq - 1} are missing and no audit.retention_purge or audit.archived record covers them`,
      });
    }
  }

  // 4. Every record after the anchor chained from it and sealed.
  const from = Math.max(anchor.seq, firstSeq - 1) + 1;
  let checked = 0;
  if (maxSeq >= from) {
    const r = verifyRange(
      {
        dbPath: o.dbPath,
        from,
        to: maxSeq,
        anchor: anchor.seq >= firstSeq - 1 ? anchor.chain : undefined,
        checkpoints: [],
        clockToleranceMs: Number.MAX_SAFE_INTEGER,
      },
      db,
    );
    checked = r.rows;
    const first: Damage | undefined = [...r.problems].sort((a, b) => a.seq - b.seq)[0];
    if (first) return result({ class: first.class, seq: first.seq, detail: first.detail });
    const seal = newestSeal(db, o.ledgerId, Math.max(anchor.seq, firstSeq - 1), maxSeq, o.trusted);
    const sealedTo = seal.chain !== null && chainAt(seal.top) === seal.chain ? seal.top : 0;
    // A tail written before schema v3 (no seal anywhere, no checkpoint stating the signed
    // retention that v3 writers add) cannot be sealed retroactively: said, not refused.
    const legacy =
      newest?.retentionDays === undefined &&
      db.prepare('SELECT 1 FROM seals LIMIT 1').get() === undefined;
    if (sealedTo < maxSeq && legacy) {
      warnings.push(
        `records ${Math.max(sealedTo, anchor.seq) + 1}..${maxSeq} were written before batch seals (schema v3): checked by the hash chain only`,
      );
    } else if (sealedTo < maxSeq) {
      const unsealedFrom = Math.max(sealedTo, anchor.seq) + 1;
      // A purge or archive record among rows nobody signed is a forged one: name it as such.
      const purge = db
        .prepare(
          "SELECT seq, type FROM records WHERE seq >= ? AND type IN ('audit.retention_purge', 'audit.archived') ORDER BY seq LIMIT 1",
        )
        .get(unsealedFrom) as { seq: number; type: string } | undefined;
      return result(
        purge
          ? {
              class: 'forged_purge',
              seq: purge.seq,
              detail: `the ${purge.type} record at seq ${purge.seq} carries no signature: it was not written by the ledger`,
            }
          : {
              class: 'unsealed',
              seq: unsealedFrom,
              detail: `records ${unsealedFrom}..${maxSeq} carry no signature (no checkpoint or batch seal covers them): appended by someone without the signing key`,
            },
        checked,
      );
    }
  }
  const clean = newest?.reason === 'shutdown' && newest.seq === maxSeq;
  return result(undefined, checked, clean);
}
