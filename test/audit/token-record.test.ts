import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical.js';
import {
  decodeTokens,
  encodeTokens,
  tokenInput,
  type TokenRecordFields,
} from '../../src/audit/token-record.js';

/** A small deterministic PRNG (mulberry32): the same records every run. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STRINGS = [
  '',
  'a',
  '\u0000',
  '\ud800',
  '"\\\n',
  'é',
  '\u{1F600}',
  'hmac-sha256:k1:' + 'ab'.repeat(32),
];
const NAMES = ['token', 'sub', '__proto__', '0', '10', 'client', 'jti', 'constructor'];
const NUMBERS = [0, -0, 1, -1.5, 1e21, Number.MAX_SAFE_INTEGER, 1_800_000_000_000.25, 5e-324];

function fields(r: () => number, i: number): TokenRecordFields {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const maybe = <T>(v: T): T | undefined => (r() < 0.5 ? v : undefined);
  const fingerprint =
    r() < 0.8 ? `hmac-sha256:k1:${i.toString(16).padStart(64, '0')}` : pick(STRINGS);
  const key = Object.create(r() < 0.5 ? null : Object.create(null)) as Record<string, string>;
  const names = r() < 0.7 ? ['sub', 'token'] : NAMES.filter(() => r() < 0.5);
  for (const n of names)
    Object.defineProperty(key, n, {
      value: r() < 0.5 ? fingerprint : pick(STRINGS),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return {
    time: pick(NUMBERS),
    type: r() < 0.8 ? 'token.written' : pick(['token.expired', 'token.renamed', '']),
    kind: r() < 0.8 ? 'access_token' : pick(STRINGS),
    fingerprint,
    backlog: maybe(true),
    db: r() < 0.9 ? 0 : pick(NUMBERS),
    dueAt: pick([null, undefined, pick(NUMBERS)]),
    epoch: maybe(pick(NUMBERS)),
    expiryLagMs: maybe(pick(NUMBERS)),
    key,
    lifetimeMs: maybe(pick(NUMBERS)),
    node: r() < 0.9 ? 'n:1' : pick(STRINGS),
    pos: maybe(pick(STRINGS)),
    redisEvent: r() < 0.8 ? 'set' : pick(STRINGS),
    renamedFrom: pick([undefined, null, { kind: pick(STRINGS), fingerprint: pick(STRINGS) }]),
    rewrite: maybe(true),
    ttlMs: pick([null, undefined, pick(NUMBERS)]),
    ttlUnknown: maybe(true),
  };
}

/** What a structured clone of `v` gives (the columns travel so to the writer thread). */
const cloned = <T>(v: T): T => structuredClone(v);

describe('token records as columns', () => {
  it('decode to records equal to the ones encoded, field by field and to the canonical byte', () => {
    const r = rng(19);
    for (let batch = 0; batch < 50; batch++) {
      const inputs = Array.from({ length: 1 + Math.floor(r() * 60) }, (_, i) =>
        tokenInput(fields(r, batch * 100 + i)),
      );
      const columns = encodeTokens(inputs);
      expect(columns).toBeDefined();
      const back = decodeTokens(cloned(columns!));
      expect(back).toHaveLength(inputs.length);
      for (const [i, want] of inputs.entries()) {
        const got = back[i]!;
        expect(canonicalJson(got)).toBe(canonicalJson(want));
        // Own fields, in order, values identical (undefined members included; -0 stays -0).
        expect(Object.entries(got.attrs)).toEqual(Object.entries(want.attrs));
        expect(Object.entries(got.attrs.key)).toEqual(Object.entries(want.attrs.key));
        expect([got.time, got.type, got.kind, got.fingerprint, got.source]).toEqual([
          want.time,
          want.type,
          want.kind,
          want.fingerprint,
          want.source,
        ]);
        expect(Object.is(got.attrs.expiryLagMs, want.attrs.expiryLagMs)).toBe(true);
      }
    }
  });

  it('a placeholder named __proto__ comes back an own key, not a prototype', () => {
    const key = Object.create(null) as Record<string, string>;
    key.__proto__ = 'p';
    key.token = 'fp';
    const [back] = decodeTokens(
      cloned(encodeTokens([tokenInput({ ...fields(rng(1), 1), key, fingerprint: 'fp' })])!),
    );
    expect(Object.getPrototypeOf(back!.attrs.key)).toBe(Object.prototype);
    expect(Object.keys(back!.attrs.key)).toEqual(['__proto__', 'token']);
    expect(back!.attrs.key.__proto__).toBe('p');
  });

  it('a key value a writer of the key chose to look like a fingerprint is stored as written', () => {
    // Anyone who can write the watched Redis chooses non-secret placeholder values: here the
    // record's own fingerprint text (copied from an export, a separate string) and another's.
    const fp = `hmac-sha256:k1:${'cd'.repeat(32)}`;
    const other = `hmac-sha256:k1:${'ef'.repeat(32)}`;
    const key = { sub: ['hmac-sha256:k1:', 'cd'.repeat(32)].join(''), tenant: other, token: fp };
    const made = tokenInput({ ...fields(rng(6), 6), fingerprint: fp, key });
    const [back] = decodeTokens(cloned(encodeTokens([made])!));
    expect(canonicalJson(back)).toBe(canonicalJson(made));
    expect(back!.attrs.key).toEqual({ sub: fp, tenant: other, token: fp });
  });

  it('refuses a key of more than 24 names (the batch then goes as copies)', () => {
    const key: Record<string, string> = {};
    for (let k = 0; k < 24; k++) key[`k${k}`] = 'v';
    const ok = tokenInput({ ...fields(rng(2), 2), key });
    expect(encodeTokens([ok])).toBeDefined();
    const over = tokenInput({ ...fields(rng(2), 2), key: { ...key, k24: 'v' } });
    expect(encodeTokens([ok, over])).toBeUndefined();
  });

  it('throws on columns that do not add up, never makes records of them', () => {
    const inputs = [0, 1, 2].map((i) => tokenInput(fields(rng(3 + i), i)));
    const c = encodeTokens(inputs)!;
    expect(() => decodeTokens({ ...c, n: 4 })).toThrow(/wrong size/);
    expect(() => decodeTokens({ ...c, lens: c.lens.subarray(0, 2) })).toThrow(/end early/);
    expect(() => decodeTokens({ ...c, text: `${c.text}x` })).toThrow(/more than their records/);
    const flagged = (word: number, value: number) => {
      const flags = Uint32Array.from(c.flags);
      flags[word] = value;
      return { ...c, flags };
    };
    expect(() => decodeTokens(flagged(0, c.flags[0]! | (1 << 25)))).toThrow(/flags/); // unknown bit
    expect(() => decodeTokens(flagged(0, c.flags[0]! | 0b11))).toThrow(/flags/); // due null and a number
    expect(() => decodeTokens(flagged(0, c.flags[0]! | 0b1100))).toThrow(/flags/); // ttl both
    expect(() => decodeTokens(flagged(0, c.flags[0]! | (0b11 << 10)))).toThrow(/flags/); // renamed both
    expect(() => decodeTokens(flagged(1, 25))).toThrow(/flags/); // 25 key names
    const count = c.flags[1]! & 0xff;
    expect(() => decodeTokens(flagged(1, count | (1 << (8 + count))))).toThrow(/flags/); // a value past the key
  });

  it("reads a key's own fields only, as canonical JSON does; a record it cannot read goes as copies", () => {
    const key = Object.create({ inherited: 'yes' }) as Record<string, string>;
    key.token = 'fp';
    const rec = tokenInput({ ...fields(rng(4), 4), key, fingerprint: 'fp' });
    const [back] = decodeTokens(cloned(encodeTokens([rec])!));
    expect(canonicalJson(back)).toBe(canonicalJson(rec));
    expect(Object.keys(back!.attrs.key)).toEqual(['token']);
    // A field that throws when read (no record of the recorder's does): undefined, not a throw.
    const bad = tokenInput(fields(rng(5), 5));
    Object.defineProperty(bad.attrs, 'key', {
      get() {
        throw new RangeError('Invalid string length');
      },
    });
    expect(encodeTokens([rec, bad])).toBeUndefined();
  });
});
