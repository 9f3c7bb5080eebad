import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalRecord, type CanonicalFields } from '../../src/audit/canonical.js';
import {
  RowFormatError,
  codecFor,
  parseCanonical,
  splitCsv,
} from '../../src/compliance/row-codec.js';

const ctx = { ledgerId: 'ledger-1', productVersion: '9.9.9' };
const record = ({
  a: given,
  ...over
}: Partial<CanonicalFields> & { a?: Record<string, unknown> } = {}) => {
  const a = given ?? { node: 'redis-0', n: 1e21, text: 'é\u2028"\\,\nline' };
  const r: CanonicalFields = {
    seq: 7,
    time: 1767225600000,
    source: 'redis',
    type: 'token.written',
    kind: 'access_token',
    fingerprint: `hmac-sha256:k1:${'ab'.repeat(32)}`,
    attrs: canonicalJson(a),
    ...over,
  };
  return { r, a };
};

describe('row codecs: every field is determined by the canonical values', () => {
  it.each(['csv', 'jsonl', 'ocsf'] as const)(
    '%s rows decode to the canonical fields they were encoded from',
    (format) => {
      const codec = codecFor(format, ctx);
      for (const { r, a } of [
        record(),
        record({ kind: null, fingerprint: null }),
        record({ kind: '', a: {} }),
      ]) {
        const row = codec.encode(r, a, canonicalRecord(r));
        expect(row).not.toContain('\n');
        expect(codec.decode(row)).toEqual(r);
      }
    },
  );

  it('CSV keeps null (empty cell) apart from the empty string (""), and quotes every string', () => {
    const codec = codecFor('csv', ctx);
    const { r, a } = record({ kind: null, fingerprint: '' });
    const row = codec.encode(r, a, '');
    expect(row).toMatch(/^7,1767225600000,"2026-01-01T00:00:00.000Z","redis","token.written",,"",/);
    expect(splitCsv('1,"a,""b""",,""')).toEqual([
      { value: '1', quoted: false },
      { value: 'a,"b"', quoted: true },
      { value: '', quoted: false },
      { value: '', quoted: true },
    ]);
  });

  it('rejects rows whose fields disagree with their values', () => {
    const { r, a } = record();
    const csv = codecFor('csv', ctx);
    const csvRow = csv.encode(r, a, '');
    expect(() =>
      csv.decode(csvRow.replace('"2026-01-01T00:00:00.000Z"', '"2026-01-02T00:00:00.000Z"')),
    ).toThrow(RowFormatError);
    expect(() => csv.decode(csvRow.replace('7,', '07,'))).toThrow(RowFormatError);
    const jsonl = codecFor('jsonl', ctx);
    const jsonRow = jsonl.encode(r, a, '');
    expect(() => jsonl.decode(jsonRow.replace('"seq":7', '"seq":7,"extra":1'))).toThrow(
      RowFormatError,
    );
    expect(() => jsonl.decode(jsonRow.replace('{"seq"', '{ "seq"'))).toThrow(RowFormatError);
    const ocsf = codecFor('ocsf', ctx);
    const event = ocsf.encode(r, a, canonicalRecord(r));
    expect(() => ocsf.decode(event.replace('"class_uid":6003', '"class_uid":3002'))).toThrow(
      RowFormatError,
    );
    expect(() => codecFor('ocsf', { ...ctx, ledgerId: 'other' }).decode(event)).toThrow(
      RowFormatError,
    );
  });

  it('parseCanonical takes attrs verbatim but the rest must be canonical', () => {
    const { r } = record();
    const text = canonicalRecord(r);
    expect(parseCanonical(text).fields).toEqual(r);
    expect(() => parseCanonical(text.replace('[1,7,', '[1, 7,'))).toThrow(RowFormatError);
    expect(() => parseCanonical(text.replace('[1,', '[2,'))).toThrow(RowFormatError);
  });
});
