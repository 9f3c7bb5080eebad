import { describe, expect, it } from 'vitest';
import { World, access, fp, rules } from './helpers.js';

/**
 * A token written just before its revocation whose keyspace notification reaches the
 * correlator after the provider's webhook (two connections, no common order): found by the
 * issue #15 ground-truth test, where such a revocation was measured by nothing.
 */
describe('a token seen within the grace after its revocation', () => {
  it('joins the revocation: its removal is measured against the SLA', () => {
    const w = new World();
    expect(w.provider('token_revoked', { tokenIds: [fp('j1')] })).toEqual([]); // seq 1
    w.clock.t += 50;
    expect(w.token('written', access('j1'))).toEqual([]); // seq 2, first seen 50 ms later
    w.clock.t += 200;
    expect(w.token('deleted', access('j1'))).toEqual([]);
    expect(w.c.drainObservations().revocations).toEqual([
      expect.objectContaining({ providerEventId: 'evt-1', latencySeconds: 0.25, metSla: true }),
    ]);
  });

  it('left in Redis, it breaches the SLA like any revoked token', () => {
    const w = new World({ revocationSlaSeconds: 3 });
    w.provider('token_revoked', { tokenIds: [fp('j1')] });
    w.clock.t += 100;
    w.token('written', access('j1'));
    const opened = w.advance(3000);
    expect(rules(opened)).toEqual(['revocation_not_propagated:opened']);
    expect(opened[0]).toMatchObject({ fingerprint: fp('j1'), evidenceSeqs: [1, 2] });
  });

  it('a token first seen after the grace is a new grant, not the revocation’s', () => {
    const w = new World({ revocationGraceSeconds: 2 });
    w.provider('token_revoked', { tokenIds: [fp('j1')] });
    w.advance(2000);
    w.clock.t += 1;
    w.token('written', access('j1'));
    expect(w.advance(10_000)).toEqual([]);
    w.token('deleted', access('j1'));
    expect(w.c.drainObservations().revocations).toEqual([]);
  });

  it('a revocation already measured is not measured twice by a late token', () => {
    const w = new World();
    w.token('written', access('j1'));
    w.provider('token_revoked', { tokenIds: [fp('j1')], subject: 'alice', clientId: 'web' });
    w.token('deleted', access('j1'));
    expect(w.c.drainObservations().revocations).toHaveLength(1);
    w.clock.t += 100;
    w.token('written', access('j1'));
    w.clock.t += 100;
    w.token('deleted', access('j1'));
    expect(w.c.drainObservations().revocations).toEqual([]);
  });
});
