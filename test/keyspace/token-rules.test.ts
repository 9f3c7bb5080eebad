import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Fingerprinter } from '../../src/audit/fingerprint.js';
import { tokenRuleSchema } from '../../src/config/schema.js';
import { TokenRules } from '../../src/keyspace/token-rules.js';

const rules = [
  { kind: 'access_token', key: 'oauth:access:{token}' },
  { kind: 'tenant_refresh', key: 'tenant:{tenant}:rt:{token}' },
  { kind: 'grant', key: 'grant:{sub}:{scope}' }, // no secret: the whole key identifies it
  { kind: 'odd', key: 'odd:{__proto__}:{toString}', secret: ['__proto__'] },
].map((r) => tokenRuleSchema.parse(r));

const KEYS = [
  'oauth:access:abc',
  `oauth:access:${'x'.repeat(5000)}`, // past the HMAC scratch buffer
  'tenant:acme:rt:secretRT',
  'grant:user42:read',
  'odd:proto-value:str',
  `oauth:access:${String.fromCharCode(0xe9, 0xff, 0x00)}`, // raw bytes as latin1
];

describe('TokenRules', () => {
  it.each([16, 100])(
    'identify() finds the kind and digest classify() fingerprints (%i-byte HMAC key)',
    (length) => {
      const f = new Fingerprinter([{ id: 'k1', key: randomBytes(length) }]);
      const t = new TokenRules(rules, f);
      for (const key of KEYS) {
        const c = t.classify(key);
        const i = t.identify(key);
        expect(c, key).toBeDefined();
        expect(i?.kind).toBe(c?.kind);
        expect(f.fingerprintOfDigest(i?.digest ?? '')).toBe(c?.fingerprint);
        // classify() carries the same digest (the inventory's key), and the fingerprint is the
        // one ofLatin1 makes of the same secret: carrying it changes no fingerprint.
        expect(c?.digest).toBe(i?.digest);
        expect(c?.digest).toHaveLength(32);
      }
      expect(t.classify('oauth:access:abc')?.fingerprint).toBe(f.ofLatin1('abc'));
      expect(t.classify('grant:user42:read')?.fingerprint).toBe(f.ofLatin1('grant:user42:read'));
      const second = t.classify('tenant:acme:rt:secretRT');
      expect(second?.fingerprint).toBe(f.ofLatin1('secretRT'));
      expect(second?.keyAttrs.token).toBe(second?.fingerprint);
      expect(t.identify('not-a-token')).toBeUndefined();
      expect(t.classify('not-a-token')).toBeUndefined();
    },
  );

  it('a placeholder named __proto__ is a placeholder like any other', () => {
    const f = new Fingerprinter([{ id: 'k1', key: randomBytes(32) }]);
    const c = new TokenRules(rules, f).classify('odd:proto-value:str');
    expect(c?.fingerprint).toBe(f.ofLatin1('proto-value'));
    expect(Object.entries(c?.keyAttrs ?? {})).toEqual([
      ['__proto__', f.ofLatin1('proto-value')],
      ['toString', 'str'],
    ]);
  });

  it('keyAttrs come in canonical key order and read nothing through a prototype', () => {
    const f = new Fingerprinter([{ id: 'k1', key: randomBytes(32) }]);
    const t = new TokenRules(
      [tokenRuleSchema.parse({ kind: 'rt', key: 'rt:{zeta}:{Beta}:{alpha}:{token}' })],
      f,
    );
    const c = t.classify('rt:z1:b2:a3:secret');
    // UTF-16 order ('B' < 'a'): the ledger's canonical encoder then sorts nothing.
    expect(Object.keys(c?.keyAttrs ?? {})).toEqual(['Beta', 'alpha', 'token', 'zeta']);
    expect(c?.keyAttrs).toEqual({
      Beta: 'b2',
      alpha: 'a3',
      token: f.ofLatin1('secret'),
      zeta: 'z1',
    });
    const attrs = c?.keyAttrs as Record<string, unknown>;
    expect(['constructor', 'toString', 'hasOwnProperty'].map((n) => attrs[n])).toEqual([
      undefined,
      undefined,
      undefined,
    ]);
    // The values array is reused: a second key does not change the first key's attributes.
    t.classify('rt:z9:b9:a9:other');
    expect(c?.keyAttrs.zeta).toBe('z1');
  });
});
