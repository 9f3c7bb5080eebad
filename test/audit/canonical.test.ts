import { describe, expect, it } from 'vitest';
import {
  ZERO_HASH,
  canonicalJson,
  canonicalRecord,
  chainHash,
  chainHashHex,
  leafHash,
  leafHashHex,
} from '../../src/audit/canonical.js';
import { mulberry32 } from '../helpers/mulberry32.js';

/** The v1 writer's canonicalJson, verbatim: the optimised one must not change a single byte. */
function referenceCanonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'bigint':
      return JSON.stringify(value.toString());
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(referenceCanonicalJson).join(',')}]`;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj)
        .filter((k) => obj[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${referenceCanonicalJson(obj[k])}`).join(',')}}`;
    }
    default:
      return 'null';
  }
}

const STRINGS = [
  '',
  'a',
  'é',
  '"',
  '\\',
  '\n',
  '\u0000',
  '\u2028',
  '😀',
  '\ud800',
  'Z',
  '10',
  '__proto__',
];
function randomValue(r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 3 ? 7 : 10));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return undefined;
    case 2:
      return r() < 0.5;
    case 3:
      return [0, -0, 1.5, -7, 1e21, 2 ** 53, Number.NaN, Infinity][Math.floor(r() * 8)];
    case 4:
      return STRINGS[Math.floor(r() * STRINGS.length)];
    case 5:
      return BigInt(Math.floor(r() * 1e6));
    case 6:
      return STRINGS.map((s) => s + String(Math.floor(r() * 9)))
        .join('')
        .slice(0, Math.floor(r() * 12));
    case 7:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(r() * 5); i > 0; i--) {
        o[STRINGS[Math.floor(r() * STRINGS.length)] + String(Math.floor(r() * 3))] = randomValue(
          r,
          depth + 1,
        );
      }
      return o;
    }
  }
}

describe('canonical encoding, format version 1', () => {
  // Golden vectors (also in docs/ledger-format.md). Computed with the v1 writer; they must never
  // change: every ledger ever written hashes to them.
  const genesis = {
    seq: 1,
    time: 1767225600000,
    source: 'system',
    type: 'ledger.genesis',
    kind: null,
    fingerprint: null,
    attrs: canonicalJson({
      ledgerId: '00000000-0000-4000-8000-000000000000',
      formatVersion: 1,
      hmacKeyIds: ['k1'],
    }),
  };
  const written = {
    seq: 2,
    time: 1767225600010,
    source: 'redis',
    type: 'token.written',
    kind: 'access_token',
    fingerprint: `hmac-sha256:k1:${'ab'.repeat(32)}`,
    attrs: canonicalJson({
      ttlMs: 3600000,
      node: 'redis-0',
      key: { token: 'x' },
      dueAt: 1767225603600,
      u: 'é\u2028"\\',
      n: null,
      skip: undefined,
      big: 1e21,
      neg: -0,
    }),
  };

  it('encodes records byte for byte as documented', () => {
    expect(canonicalRecord(genesis)).toBe(
      '[1,1,1767225600000,"system","ledger.genesis",null,null,{"formatVersion":1,"hmacKeyIds":["k1"],"ledgerId":"00000000-0000-4000-8000-000000000000"}]',
    );
    expect(canonicalRecord(written)).toBe(
      `[1,2,1767225600010,"redis","token.written","access_token","hmac-sha256:k1:${'ab'.repeat(32)}",{"big":1e+21,"dueAt":1767225603600,"key":{"token":"x"},"n":null,"neg":0,"node":"redis-0","ttlMs":3600000,"u":"é\u2028\\"\\\\"}]`,
    );
  });

  it('hashes leaves and chains to the golden values', () => {
    const l1 = leafHash(canonicalRecord(genesis));
    const l2 = leafHash(canonicalRecord(written));
    const c1 = chainHash(ZERO_HASH, l1);
    const c2 = chainHash(c1, l2);
    expect(l1.toString('hex')).toBe(
      'd3b3946452e4466f9e0f64becbd2e6924925b861b2e9c054ee2942e62be6ecab',
    );
    expect(l2.toString('hex')).toBe(
      '90e38acf7393b0be817fd3ff2e4e7ba734414f764810302c40fba6ebd5ff0826',
    );
    expect(c1.toString('hex')).toBe(
      '3adbed6a1f9f9fce8a55ca0c664acd8068eda9eb600d34ed4af33bcf502d4adf',
    );
    expect(c2.toString('hex')).toBe(
      '93528fa11d0cff2f1e49d9c7e3b1b8d75f32bed8645b8d505c53d200c9d534e7',
    );
  });

  it('hex helpers agree with the Buffer ones', () => {
    const canon = canonicalRecord(written);
    expect(leafHashHex(canon)).toBe(leafHash(canon).toString('hex'));
    const prev = leafHash('x');
    expect(chainHashHex(prev.toString('hex'), leafHashHex(canon))).toBe(
      chainHash(prev, leafHash(canon)).toString('hex'),
    );
  });

  it('canonicalJson is byte-identical to the v1 writer on 5 000 random values', () => {
    const r = mulberry32(42);
    for (let i = 0; i < 5000; i++) {
      const v = randomValue(r, 0);
      expect(canonicalJson(v)).toBe(referenceCanonicalJson(v));
    }
  });

  it('writes a sparse array hole as null (the v1 writer wrote invalid JSON there)', () => {
    // eslint-disable-next-line no-sparse-arrays
    expect(canonicalJson([1, , 3])).toBe('[1,null,3]');
  });
});
