import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { lastRecordOfType, listRecords } from '../../src/audit/query.js';
import { canonicalOfCompact, decodeColumns } from '../../src/audit/record-codec.js';
import { blindWindowsSince, findingPages } from '../../src/audit/store/typed-reads.js';
import { buildLedger, fieldsAt, tamper, verifyBuilt } from '../audit/helpers.js';

/** Unsigned LEB128. */
function varint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}
const str = (tag: number, s: string): number[] => {
  const b = Buffer.from(s, 'utf8');
  return [tag, ...varint(b.length), ...b];
};
const T_NULL = 0;
const T_STR = 7;
const T_SELF = 10;
const T_OBJ = 11;
const T_JSON = 12;

/**
 * What an attacker who can write the file does to a text row: the same canonical fields, stored
 * in the compact form (attrs as one JSON value). The record still hashes to its leaf and chain.
 */
function asCompact(f: ReturnType<typeof fieldsAt>): Buffer {
  return Buffer.from([
    1,
    ...str(T_STR, f.source),
    ...str(T_STR, f.type),
    ...(f.kind === null ? [T_NULL] : str(T_STR, f.kind)),
    ...(f.fingerprint === null ? [T_NULL] : str(T_STR, f.fingerprint)),
    ...str(T_JSON, f.attrs),
  ]);
}

function seqOfType(dbPath: string, type: string): number {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (db.prepare('SELECT seq FROM records WHERE type = ?').get(type) as { seq: number }).seq;
  } finally {
    db.close();
  }
}

describe('compact storage form (schema v5): crafted rows', () => {
  it('a ledger.discontinuity row transcoded to the compact form is not hidden from verify', async () => {
    const b = buildLedger(60, {
      first: [
        {
          time: Date.UTC(2026, 0, 1),
          source: 'system',
          type: 'ledger.discontinuity',
          kind: null,
          fingerprint: null,
          attrs: { class: 'modified', seq: 7 },
        },
      ],
    });
    const before = await verifyBuilt(b);
    expect(before.ok).toBe(false);
    expect(before.problems.map((p) => p.class)).toContain('discontinuity');
    const seq = seqOfType(b.dbPath, 'ledger.discontinuity');
    tamper(b.dbPath, (db) => {
      const blob = asCompact(fieldsAt(db, seq));
      db.prepare(
        'UPDATE records SET source = NULL, type = NULL, kind = NULL, fingerprint = NULL, attrs = ? WHERE seq = ?',
      ).run(blob, seq);
    });
    const after = await verifyBuilt(b);
    // Before the fix: ok, no problem at all (the SQL `type = 'ledger.discontinuity'` misses the
    // row, and the blob decodes to the very bytes that were hashed).
    expect(after.ok).toBe(false);
    expect(after.problems.some((p) => p.seq === seq)).toBe(true);
  });

  it('the decoders refuse a compact blob whose type is not token.*', () => {
    const blob = asCompact({
      seq: 5,
      time: 1000,
      source: 'system',
      type: 'config.policy',
      kind: null,
      fingerprint: null,
      attrs: '{}',
    });
    expect(() => canonicalOfCompact(5, 1000, blob)).toThrow(RangeError);
    const row = { seq: 5, time: 1000, source: null, type: null, kind: null, fingerprint: null };
    expect(() => decodeColumns({ ...row, attrs: blob })).toThrow(RangeError);
  });

  it('a small blob cannot expand into a huge canonical text (fingerprint references)', () => {
    // A 64 KiB fingerprint referenced 4096 times: an 80 KiB blob that decoded to 256 MiB.
    const fp = 'x'.repeat(65_536);
    const members: number[] = [];
    for (let i = 0; i < 4096; i++)
      members.push(0xff, ...varint(4), ...Buffer.from(i.toString(16).padStart(4, '0')), T_SELF);
    const blob = Buffer.from([
      1,
      ...str(T_STR, 'redis'),
      ...str(T_STR, 'token.written'),
      T_NULL,
      ...str(T_STR, fp),
      T_OBJ,
      ...varint(4096),
      ...members,
    ]);
    expect(blob.length).toBeLessThan(200_000);
    const row = { seq: 5, time: 1000, source: null, type: null, kind: null, fingerprint: null };
    expect(() => canonicalOfCompact(5, 1000, blob)).toThrow(RangeError);
    expect(() => decodeColumns({ ...row, attrs: blob })).toThrow(RangeError);
  });
});

describe('typed reads: the type column of a compact row is not its type', () => {
  it('a token row with a type column written in is not found as that type', () => {
    const b = buildLedger(20, {
      first: [
        {
          time: Date.UTC(2026, 0, 1),
          source: 'system',
          type: 'config.policy',
          kind: null,
          fingerprint: null,
          attrs: { genuine: true },
        },
      ],
    });
    const policySeq = seqOfType(b.dbPath, 'config.policy');
    tamper(b.dbPath, (db) => {
      const last = (db.prepare('SELECT MAX(seq) AS s FROM records').get() as { s: number }).s;
      db.prepare("UPDATE records SET type = 'config.policy' WHERE seq = ?").run(last);
    });
    const db = new Database(b.dbPath, { readonly: true });
    try {
      const r = lastRecordOfType(db, 'config.policy');
      expect(r?.type).toBe('config.policy');
      expect(r?.seq).toBe(policySeq);
      const listed = listRecords(db, { type: 'config.policy' });
      expect(listed.map((x) => x.seq)).toEqual([policySeq]);
    } finally {
      db.close();
    }
  });
});

describe('typed reads of JSON text skip a compact blob under another type column', () => {
  it('a token row given the type keyspace.gap or finding.* is not handed over as JSON text', () => {
    const b = buildLedger(20);
    tamper(b.dbPath, (db) => {
      const last = (db.prepare('SELECT MAX(seq) AS s FROM records').get() as { s: number }).s;
      db.prepare("UPDATE records SET type = 'keyspace.gap' WHERE seq = ?").run(last);
      db.prepare("UPDATE records SET type = 'finding.revocation_missed' WHERE seq = ?").run(
        last - 1,
      );
    });
    const db = new Database(b.dbPath, { readonly: true });
    try {
      for (const r of blindWindowsSince(db, 0)) expect(typeof r.attrs).toBe('string');
      for (const page of findingPages(db, Number.MAX_SAFE_INTEGER))
        for (const r of page) expect(typeof r.attrs).toBe('string');
      expect(blindWindowsSince(db, 0)).toHaveLength(0);
    } finally {
      db.close();
    }
  });
});
