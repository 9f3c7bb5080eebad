import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  canonicalRecord,
  chainHash,
  leafHash,
  ZERO_HASH,
  type CanonicalFields,
} from '../../src/audit/canonical.js';
import { listRecords, lastRecordOfType } from '../../src/audit/query.js';
import {
  canonicalOfCompact,
  decodeColumns,
  decodeColumnsOrDamaged,
  encodeColumns,
  leafMatches,
  type StoredColumns,
} from '../../src/audit/record-codec.js';
import { RowWriter } from '../../src/audit/row-writer.js';
import { migrate, SCHEMA_VERSION } from '../../src/audit/schema.js';
import { verifyRange } from '../../src/audit/verify-rows.js';
import { buildLedger, rewriteRecord, tamper, tempDir, verifyBuilt } from './helpers.js';

const T = Date.UTC(2026, 0, 1);
const FP = `hmac-sha256:k1:${'ab'.repeat(32)}`;

function fields(
  type: string,
  attrs: unknown,
  over: Partial<CanonicalFields> = {},
): CanonicalFields {
  return {
    seq: 7,
    time: T,
    source: 'redis',
    type,
    kind: 'access_token',
    fingerprint: FP,
    attrs: canonicalJson(attrs),
    ...over,
  };
}

/** encode, then decode as SQLite would hand the row back. */
function roundTrip(
  f: CanonicalFields,
  attrs: unknown,
): { stored: StoredColumns; back: CanonicalFields } {
  const c = encodeColumns(f, attrs);
  const stored: StoredColumns = {
    seq: f.seq,
    time: f.time,
    ...c,
    attrs: typeof c.attrs === 'string' ? c.attrs : Buffer.from(c.attrs),
  };
  return { stored, back: decodeColumns(stored) };
}

describe('record codec (schema v5 storage encoding)', () => {
  it('a token record is stored compact and decodes to the very fields that were hashed', () => {
    const attrs = {
      db: 0,
      dueAt: T + 3_600_000,
      key: { token: FP },
      node: '10.0.3.17:6379',
      redisEvent: 'set',
      ttlMs: 3_600_000,
    };
    const f = fields('token.written', attrs);
    const { stored, back } = roundTrip(f, attrs);
    expect(stored.attrs).toBeInstanceOf(Uint8Array);
    expect(stored.source).toBeNull();
    expect(stored.type).toBeNull();
    expect(stored.fingerprint).toBeNull();
    expect(back).toEqual(f);
    // 79-byte fingerprint + 150-byte attrs text (and source, type, kind) in 85 bytes.
    expect((stored.attrs as Uint8Array).length).toBeLessThanOrEqual(85);
    expect(f.attrs.length + (f.fingerprint ?? '').length).toBeGreaterThan(220);
  });

  it('odd values round-trip exactly or fall back to the text form, never change', () => {
    const cases: unknown[] = [
      { a: 1.5, b: -0, c: 1e21, d: Number.MAX_SAFE_INTEGER + 2, e: -42, f: T - 5 },
      { s: 'caf\u00e9 \u2028 "q" \\ \n', t: '', u: 'hmac-sha256:k2:' + 'cd'.repeat(32) },
      { lone: '\ud800x', arr: [1, 'two', null, { z: true }], nested: { b: { c: false } } },
      { 'zz key': 1, Aa: 2, aa: 3, undef: undefined, n: null, big: 10n },
      { 'hmac-sha256:k1:x': 'HMAC-SHA256:k1:' + 'ab'.repeat(32) },
      {},
    ];
    for (const attrs of cases) {
      const f = fields('token.deleted', attrs);
      const { stored, back } = roundTrip(f, attrs);
      expect(back).toEqual(f);
      // verification's one-pass decoder builds the same canonical text
      if (typeof stored.attrs !== 'string') {
        expect(canonicalOfCompact(f.seq, f.time, stored.attrs)).toBe(canonicalRecord(f));
      }
    }
    const f = fields('token.expired', { a: 1 }, { kind: null, fingerprint: null, source: 'odd' });
    expect(roundTrip(f, { a: 1 }).back).toEqual(f);
  });

  it('a record the blob would not reproduce stays in the text form', () => {
    // attrs object and canonical text that disagree (the caller's text wins: it was hashed).
    const f = fields('token.written', { a: 1 }, { attrs: '{"a":2}' });
    const c = encodeColumns(f, { a: 1 });
    expect(c.attrs).toBe('{"a":2}');
    expect(c.type).toBe('token.written');
  });

  it('records that are not token.* keep the text form (SQL reads them with json_extract)', () => {
    const f = fields('provider.token_revoked', { provider: 'okta', eventId: 'e1' });
    const c = encodeColumns(f, { provider: 'okta', eventId: 'e1' });
    expect(c).toEqual({
      source: 'redis',
      type: 'provider.token_revoked',
      kind: 'access_token',
      fingerprint: FP,
      attrs: '{"eventId":"e1","provider":"okta"}',
    });
  });

  it('a damaged blob throws in decodeColumns and cannot hash back in decodeColumnsOrDamaged', () => {
    const attrs = { db: 0, node: 'n' };
    const { stored } = roundTrip(fields('token.written', attrs), attrs);
    const blob = Buffer.from(stored.attrs as Uint8Array);
    const cut = { ...stored, attrs: blob.subarray(0, blob.length - 1) };
    expect(() => decodeColumns(cut)).toThrow(RangeError);
    expect(() => canonicalOfCompact(7, T, cut.attrs)).toThrow(RangeError);
    expect(() => decodeColumns({ ...stored, attrs: Buffer.concat([blob, Buffer.of(0)]) })).toThrow(
      /trailing/,
    );
    expect(() => decodeColumns({ ...stored, attrs: Buffer.of(9, 0) })).toThrow(/codec version/);
    expect(decodeColumnsOrDamaged(cut)).toMatchObject({ source: '', attrs: '{}' });
  });

  it('leafMatches accepts the full leaf or its 4-byte hint, nothing else', () => {
    const leaf = 'ab'.repeat(32);
    expect(leafMatches(leaf, leaf)).toBe(true);
    expect(leafMatches(leaf, 'abababab')).toBe(true);
    expect(leafMatches(leaf, 'abababac')).toBe(false);
    expect(leafMatches(leaf, '')).toBe(false);
    expect(leafMatches(leaf, 'ababab')).toBe(false);
  });
});

describe('ledger rows in the v5 encoding', () => {
  it('token rows are compact, readers decode them, and the ledger verifies', async () => {
    const b = buildLedger(120, {
      first: [{ time: T, source: 'admin', type: 'admin.access', attrs: { who: 'auditor' } }],
    });
    const db = new Database(b.dbPath, { readonly: true });
    try {
      const forms = db
        .prepare(
          'SELECT typeof(attrs) AS a, type, length(leaf) AS l, COUNT(*) AS n FROM records GROUP BY 1, 2, 3 ORDER BY 1, 2',
        )
        .all();
      expect(forms).toEqual([
        { a: 'blob', type: null, l: 4, n: 120 },
        { a: 'text', type: 'admin.access', l: 4, n: 1 },
        { a: 'text', type: 'ledger.genesis', l: 4, n: 1 },
      ]);
      const tokens = listRecords(db, { type: 'token.*', limit: 5 });
      expect(tokens.map((r) => r.seq)).toEqual([3, 4, 5, 6, 7]);
      expect(tokens[0]).toMatchObject({
        source: 'redis',
        type: 'token.written',
        kind: 'access_token',
        attrs: { marker: 'needle-000000', node: 'redis-0', ttlMs: 3600000 },
      });
      expect(listRecords(db, { type: 'token.written', afterSeq: 120 }).map((r) => r.seq)).toEqual([
        121, 122,
      ]);
      expect(listRecords(db, { type: 'admin.*' }).map((r) => r.type)).toEqual(['admin.access']);
      expect(listRecords(db, { type: 'token.expired' })).toEqual([]);
      expect(lastRecordOfType(db, 'token.written')?.seq).toBe(122);
      expect(lastRecordOfType(db, 'token.written', 10)?.seq).toBe(9);
      expect(lastRecordOfType(db, 'admin.access')?.attrs).toEqual({ who: 'auditor' });
      // The partial index serves every lookup by type of the rarer records.
      const plan = db
        .prepare("EXPLAIN QUERY PLAN SELECT seq FROM records WHERE type = 'admin.access'")
        .all() as { detail: string }[];
      expect(plan.map((p) => p.detail).join()).toMatch(/records_type_seq/);
    } finally {
      db.close();
    }
    const r = await verifyBuilt(b);
    expect(r.ok).toBe(true);
    expect(r.records).toBe(122);
  });

  it('a v4 ledger migrates: old rows stay in the text form, new rows are compact, all verify', () => {
    const path = join(tempDir(), 'audit.db');
    const db = new Database(path);
    migrate(db, 4);
    // Rows as v4 wrote them: text columns, full 32-byte leaf.
    let chain = ZERO_HASH;
    const ins = db.prepare('INSERT INTO records VALUES (?,?,?,?,?,?,?,?,?)');
    for (let seq = 1; seq <= 20; seq++) {
      const f = fields('token.written', { n: seq, node: 'r' }, { seq, time: T + seq });
      const leaf = leafHash(canonicalRecord(f));
      chain = chainHash(chain, leaf);
      ins.run(seq, f.time, f.source, f.type, f.kind, f.fingerprint, f.attrs, leaf, chain);
    }
    migrate(db);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    const rows = db
      .prepare('SELECT seq, time, source, type, kind, fingerprint, attrs FROM records ORDER BY seq')
      .all() as StoredColumns[];
    expect(rows.every((r) => typeof r.attrs === 'string' && r.type === 'token.written')).toBe(true);
    expect(decodeColumns(rows[4] as StoredColumns)).toEqual(
      fields('token.written', { n: 5, node: 'r' }, { seq: 5, time: T + 5 }),
    );
    // New rows after the migration: compact, chained on the old ones.
    const w = new RowWriter(db);
    db.transaction(() => {
      w.begin(20, chain, T);
      for (let i = 0; i < 20; i++) {
        w.add({
          time: T + 100 + i,
          source: 'redis',
          type: 'token.expired',
          kind: 'session',
          fingerprint: FP,
          attrs: { key: { sid: FP }, lifetimeMs: 5 },
        });
      }
      w.end();
    })();
    const forms = db
      .prepare(
        'SELECT typeof(attrs) AS a, length(leaf) AS l, COUNT(*) AS n FROM records GROUP BY 1, 2',
      )
      .all();
    expect(forms).toEqual([
      { a: 'blob', l: 4, n: 20 },
      { a: 'text', l: 32, n: 20 },
    ]);
    // Append-only triggers are back after the rebuild.
    expect(() => db.prepare('DELETE FROM records WHERE seq = 3').run()).toThrow(/append-only/);
    expect(() => db.prepare('UPDATE records SET time = 0 WHERE seq = 3').run()).toThrow(
      /append-only/,
    );
    db.close();
    const task = { dbPath: path, from: 1, to: 40, anchor: ZERO_HASH.toString('hex') };
    const verify = () => verifyRange({ ...task, checkpoints: [], clockToleranceMs: 1000 });
    expect(verify()).toMatchObject({ rows: 40, problems: [] });
    // An edit in either form is found at its seq.
    tamper(path, (t) => {
      t.prepare(`UPDATE records SET attrs = '{"n":6,"node":"s"}' WHERE seq = 6`).run();
      rewriteRecord(t, 33, (f) => ({ ...f, kind: 'access_token' }));
    });
    expect(verify().problems.map((p) => [p.class, p.seq])).toEqual([
      ['modified', 6],
      ['modified', 33],
    ]);
  });
});
