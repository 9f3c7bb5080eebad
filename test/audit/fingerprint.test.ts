import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Fingerprinter } from '../../src/audit/fingerprint.js';

const VALUES = [
  '',
  'a',
  'é😀',
  'lone\ud800surrogate',
  'x'.repeat(1365),
  'x'.repeat(1366), // past the scratch buffer as UTF-8: the createHmac path
  'é'.repeat(3000),
  'y'.repeat(4096), // latin1: exactly the scratch buffer
  'y'.repeat(4097), // latin1: the createHmac path
  String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i)),
];

function reference(key: Buffer, value: string | Buffer, encoding: 'utf8' | 'latin1'): string {
  const h = createHmac('sha256', key);
  return `hmac-sha256:k1:${(typeof value === 'string' ? h.update(value, encoding) : h.update(value)).digest('hex')}`;
}

describe('Fingerprinter', () => {
  it.each([16, 32, 64, 65, 200])(
    'equals RFC 2104 HMAC-SHA256 (node:crypto createHmac) with a %i-byte key',
    (length) => {
      const key = randomBytes(length);
      const f = new Fingerprinter([{ id: 'k1', key }]);
      for (const v of VALUES) {
        expect(f.of(v)).toBe(reference(key, v, 'utf8'));
        expect(f.of(Buffer.from(v))).toBe(reference(key, Buffer.from(v), 'utf8'));
        const latin1 = [...v].map((c) => (c.charCodeAt(0) > 255 ? '?' : c)).join('');
        expect(f.ofLatin1(latin1)).toBe(reference(key, latin1, 'latin1'));
      }
      // Repeated use: nothing of the previous message may leak into the next digest.
      expect(f.of('x'.repeat(500))).toBe(reference(key, 'x'.repeat(500), 'utf8'));
      expect(f.of('short')).toBe(reference(key, 'short', 'utf8'));
    },
  );

  it('digestLatin1 is the digest of ofLatin1, and fingerprintOfDigest turns it back', () => {
    const f = new Fingerprinter([{ id: 'k1', key: randomBytes(32) }]);
    for (const v of ['', 'oauth:access:abc', 'x'.repeat(5000)]) {
      const d = f.digestLatin1(v);
      expect(d).toHaveLength(32);
      expect(f.fingerprintOfDigest(d)).toBe(f.ofLatin1(v));
      expect(f.ofLatin1(v).startsWith(f.prefix)).toBe(true);
    }
  });

  it('matches() and all() agree with of()', () => {
    const f = new Fingerprinter([
      { id: 'new', key: randomBytes(32) },
      { id: 'old', key: randomBytes(32) },
    ]);
    const fp = f.of('token-value');
    expect(f.matches('token-value', fp)).toBe(true);
    expect(f.matches('other', fp)).toBe(false);
    expect(f.all('token-value')[0]?.fingerprint).toBe(fp);
  });
});
