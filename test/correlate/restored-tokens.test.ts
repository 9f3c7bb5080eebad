import { describe, expect, it } from 'vitest';
import type { TokenEvent } from '../../src/domain/token-event.js';
import { tokenIdentity } from '../../src/correlate/join-keys.js';
import { RestoredTokens } from '../../src/correlate/restored-tokens.js';

describe('RestoredTokens', () => {
  const ev = (fingerprint: string, over: Partial<TokenEvent> = {}): TokenEvent =>
    ({ node: 'n1', db: 2, kind: 'k', fingerprint, ...over }) as TokenEvent;

  it('splits identities back into their parts, and ignores what is not one', () => {
    const r = new RestoredTokens();
    r.add(tokenIdentity('n1', 2, 'k', 'f1'));
    r.add('not-an-identity');
    r.add('a\u0000b\u0000c');
    expect(r.size).toBe(1);
    expect(r.take('n1')).toEqual([
      { id: tokenIdentity('n1', 2, 'k', 'f1'), node: 'n1', db: 2, kind: 'k', fingerprint: 'f1' },
    ]);
    expect(r.size).toBe(0);
  });

  it('an event of the token, or a rename from it, confirms it; take is per node', () => {
    const r = new RestoredTokens();
    for (const f of ['f1', 'f2', 'f3']) r.add(tokenIdentity('n1', 2, 'k', f));
    r.add(tokenIdentity('n2', 0, 'k', 'f4'));
    r.seen(ev('f1'));
    r.seen(ev('new', { renamedFrom: { kind: 'k', fingerprint: 'f2' } }));
    r.seen(ev('f3', { db: 3 }));
    expect(r.take('n1').map((t) => t.fingerprint)).toEqual(['f3']);
    expect(r.take('n1')).toEqual([]);
    expect(r.take('n2').map((t) => t.db)).toEqual([0]);
  });
});
