import { describe, expect, it } from 'vitest';
import { TokenTable, tokenKey } from '../../src/keyspace/token-table.js';

const PREFIX = 'hmac-sha256:k1:';
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
