import { sign, verify, type KeyObject } from 'node:crypto';
import type Database from 'better-sqlite3';
import { canonicalJson } from './canonical.js';
import type { SigningKey } from './signing-keys.js';

/** Version of the checkpoint statement (the signed message and the log line). */
export const CHECKPOINT_VERSION = 1;

/** Domain separation: a checkpoint signature can never be replayed as any other signature. */
const MESSAGE_PREFIX = `tokenwatch checkpoint v${CHECKPOINT_VERSION}\n`;

/** Why a checkpoint was written. */
export type CheckpointReason = 'records' | 'interval' | 'heartbeat' | 'start' | 'shutdown';

/** What a checkpoint states; `prev` links it to the one before (CloudTrail digest style). */
export interface CheckpointBody {
  ledgerId: string;
  /** Checkpoint number: 1, 2, ... with no gaps. */
  n: number;
  /** Records 1..seq are covered. */
  seq: number;
  /** Chain hash of record `seq`, lowercase hex. */
  chain: string;
  /** Signing time, unix ms (the writer's clock; seq, not time, orders checkpoints). */
  time: number;
  reason: CheckpointReason;
  /** Id of the Ed25519 key that signed (keyIdOf). */
  keyId: string;
  /** Signature of checkpoint n-1 (base64), null for the first. */
  prev: string | null;
  /**
   * `audit.retentionDays` the writer ran under when it signed (schema v3 on). Signed, so a
   * retention purge is checked against it and never against a record in the database. Its
   * presence also states that the writer seals every committed batch. Absent in older
   * checkpoints, whose message then is exactly the v1 message (canonical JSON omits undefined).
   */
  retentionDays?: number;
}

/** A signed checkpoint, as stored in the database and written to the checkpoint log. */
export interface Checkpoint extends CheckpointBody {
  /** Ed25519 signature over checkpointMessage(body), base64. */
  sig: string;
}

/**
 * The bytes that are signed: a fixed prefix, then the canonical JSON of the body (sorted keys).
 * Rebuilt from the fields on every check, never taken from the stored line, so a reformatted
 * log line still verifies and an altered field never does.
 */
export function checkpointMessage(b: CheckpointBody): Buffer {
  return Buffer.from(
    MESSAGE_PREFIX +
      canonicalJson({
        chain: b.chain,
        keyId: b.keyId,
        ledgerId: b.ledgerId,
        n: b.n,
        prev: b.prev,
        reason: b.reason,
        retentionDays: b.retentionDays,
        seq: b.seq,
        time: b.time,
      }),
    'utf8',
  );
}

/** Signs a checkpoint body (RFC 8032 pure Ed25519). */
export function signCheckpoint(body: Omit<CheckpointBody, 'keyId'>, key: SigningKey): Checkpoint {
  const full: CheckpointBody = { ...body, keyId: key.keyId };
  return { ...full, sig: sign(null, checkpointMessage(full), key.privateKey).toString('base64') };
}

/** True when `sig` is a valid signature of the checkpoint by `publicKey`. */
export function checkpointSignatureValid(c: Checkpoint, publicKey: KeyObject): boolean {
  const sig = Buffer.from(c.sig, 'base64');
  if (sig.length !== 64) return false;
  try {
    return verify(null, checkpointMessage(c), publicKey, sig);
  } catch {
    return false;
  }
}

/** One line of the external checkpoint log (canonical JSON, newline-terminated). */
export function checkpointLine(c: Checkpoint): string {
  return `${canonicalJson({ v: CHECKPOINT_VERSION, ...c })}\n`;
}

const REASONS: ReadonlySet<string> = new Set([
  'records',
  'interval',
  'heartbeat',
  'start',
  'shutdown',
]);
const HEX64 = /^[0-9a-f]{64}$/;
const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Validates a parsed log line or row into a Checkpoint; returns a message when malformed. */
export function parseCheckpoint(value: unknown): Checkpoint | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const o = value as Record<string, unknown>;
  if (o.v !== undefined && o.v !== CHECKPOINT_VERSION)
    return `unsupported version ${JSON.stringify(o.v)}`;
  const int = (k: string): boolean => Number.isSafeInteger(o[k]);
  if (typeof o.ledgerId !== 'string') return 'ledgerId missing';
  if (!int('n') || (o.n as number) < 1) return 'n must be a positive integer';
  if (!int('seq') || (o.seq as number) < 0) return 'seq must be a whole number';
  if (!int('time')) return 'time must be an integer';
  if (typeof o.chain !== 'string' || !HEX64.test(o.chain)) return 'chain must be 64 hex digits';
  if (typeof o.reason !== 'string' || !REASONS.has(o.reason)) return 'unknown reason';
  if (typeof o.keyId !== 'string' || o.keyId.length === 0) return 'keyId missing';
  if (o.prev !== null && (typeof o.prev !== 'string' || !B64.test(o.prev))) return 'bad prev';
  if (typeof o.sig !== 'string' || !B64.test(o.sig)) return 'bad sig';
  if (o.retentionDays !== undefined && o.retentionDays !== null && !int('retentionDays'))
    return 'retentionDays must be an integer';
  const retention = typeof o.retentionDays === 'number' ? { retentionDays: o.retentionDays } : {};
  return {
    ledgerId: o.ledgerId,
    n: o.n as number,
    seq: o.seq as number,
    chain: o.chain,
    time: o.time as number,
    reason: o.reason as CheckpointReason,
    keyId: o.keyId,
    prev: o.prev,
    sig: o.sig,
    ...retention,
  };
}

/** A row of the `checkpoints` table. */
export interface CheckpointRow {
  n: number;
  seq: number;
  chain: Buffer;
  time: number;
  reason: string;
  key_id: string;
  prev: Buffer | null;
  sig: Buffer;
  /** Schema v3; NULL in checkpoints of older writers. */
  retention_days: number | null;
}

/** SELECT / INSERT list matching CheckpointRow on a current (v3) database. */
export const CHECKPOINT_COLUMNS = 'n, seq, chain, time, reason, key_id, prev, sig, retention_days';

const columnsByDb = new WeakMap<Database.Database, string>();

/**
 * SELECT list matching CheckpointRow on any schema version: a read-only open of a v2 ledger has
 * no retention_days column (verify, reports and exports never migrate the file they check).
 */
export function checkpointColumns(db: Database.Database): string {
  let cols = columnsByDb.get(db);
  if (cols === undefined) {
    const has =
      db
        .prepare("SELECT 1 FROM pragma_table_info('checkpoints') WHERE name = 'retention_days'")
        .get() !== undefined;
    cols = has
      ? CHECKPOINT_COLUMNS
      : 'n, seq, chain, time, reason, key_id, prev, sig, NULL AS retention_days';
    columnsByDb.set(db, cols);
  }
  return cols;
}

/** A database row as a Checkpoint of `ledgerId` (the table does not repeat the id per row). */
export function checkpointFromRow(row: CheckpointRow, ledgerId: string): Checkpoint {
  return {
    ledgerId,
    n: row.n,
    seq: row.seq,
    chain: Buffer.from(row.chain).toString('hex'),
    time: row.time,
    reason: row.reason as CheckpointReason,
    keyId: row.key_id,
    prev: row.prev === null ? null : Buffer.from(row.prev).toString('base64'),
    sig: Buffer.from(row.sig).toString('base64'),
    ...(row.retention_days === null || row.retention_days === undefined
      ? {}
      : { retentionDays: Number(row.retention_days) }),
  };
}

/** Inserts a checkpoint into the `checkpoints` table (the trigger enforces n = max(n)+1). */
export function checkpointRowValues(c: Checkpoint): unknown[] {
  return [
    c.n,
    c.seq,
    Buffer.from(c.chain, 'hex'),
    c.time,
    c.reason,
    c.keyId,
    c.prev === null ? null : Buffer.from(c.prev, 'base64'),
    Buffer.from(c.sig, 'base64'),
    c.retentionDays ?? null,
  ];
}
