import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalRecord, type CanonicalFields } from '../../src/audit/canonical.js';
import { CHECK_EVERY, CompactEncoder, type RecordHead } from '../../src/audit/compact-encoder.js';
import { canonicalOfCompact, decodeColumns, encodeColumns } from '../../src/audit/record-codec.js';
import { KEYS, WORDS } from '../../src/audit/record-codec-vocabulary.js';
import type { AuditInput } from '../../src/audit/record.js';
import { RowWriter } from '../../src/audit/row-writer.js';
import { mulberry32 } from '../helpers/mulberry32.js';

const T = Date.UTC(2026, 0, 1);
const FP = `hmac-sha256:k1:${'ab'.repeat(32)}`;

const ODD_CHARS = ['a', 'Z', '"', '\\', '\n', '\u0000', '\u001f', '\u007f', 'é', '\u2028', '\u2029',
  '😀', '\ud800', '\udc00', '\ufffd', ':', ' ', '0']; // prettier-ignore

function generator(seed: number) {
  const r = mulberry32(seed);
  const int = (n: number): number => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
  const text = (): string => {
    let s = '';
    for (let i = int(12); i > 0; i--) s += pick(ODD_CHARS);
    return s;
  };
  const fingerprint = (): string =>
    `hmac-sha256:${pick(['k1', 'key.2', 'A_b-9', 'x'.repeat(32)])}:${Array.from({ length: 64 }, () => '0123456789abcdef'[int(16)]).join('')}`;
  const string = (self: string | null): string => {
    switch (int(7)) {
      case 0:
        return pick(WORDS);
      case 1:
        return fingerprint();
      case 2:
        return self ?? text();
      case 3: // near misses of the fingerprint form
        return pick([
          FP.toUpperCase(),
          `${FP}0`,
          FP.slice(0, -1),
          `hmac-sha256::${'ab'.repeat(32)}`,
          `hmac-sha256:${'x'.repeat(33)}:${'ab'.repeat(32)}`,
          `hmac-sha256:a:b:${'ab'.repeat(32)}`,
          `hmac-sha256:k\u00e9:${'ab'.repeat(32)}`,
          `hmac-sha256:k1:${'ab'.repeat(31)}aB`,
          `hmac-sha256:k1:${'ab'.repeat(31)}a\u0130`,
          `hmac-sha256:k1:${'ab'.repeat(31)}g0`,
          `hmac-sha256:k 1:${'ab'.repeat(32)}`,
          `xmac-sha256:k1:${'ab'.repeat(32)}`,
        ]);
      case 4:
        return `10.0.${int(256)}.${int(256)}:${6379 + int(3)}`;
      default:
        return text();
    }
  };
  const number = (time: number): number =>
    pick([
      () => int(1000),
      () => -int(1000),
      () => time + int(10_000_000),
      () => time - int(10_000_000),
      () => -0,
      () => 0,
      () => r() * 1e6,
      () => Number.MAX_SAFE_INTEGER,
      () => -Number.MAX_SAFE_INTEGER,
      () => Number.MAX_SAFE_INTEGER + 2,
      () => 1e21,
      () => Number.NaN,
      () => Number.POSITIVE_INFINITY,
      () => 2 ** 31,
    ])();
  const value = (depth: number, time: number, self: string | null): unknown => {
    switch (int(depth > 2 ? 6 : 9)) {
      case 0:
        return null;
      case 1:
        return r() < 0.5;
      case 2:
      case 3:
        return number(time);
      case 4:
      case 5:
        return string(self);
      case 6:
        return object(depth + 1, time, self);
      case 7:
        return pick([
          undefined,
          10n,
          [1, 'two', null, { z: true }, undefined, text()],
          () => 1,
          Symbol('s'),
        ]);
      default:
        return Array.from({ length: int(4) }, () => value(depth + 1, time, self));
    }
  };
  const key = (): string =>
    r() < 0.6 ? pick(KEYS) : r() < 0.5 ? text() : pick(['epoch', 'pos', '10', '2', 'Aa', 'aa']);
  const object = (depth: number, time: number, self: string | null): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    const members = int(20) === 0 ? 130 + int(200) : int(8);
    for (let i = 0; i < members; i++) o[members > 100 ? `m${i}` : key()] = value(depth, time, self);
    return o;
  };
  const head = (seq: number): RecordHead => {
    const time = pick([T, 0, T + int(1000), -5]);
    return {
      seq,
      time,
      source: pick(['redis', 'provider', 'odd source', 'é']),
      type: pick(['token.written', 'token.deleted', 'token.', 'token.some_new_type']),
      kind: pick(['access_token', null, 'custom kind']),
      fingerprint: pick([FP, fingerprint(), null, 'not-a-fingerprint', 'x'.repeat(300)]),
    };
  };
  return { head, object: (h: RecordHead) => object(0, h.time, h.fingerprint) };
}

describe('compact encoder (one pass: blob and canonical attrs text)', () => {
  it('on generated records: the blob decodes to the text it returns, which is canonicalJson, and its bytes are the checked encoder`s', () => {
    const enc = new CompactEncoder();
    const g = generator(19);
    let compact = 0;
    for (let seq = 1; seq <= 4_000; seq++) {
      const head = g.head(seq);
      const attrs = g.object(head);
      const fields: CanonicalFields = { ...head, attrs: canonicalJson(attrs) };
      const ctx = `seq ${seq}: ${fields.attrs.slice(0, 200)}`;
      const got = enc.encode(head, attrs);
      // The encoder that decodes every record to check it: same decision, same bytes.
      const checked = encodeColumns(fields, attrs);
      if (got === null) {
        expect(checked.attrs, ctx).toBeTypeOf('string');
        continue;
      }
      compact += 1;
      expect(got.attrs, ctx).toBe(fields.attrs);
      expect(Buffer.from(got.blob).equals(Buffer.from(checked.attrs as Uint8Array)), ctx).toBe(
        true,
      );
      expect(
        decodeColumns({
          ...head,
          source: null,
          type: null,
          kind: null,
          fingerprint: null,
          attrs: got.blob,
        }),
        ctx,
      ).toEqual(fields);
      expect(canonicalOfCompact(seq, head.time, got.blob), ctx).toBe(canonicalRecord(fields));
    }
    expect(enc.mismatches).toBe(0);
    // Most generated records are compact; the rest hold a lone surrogate or an odd fingerprint.
    expect(compact).toBeGreaterThan(1_000);
  }, 60_000);

  it('keeps the text form for what it cannot vouch for', () => {
    const enc = new CompactEncoder();
    const head: RecordHead = {
      seq: 1,
      time: T,
      source: 'redis',
      type: 'token.written',
      kind: 'access_token',
      fingerprint: FP,
    };
    expect(enc.encode(head, { a: 'x\ud800' })).toBeNull();
    expect(enc.encode(head, { 'k\udc00': 1 })).toBeNull();
    expect(enc.encode(head, [1, 2])).toBeNull();
    expect(enc.encode({ ...head, type: 'provider.token_revoked' }, { a: 1 })).toBeNull();
    expect(enc.encode({ ...head, source: 'r\ud800' }, { a: 1 })).toBeNull();
    // A long fingerprint referenced often would expand past the decoder's budget.
    const long = 'f'.repeat(300);
    const refs = Object.fromEntries(KEYS.map((k) => [k, long]));
    const many = Object.fromEntries(KEYS.map((k) => [k, refs]));
    expect(enc.encode({ ...head, fingerprint: long }, many)).toBeNull();
    const f = { ...head, fingerprint: long, attrs: canonicalJson(many) };
    expect(encodeColumns(f, many).attrs).toBe(f.attrs); // the checked encoder agrees
    expect(enc.encode({ ...head, fingerprint: long }, refs)).not.toBeNull(); // within the budget
    expect(enc.encode(head, { a: 1, b: FP, c: [FP] })?.attrs).toBe(
      `{"a":1,"b":"${FP}","c":["${FP}"]}`,
    );
  });

  it('a getter is read once, so the text and the blob agree', () => {
    let n = 0;
    const attrs = {
      get ttlMs() {
        n += 1;
        return n;
      },
    };
    const head: RecordHead = {
      seq: 1,
      time: T,
      source: 'redis',
      type: 'token.written',
      kind: null,
      fingerprint: null,
    };
    const got = new CompactEncoder().encode(head, attrs);
    expect(got?.attrs).toBe('{"ttlMs":1}');
    expect(
      decodeColumns({
        ...head,
        source: null,
        type: null,
        kind: null,
        fingerprint: null,
        attrs: got!.blob,
      }).attrs,
    ).toBe('{"ttlMs":1}');
  });

  it('the sampled check catches a codec that disagrees with itself, then checks every record', () => {
    const enc = new CompactEncoder();
    const head: RecordHead = {
      seq: 1,
      time: T,
      source: 'redis',
      type: 'token.written',
      kind: null,
      fingerprint: null,
    };
    const words = WORDS as string[];
    const i = words.indexOf('redis');
    expect(enc.encode(head, { a: 1 })).not.toBeNull(); // the first record is checked: fine
    try {
      // A decoder that reads the source word differently from how the encoder wrote it.
      words[i] = 'redis?';
      // Between samples such a record would go through: the check is a sample, the property
      // test above is the proof.
      for (let k = 2; k < CHECK_EVERY + 1; k++)
        expect(enc.encode({ ...head, seq: k }, { a: k })).not.toBeNull();
      expect(enc.encode({ ...head, seq: 65 }, { a: 65 })).toBeNull();
      expect(enc.mismatches).toBe(1);
      // From now on every record is checked.
      expect(enc.encode({ ...head, seq: 66 }, { a: 66 })).toBeNull();
      expect(enc.mismatches).toBe(2);
    } finally {
      words[i] = 'redis';
    }
    expect(enc.encode({ ...head, seq: 67 }, { a: 67 })).not.toBeNull();
  });
});

describe('RowWriter.uncheckedFrom', () => {
  it('names the first compact record since the last passed check, and forgets it at the next', () => {
    const rows = new RowWriter(undefined);
    const token = (i: number): AuditInput => ({
      time: 1,
      source: 'redis',
      type: 'token.written',
      kind: 'access_token',
      attrs: { i },
    });
    rows.begin(0, Buffer.alloc(32), 1);
    expect(rows.uncheckedFrom).toBeUndefined();
    rows.add(token(0)); // the first compact record is checked: it passes
    expect(rows.uncheckedFrom).toBeUndefined();
    rows.add(token(1));
    rows.add(token(2));
    expect(rows.uncheckedFrom).toBe(2);
    // A record kept in text form (a lone surrogate) is not a compact record in doubt.
    const fresh = new RowWriter(undefined);
    fresh.begin(0, Buffer.alloc(32), 1);
    fresh.add(token(0));
    fresh.add({ ...token(1), attrs: { s: '\ud800' } });
    expect(fresh.uncheckedFrom).toBeUndefined();
    for (let i = 3; i < CHECK_EVERY; i++) rows.add(token(i));
    expect(rows.uncheckedFrom).toBe(2);
    rows.add(token(CHECK_EVERY)); // the next sampled check, CHECK_EVERY records after the first
    expect(rows.uncheckedFrom).toBeUndefined();
    rows.end();
  });
});
