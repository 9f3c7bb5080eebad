import { describe, expect, it } from 'vitest';
import { World, fp, refresh, rules } from './helpers.js';

const rotation = { previous: [fp('r1')], next: [fp('r2')] };

describe('rotation_incomplete', () => {
  it('opens when a rotated-out token is still live after the SLA and resolves when it leaves', () => {
    const w = new World();
    w.token('written', refresh('r1', 's1'));
    w.provider('token_refreshed', { rotation, subject: 'alice' });
    w.token('written', refresh('r2', 's2'));
    expect(w.advance(4000)).toEqual([]);
    const [opened] = w.advance(1000);
    expect(opened).toMatchObject({
      rule: 'rotation_incomplete',
      severity: 'medium',
      criteria: ['CC6.1'],
      kind: 'refresh_token',
      attributes: { tokensStillLive: 1, successorWritten: true },
    });
    expect(opened?.summary).toContain('dangling session');
    expect(rules(w.token('deleted', refresh('r1', 's1')))).toEqual([
      'rotation_incomplete:resolved',
    ]);
  });

  it('is quiet when the predecessor leaves within the SLA', () => {
    const w = new World();
    w.token('written', refresh('r1', 's1'));
    w.provider('token_refreshed', { rotation });
    w.advance(1000);
    w.token('deleted', refresh('r1', 's1'));
    expect(w.advance(10_000)).toEqual([]);
    expect(w.c.stats().sizes.pendingObligations).toBe(0);
  });

  it('with rotationRequireSuccessor, waits for the successor of a cached predecessor', () => {
    const w = new World({ rotationRequireSuccessor: true });
    w.token('written', refresh('r1', 's1'));
    w.provider('token_refreshed', { rotation });
    w.token('deleted', refresh('r1', 's1'));
    const [opened] = w.advance(5000);
    expect(opened).toMatchObject({
      rule: 'rotation_incomplete',
      attributes: { successorWritten: false, tokensStillLive: 0 },
    });
    expect(rules(w.token('written', refresh('r2', 's1')))).toEqual([
      'rotation_incomplete:resolved',
    ]);
  });

  it('expects nothing when the family is not cached at all', () => {
    const w = new World({ rotationRequireSuccessor: true });
    w.provider('token_refreshed', { rotation });
    expect(w.advance(10_000)).toEqual([]);
  });
});
