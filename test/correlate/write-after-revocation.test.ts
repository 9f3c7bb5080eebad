import { describe, expect, it } from 'vitest';
import { T0, World, access, fp, refresh, rules, session } from './helpers.js';

describe('write_after_revocation', () => {
  it('opens when a revoked session gets a token written, and resolves when it leaves', () => {
    const w = new World();
    w.provider('session_revoked', { sessionId: fp('s1'), subject: 'alice' }); // seq 1
    w.advance(10_000);
    const [opened] = w.token('written', refresh('r1', 's1')); // seq 2
    expect(opened).toMatchObject({
      id: `write_after_revocation:${fp('s1')}:${T0 + 10_000}`,
      rule: 'write_after_revocation',
      severity: 'high',
      criteria: ['CC7.2'],
      kind: 'refresh_token',
      sessionId: fp('s1'),
      evidenceSeqs: [1, 2],
      attributes: { matchedBy: 'session', providerEventId: 'evt-1', secondsAfterRevocation: 10 },
    });
    expect(w.token('written', refresh('r1', 's1'))).toEqual([]); // one finding per token
    expect(rules(w.token('deleted', refresh('r1', 's1')))).toEqual([
      'write_after_revocation:resolved',
    ]);
  });

  it('tolerates a write within the grace period', () => {
    const w = new World({ revocationGraceSeconds: 2 });
    w.provider('session_revoked', { sessionId: fp('s1') });
    w.advance(2000);
    expect(w.token('written', session('s1'))).toEqual([]);
  });

  it('catches a write seen before the (late) revocation that precedes it', () => {
    const w = new World();
    w.advance(20_000);
    w.token('written', access('j1')); // T0+20s
    const late = w.providerEvent('token_revoked', {
      tokenIds: [fp('j1')],
      occurredAt: T0,
      observedAt: T0 + 21_000,
    });
    const out = w.c.onProviderEvent(late);
    expect(rules(out)).toEqual(['write_after_revocation:opened']);
    expect(out[0]?.attributes).toMatchObject({ matchedBy: 'token_id', secondsAfterRevocation: 20 });
    // A token first written after the revocation is not one the revocation had to remove.
    expect(w.advance(10_000)).toEqual([]);
  });

  it('flags any write for a disabled account but not re-login after a credential change', () => {
    const w = new World();
    w.provider('credential_changed', { subject: 'alice' });
    w.provider('account_disabled', { subject: 'bob' });
    w.advance(10_000);
    expect(w.token('written', access('j1', 'alice'))).toEqual([]);
    expect(rules(w.token('written', access('j2', 'bob')))).toEqual([
      'write_after_revocation:opened',
    ]);
  });

  it('forgets revocations after revocationMemorySeconds', () => {
    const w = new World({ revocationMemorySeconds: 60 });
    w.provider('session_revoked', { sessionId: fp('s1') });
    w.advance(61_000);
    expect(w.token('written', session('s1'))).toEqual([]);
    expect(w.c.stats().sizes.revokedSessions).toBe(0);
  });
});
