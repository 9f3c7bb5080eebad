import { describe, expect, it } from 'vitest';
import type { KindRule } from '../../src/correlate/options.js';
import type { TokenEventType } from '../../src/domain/token-event.js';
import { KINDS, T0, World, access, fp, session } from './helpers.js';

/**
 * `token.present` (a token a baseline SCAN found, its write not observed) and the TTLs that
 * reconciliation now records: the rules must cover tokens that predate tokenwatch or were
 * written while it was blind (issue #15 items 1, 4, 5).
 */
describe('tokens found by SCAN (present, appeared) are evidence for the rules', () => {
  const cases: {
    name: string;
    type: TokenEventType;
    dueAt: number | null;
    opens: string[];
  }[] = [
    { name: 'present without TTL', type: 'present', dueAt: null, opens: ['token_without_expiry'] },
    {
      name: 'appeared without TTL',
      type: 'appeared',
      dueAt: null,
      opens: ['token_without_expiry'],
    },
    { name: 'present within policy', type: 'present', dueAt: T0 + 600_000, opens: [] },
    {
      name: 'present above policy',
      type: 'present',
      dueAt: T0 + 7_200_000,
      opens: ['ttl_exceeds_policy'],
    },
    {
      name: 'appeared above policy',
      type: 'appeared',
      dueAt: T0 + 7_200_000,
      opens: ['ttl_exceeds_policy'],
    },
  ];
  for (const c of cases) {
    it(`${c.name} opens ${c.opens.join(', ') || 'nothing'}`, () => {
      const w = new World();
      const ttlMs = c.dueAt === null ? null : c.dueAt - T0;
      const out = w.token(c.type, access('pre'), { dueAt: c.dueAt, ttlMs, redisEvent: 'scan' });
      expect(out.map((f) => [f.rule, f.state])).toEqual(c.opens.map((r) => [r, 'opened']));
      // Leaving Redis resolves whatever it opened.
      const gone = w.token('deleted', access('pre'));
      expect(gone.map((f) => [f.rule, f.state])).toEqual(c.opens.map((r) => [r, 'resolved']));
    });
  }

  it('a TTL fixed while blind (ttl_changed from reconciliation, with its due) resolves', () => {
    const w = new World();
    const [opened] = w.token('written', access('t'), { dueAt: T0 + 7_200_000, ttlMs: 7_200_000 });
    expect(opened).toMatchObject({ rule: 'ttl_exceeds_policy', state: 'opened' });
    const [resolved] = w.token('ttl_changed', access('t'), {
      dueAt: T0 + 60_000,
      ttlMs: 60_000,
      redisEvent: 'reconcile',
    });
    expect(resolved).toMatchObject({ id: opened?.id, state: 'resolved' });
  });

  it('a pre-existing token named by a revocation is tracked and breaches the SLA', () => {
    const w = new World();
    w.token('present', session('pre-s'), { dueAt: T0 + 600_000, ttlMs: 600_000 });
    w.provider('session_revoked', { sessionId: fp('pre-s'), subject: 'alice' });
    const opened = w.advance(5000).filter((f) => f.rule === 'revocation_not_propagated');
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatchObject({ state: 'opened', attributes: { tokensStillLive: 1 } });
    const [resolved] = w.token('deleted', session('pre-s'));
    expect(resolved).toMatchObject({ id: opened[0]?.id, state: 'resolved' });
  });

  it('a rewrite of a present token is not an issuance to attribute', () => {
    const required: KindRule[] = KINDS.map((k) =>
      k.kind === 'access_token' ? { ...k, requireProviderEvent: true } : k,
    );
    const rewritten = new World({ kinds: required });
    rewritten.token('present', access('pre'), { dueAt: T0 + 600_000, ttlMs: 600_000 });
    rewritten.token('written', access('pre'), { rewrite: true });
    expect(rewritten.advance(60_000).filter((f) => f.rule === 'unattributed_token')).toEqual([]);
    // The control: the same write of a token nobody knew is checked.
    const fresh = new World({ kinds: required });
    fresh.token('written', access('new'));
    expect(fresh.advance(60_000).filter((f) => f.rule === 'unattributed_token')).toHaveLength(1);
  });

  it('a baseline of many present tokens is not churn', () => {
    const w = new World({ churn: { warmupBuckets: 2, minRatePerSecond: 5 } });
    for (let s = 0; s < 5; s++) {
      w.token('written', access(`calm${s}`));
      w.advance(1000);
    }
    for (let i = 0; i < 500; i++) w.token('present', access(`pre${i}`));
    const churn = w.advance(5000).filter((f) => f.rule === 'churn_spike');
    expect(churn).toEqual([]);
  });
});
