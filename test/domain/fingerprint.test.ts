import { describe, expect, it } from 'vitest';
import {
  FINGERPRINT_RE,
  fingerprintPrefixLength,
  hexDigestInto,
} from '../../src/domain/fingerprint.js';
import { mulberry32 } from '../helpers/mulberry32.js';

/** What the two functions accept together, and the digest bytes they read. */
function parse(s: string): Buffer | undefined {
  const cut = fingerprintPrefixLength(s);
  if (cut < 0) return undefined;
  const out = Buffer.alloc(32);
  return hexDigestInto(s, cut, out, 0) ? out : undefined;
}

const HEX = 'a'.repeat(64);
const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-';

describe('fingerprintPrefixLength + hexDigestInto', () => {
  it('read a standard fingerprint: its prefix length and its 32 digest bytes', () => {
    const digest = Buffer.from(Array.from({ length: 32 }, (_, i) => i * 8 + 3));
    const fp = `hmac-sha256:k1:${digest.toString('hex')}`;
    expect(fingerprintPrefixLength(fp)).toBe('hmac-sha256:k1:'.length);
    expect(parse(fp)).toEqual(digest);
    const into = Buffer.alloc(40, 0xee);
    expect(hexDigestInto(fp, 15, into, 5)).toBe(true);
    expect(into.subarray(5, 37)).toEqual(digest);
    expect(into[4]).toBe(0xee);
    expect(into[37]).toBe(0xee);
  });

  it.each([
    ['id of 1 and of 32 chars', `hmac-sha256:a:${HEX}`, true],
    ['', `hmac-sha256:${'Z'.repeat(32)}:${HEX}`, true],
    ['every id char', `hmac-sha256:${ID_CHARS.slice(0, 32)}:${HEX}`, true],
    ['', `hmac-sha256:${ID_CHARS.slice(32, 64)}:${HEX}`, true],
    ['', `hmac-sha256:${ID_CHARS.slice(64)}:${HEX}`, true],
    ['an empty id', `hmac-sha256::${HEX}`, false],
    ['an id of 33 chars', `hmac-sha256:${'a'.repeat(33)}:${HEX}`, false],
    ['a colon in the id', `hmac-sha256:a:b:${HEX}`, false],
    ['a char outside the id set', `hmac-sha256:a/b:${HEX}`, false],
    ['a non-ASCII id char', `hmac-sha256:\u00e9:${HEX}`, false],
    ['uppercase hex', `hmac-sha256:k1:${'A'.repeat(64)}`, false],
    ['63 hex chars', `hmac-sha256:k1:${'a'.repeat(63)}`, false],
    ['65 hex chars', `hmac-sha256:k1:${'a'.repeat(65)}`, false],
    ['another algorithm', `hmac-sha512:k1:${HEX}`, false],
    ['a char above 255 in the digest', `hmac-sha256:k1:${'a'.repeat(63)}\u0161`, false],
    ['a char that is hex mod 256', `hmac-sha256:k1:${'a'.repeat(63)}\u0130`, false],
    ['a trailing newline', `hmac-sha256:k1:${HEX}\n`, false],
    ['char 128 as a high digit', `hmac-sha256:k1:\u0080${'a'.repeat(63)}`, false],
    ['char 128 as a low digit', `hmac-sha256:k1:a\u0080${'a'.repeat(62)}`, false],
  ])('%s: %s -> %s', (_why, s, ok) => {
    expect(parse(s) !== undefined).toBe(ok);
    expect(FINGERPRINT_RE.test(s)).toBe(ok);
  });

  it('says -1 for a prefix that is not one, whatever follows', () => {
    for (const s of [
      `hmac-sha256::${HEX}`,
      `hmac-sha256:${'a'.repeat(33)}:${HEX}`,
      `hmac-sha256:a/b:${HEX}`,
      `hmac-sha256:k1;${HEX}`,
      `hmac-sha512:k1:${HEX}`,
      HEX,
      '',
    ]) {
      expect(fingerprintPrefixLength(s), JSON.stringify(s)).toBe(-1);
    }
  });

  it('reads no digest from a string that ends first', () => {
    const out = Buffer.alloc(32);
    expect(hexDigestInto('a'.repeat(63), 0, out, 0)).toBe(false);
    expect(hexDigestInto(`xx${HEX}`, 3, out, 0)).toBe(false);
    expect(hexDigestInto(`xx${HEX}`, 2, out, 0)).toBe(true);
  });

  it('accept exactly what FINGERPRINT_RE accepts, on mutated fingerprints', () => {
    const alphabet = `${ID_CHARS}:0123456789abcdefABCDEF\u00e9\u0130\u0161\n `;
    for (let seed = 1; seed <= 3000; seed++) {
      const r = mulberry32(seed);
      const pick = (s: string) => s[Math.floor(r() * s.length)] ?? '';
      const idLength = Math.floor(r() * 35);
      let s = `hmac-sha256:${Array.from({ length: idLength }, () => pick(ID_CHARS)).join('')}:`;
      s += Array.from({ length: 64 }, () => pick('0123456789abcdef')).join('');
      // A few edits: replace, insert or delete a char anywhere.
      const edits = Math.floor(r() * 3);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(r() * (s.length + 1));
        const op = r();
        if (op < 0.4) s = s.slice(0, at) + pick(alphabet) + s.slice(at + 1);
        else if (op < 0.7) s = s.slice(0, at) + pick(alphabet) + s.slice(at);
        else s = s.slice(0, at) + s.slice(at + 1);
      }
      const want = FINGERPRINT_RE.test(s);
      const got = parse(s);
      expect(got !== undefined, `seed ${seed}: ${JSON.stringify(s)}`).toBe(want);
      if (got) expect(got.toString('hex'), `seed ${seed}`).toBe(s.slice(-64));
    }
  });
});
