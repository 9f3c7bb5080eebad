import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach } from 'vitest';
import {
  ZERO_HASH,
  canonicalRecord,
  chainHash,
  leafHash,
  type CanonicalFields,
} from '../../src/audit/canonical.js';
import { Checkpointer } from '../../src/audit/checkpointer.js';
import { Ledger } from '../../src/audit/ledger.js';
import type { AuditInput } from '../../src/audit/record.js';
import { decodeColumns, encodeColumns, type StoredColumns } from '../../src/audit/record-codec.js';
import {
  loadTrustedKey,
  resolveSigningKey,
  type SigningKey,
  type TrustedKey,
} from '../../src/audit/signing-keys.js';
import { verifyLedger, type VerifyReport } from '../../src/audit/verify.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A temp dir removed after the test. */
export function tempDir(prefix = 'tw-audit-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** A hand-driven clock. */
export class FakeClock {
  t: number;
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.t = start;
  }
  readonly now = (): number => this.t;
  advance(ms: number): number {
    this.t += ms;
    return this.t;
  }
}

export interface Built {
  dir: string;
  dbPath: string;
  logPath: string;
  publicKeyPath: string;
  key: SigningKey;
  trusted: TrustedKey[];
  clock: FakeClock;
}

export interface OpenOptions {
  checkpointEvery?: number;
  batchSize?: number;
  clock?: FakeClock;
  /** Records appended right after genesis, before the generated ones (buildLedger). */
  first?: readonly AuditInput[];
  /** Signed in every checkpoint (what retention purges are verified against). */
  retentionDays?: number;
}

/** A Ledger + Checkpointer on `dir` (generated key and log beside the database). */
export function openLedger(
  dir: string,
  opts: OpenOptions = {},
): { ledger: Ledger; checkpointer: Checkpointer; key: SigningKey; clock: FakeClock } {
  const clock = opts.clock ?? new FakeClock();
  const dbPath = join(dir, 'audit.db');
  const { key } = resolveSigningKey(undefined, dbPath);
  const ledger = new Ledger({
    path: dbPath,
    batchSize: opts.batchSize ?? 1000,
    flushIntervalMs: 5,
    maxPending: 100_000,
    hmacKeyIds: ['k1'],
    signingKey: key,
    now: clock.now,
  });
  const checkpointer = new Checkpointer({
    ledger,
    key,
    logPath: join(dir, 'checkpoints.jsonl'),
    everyRecords: opts.checkpointEvery ?? 50,
    intervalMs: 60_000,
    heartbeatMs: 300_000,
    now: clock.now,
    ...(opts.retentionDays === undefined ? {} : { retentionDays: opts.retentionDays }),
  });
  checkpointer.start();
  return { ledger, checkpointer, key, clock };
}

/** Appends `count` records (attrs carry a unique `needle-NNNNNN` marker), one clock tick each. */
export function appendRecords(ledger: Ledger, clock: FakeClock, count: number, from = 0): void {
  for (let i = from; i < from + count; i++) {
    clock.advance(10);
    ledger.append({
      time: clock.now(),
      source: 'redis',
      type: 'token.written',
      kind: 'access_token',
      fingerprint: `hmac-sha256:k1:${i.toString(16).padStart(64, '0')}`,
      attrs: { marker: `needle-${String(i).padStart(6, '0')}`, node: 'redis-0', ttlMs: 3600_000 },
    });
  }
  ledger.flush();
}

/** A closed ledger of genesis + `records` records, sealed every `checkpointEvery`, shut down cleanly. */
export function buildLedger(records = 200, opts: OpenOptions = {}): Built {
  const dir = tempDir();
  const { ledger, checkpointer, key, clock } = openLedger(dir, opts);
  for (const input of opts.first ?? []) ledger.append(input);
  appendRecords(ledger, clock, records);
  checkpointer.close();
  ledger.close();
  return builtAt(dir, key, clock);
}

/** The files and keys of a closed ledger that `openLedger(dir)` wrote. */
export function builtAt(dir: string, key: Built['key'], clock: Built['clock']): Built {
  return {
    dir,
    dbPath: join(dir, 'audit.db'),
    logPath: join(dir, 'checkpoints.jsonl'),
    publicKeyPath: join(dir, 'signing.pub'),
    key,
    trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
    clock,
  };
}

/** Runs the verifier the way an auditor would: database, external log, trusted key. */
export function verifyBuilt(
  b: Built,
  over: Partial<Parameters<typeof verifyLedger>[0]> = {},
): Promise<VerifyReport> {
  return verifyLedger({ dbPath: b.dbPath, checkpointLog: b.logPath, trusted: b.trusted, ...over });
}

/** Opens the file read-write as an attacker would, with every protective trigger dropped. */
export function tamper(dbPath: string, fn: (db: Database.Database) => void): void {
  const db = new Database(dbPath);
  try {
    for (const t of [
      'records_no_update',
      'records_no_delete',
      'records_seq_next',
      'checkpoints_no_update',
      'checkpoints_no_delete',
      'checkpoints_n_next',
    ]) {
      db.exec(`DROP TRIGGER IF EXISTS ${t}`);
    }
    fn(db);
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** Rewrites leaf and chain of every record from `fromSeq` on: an attacker without the signing key. */
export function recomputeChain(db: Database.Database, fromSeq: number): void {
  const before = db.prepare('SELECT chain FROM records WHERE seq = ?').get(fromSeq - 1) as
    { chain: Buffer } | undefined;
  let chain = before?.chain ?? ZERO_HASH;
  const rows = db
    .prepare(
      'SELECT seq, time, source, type, kind, fingerprint, attrs FROM records WHERE seq >= ? ORDER BY seq',
    )
    .all(fromSeq) as StoredColumns[];
  const update = db.prepare('UPDATE records SET leaf = ?, chain = ? WHERE seq = ?');
  for (const r of rows) {
    const leaf = leafHash(canonicalRecord(decodeColumns(r)));
    chain = chainHash(chain, leaf);
    update.run(leaf, chain, r.seq);
  }
}

/** A record's canonical fields as stored at `seq` (either storage form). */
export function fieldsAt(db: Database.Database, seq: number): CanonicalFields {
  return decodeColumns(
    db
      .prepare(
        'SELECT seq, time, source, type, kind, fingerprint, attrs FROM records WHERE seq = ?',
      )
      .get(seq) as StoredColumns,
  );
}

/**
 * Rewrites the record at `seq` in its own storage form, as an attacker who knows the format
 * would (the codec is public): decoded, changed, encoded again. Leaf and chain stay.
 */
export function rewriteRecord(
  db: Database.Database,
  seq: number,
  change: (f: CanonicalFields) => CanonicalFields,
): void {
  const f = change(fieldsAt(db, seq));
  const c = encodeColumns(f, JSON.parse(f.attrs) as unknown);
  db.prepare(
    'UPDATE records SET source = ?, type = ?, kind = ?, fingerprint = ?, attrs = ? WHERE seq = ?',
  ).run(c.source, c.type, c.kind, c.fingerprint, c.attrs, seq);
}

/** Copies a closed database file (a backup). */
export function copyDb(from: string, to: string): void {
  copyFileSync(from, to);
}
