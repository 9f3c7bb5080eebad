import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TokenTable, tokenKey } from '../../src/keyspace/token-table.js';

const PREFIX = 'hmac-sha256:k1:';
const fp = (n: number) => `${PREFIX}${createHash('sha256').update(`t${n}`).digest('hex')}`;

describe('TokenTable (digest table over slot columns)', () => {
  it('keeps every fingerprint findable under random churn, freed slots reused', () => {
    const t = new TokenTable(PREFIX);
    const model = new Map<string, number>();
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 60_000; i++) {
      const f = fp(rand(5000));
      if (model.has(f) && rand(3) === 0) {
        expect(t.delete(f)?.written).toBe(model.get(f));
        model.delete(f);
      } else {
        t.set(f, 1_000 + i, i, i % 3);
        model.set(f, i);
      }
    }
    expect(t.size).toBe(model.size);
    for (let n = 0; n < 5000; n++) expect(t.get(fp(n))?.written).toBe(model.get(fp(n)));
    expect(new Map([...t.entries()].map(([f, e]) => [f, e.written]))).toEqual(model);
    // Keys from nodes() are the keys the *Key methods take.
    for (const [key, node] of t.nodes()) expect(t.getKey(key)?.node).toBe(node);
  });

  it('keeps odd fingerprints whole next to standard ones', () => {
    const t = new TokenTable(PREFIX);
    const odd = ['plain', 'hmac-sha256:k2:' + 'ab'.repeat(32), `${PREFIX}${'AB'.repeat(32)}`, ''];
    for (const [i, f] of odd.entries()) t.set(f, null, i, 0);
    t.set(fp(1), 5, 9, 1);
    expect(t.size).toBe(odd.length + 1);
    for (const [i, f] of odd.entries())
      expect(t.get(f)).toEqual({ due: null, written: i, node: 0 });
    expect(t.get(fp(1))).toEqual({ due: 5, written: 9, node: 1 });
    expect([...t.entries()].map(([f]) => f).sort()).toEqual([...odd, fp(1)].sort());
    expect(t.delete('plain')?.written).toBe(0);
    expect(t.get('plain')).toBeUndefined();
    expect(t.size).toBe(odd.length);
  });
});

const HEX = 'ab'.repeat(32);

/** The key as the table defines it: 32 digest bytes for a lowercase-hex fingerprint under the prefix. */
function reference(prefix: string, fp: string): string {
  const hex = fp.slice(prefix.length);
  return fp.startsWith(prefix) && /^[0-9a-f]{64}$/.test(hex)
    ? Buffer.from(hex, 'hex').toString('latin1')
    : `\u0100${fp}`;
}

describe('tokenKey', () => {
  it('keys standard fingerprints by their digest bytes and anything else whole', () => {
    const cases = [
      `${PREFIX}${HEX}`,
      `${PREFIX}${'0123456789abcdef'.repeat(4)}`,
      `${PREFIX}${HEX.slice(0, -1)}A`,
      `${PREFIX}${HEX.slice(0, -1)}g`,
      `${PREFIX}${HEX.slice(0, -1)}\u0130`,
      `${PREFIX}${HEX.slice(0, 10)}:${HEX.slice(11)}`,
      `${PREFIX}${HEX}0`,
      `${PREFIX}${HEX.slice(1)}`,
      `hmac-sha256:k2:${HEX}`,
      'not-a-fingerprint',
      '',
    ];
    for (const fp of cases) expect(tokenKey(PREFIX, fp), fp).toBe(reference(PREFIX, fp));
    expect(tokenKey(PREFIX, `${PREFIX}${HEX}`)).toHaveLength(32);
  });

  it('a table returns every fingerprint it stored, whichever way it keyed it', () => {
    const t = new TokenTable(PREFIX);
    const fps = [`${PREFIX}${HEX}`, `${PREFIX}${HEX.toUpperCase()}`, 'other:fp'];
    fps.forEach((fp, i) => t.set(fp, 1000 + i, i, 0));
    for (const [i, fp] of fps.entries()) {
      expect(t.get(fp)).toEqual({ due: 1000 + i, written: i, node: 0 });
      expect(t.fingerprintOf(t.keyOf(fp))).toBe(fp);
    }
  });
});
