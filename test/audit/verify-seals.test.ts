import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  generateSigningKeyPem,
  loadTrustedKey,
  type TrustedKey,
} from '../../src/audit/signing-keys.js';
import { besideDatabase, newestSeal } from '../../src/audit/verify-seals.js';
import { appendRecords, openLedger, tempDir } from './helpers.js';

// newestSeal on a real ledger's seals table: the newest authentic seal wins, the forged ones
// above it are findings, the scan pages down in 64s.

/** A ledger committed in `batches` flushes of one record each (one seal per flush). */
function sealed(batches: number) {
  const dir = tempDir();
  const { ledger, checkpointer, clock } = openLedger(dir, { checkpointEvery: 1_000_000 });
  for (let i = 0; i < batches; i++) appendRecords(ledger, clock, 1, i);
  const ledgerId = ledger.ledgerId;
  ledger.close();
  checkpointer.close();
  const dbPath = join(dir, 'audit.db');
  return { dir, dbPath, ledgerId, trusted: [loadTrustedKey(join(dir, 'signing.pub'))] };
}

function otherKey(dir: string): TrustedKey {
  const path = join(dir, 'other.pub');
  writeFileSync(path, generateSigningKeyPem().publicPem);
  return loadTrustedKey(path);
}

/** Runs newestSeal on a writable copy where `edit` forged some seals first. */
function check(
  s: ReturnType<typeof sealed>,
  after: number,
  max: number,
  trusted: readonly TrustedKey[],
  edit?: (db: Database.Database) => void,
) {
  const db = new Database(s.dbPath);
  try {
    if (edit) {
      db.exec('DROP TRIGGER IF EXISTS seals_no_update');
      edit(db);
    }
    return newestSeal(db, s.ledgerId, after, max, trusted);
  } finally {
    db.close();
  }
}

function storedChain(dbPath: string, seq: number): string {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (
      db.prepare('SELECT lower(hex(chain)) AS c FROM seals WHERE seq = ?').get(seq) as { c: string }
    ).c;
  } finally {
    db.close();
  }
}

describe('newestSeal', () => {
  it('takes the newest authentic seal in (after, max]', () => {
    const s = sealed(5); // genesis + 5 records, seals at 1..6
    const r = check(s, 0, 6, s.trusted);
    expect(r).toEqual({
      top: 6,
      chain: storedChain(s.dbPath, 6),
      problems: [],
      keyIds: [s.trusted[0]?.keyId],
    });
    expect(check(s, 0, 4, s.trusted).top).toBe(4);
    // Nothing above `after`: no seal.
    expect(check(s, 6, 6, s.trusted)).toEqual({ top: 0, chain: null, problems: [], keyIds: [] });
    expect(check(s, 3, 3, s.trusted).top).toBe(0);
  });

  it('a seal whose signature does not verify → bad_signature, and the next one down is used', () => {
    const s = sealed(5);
    const r = check(s, 0, 6, s.trusted, (db) =>
      db.prepare('UPDATE seals SET sig = zeroblob(64) WHERE seq = 6').run(),
    );
    expect(r.problems).toEqual([
      {
        class: 'bad_signature',
        seq: 6,
        detail: `the batch seal at seq 6 does not verify under key ${s.trusted[0]?.keyId}`,
      },
    ]);
    expect(r.top).toBe(5);
    expect(r.chain).toBe(storedChain(s.dbPath, 5));
  });

  it('a seal whose chain is not 32 bytes → bad_signature', () => {
    const s = sealed(3);
    const r = check(s, 0, 4, s.trusted, (db) =>
      db.prepare('UPDATE seals SET chain = zeroblob(31) WHERE seq = 4').run(),
    );
    expect(r.problems.map((p) => [p.class, p.seq])).toEqual([['bad_signature', 4]]);
    expect(r.top).toBe(3);
  });

  it('seals of an untrusted key → one unknown_key for that key, none found', () => {
    const s = sealed(3);
    const r = check(s, 0, 4, [otherKey(s.dir)]);
    expect(r.top).toBe(0);
    expect(r.chain).toBeNull();
    expect(r.problems).toEqual([
      {
        class: 'unknown_key',
        seq: 4,
        detail: `the batch seal at seq 4 is signed by key ${s.trusted[0]?.keyId}, which is not trusted`,
      },
    ]);
    // No trusted key at all: the checkpoints' finding says it; nothing here.
    expect(check(s, 0, 4, []).problems).toEqual([]);
  });

  it('pages down past 64 forged seals to the authentic one below', () => {
    const s = sealed(80);
    const r = check(s, 0, 81, s.trusted, (db) =>
      db.prepare('UPDATE seals SET sig = zeroblob(64) WHERE seq > 10').run(),
    );
    expect(r.top).toBe(10);
    expect(r.problems).toHaveLength(71);
    expect(r.problems[0]?.seq).toBe(81);
    expect(r.problems.at(-1)?.seq).toBe(11);
  });
});

describe('besideDatabase', () => {
  it('compares directories after resolving the paths', () => {
    const dir = tempDir();
    const sub = join(dir, 'sub');
    mkdirSync(sub);
    const db = join(dir, 'audit.db');
    writeFileSync(db, '');
    expect(besideDatabase(join(dir, 'signing.pub'), db)).toBe(true);
    expect(besideDatabase(join(sub, '..', 'signing.pub'), db)).toBe(true);
    expect(besideDatabase(join(sub, 'signing.pub'), db)).toBe(false);
    // A database reached through a symlinked directory is beside the real directory's files.
    const link = join(tempDir(), 'link');
    symlinkSync(dir, link);
    writeFileSync(join(dir, 'k.pub'), '');
    expect(besideDatabase(join(dir, 'k.pub'), join(link, 'audit.db'))).toBe(true);
    expect(besideDatabase(join(link, 'k.pub'), db)).toBe(true);
  });
});
