import { describe, expect, it } from 'vitest';
import { T0, World, fp, refresh, rules } from './helpers.js';

describe('refresh_reuse_detected', () => {
  it('opens immediately and resolves once the family has left Redis and the SLA has run', () => {
    const w = new World();
    w.token('written', refresh('r1', 's1')); // seq 1
    const [opened, ...rest] = w.provider('refresh_reuse_detected', {
      tokenIds: [fp('r1')],
      subject: 'alice',
    }); // seq 2
    expect(rest).toEqual([]);
    expect(opened).toMatchObject({
      id: `refresh_reuse_detected:okta:evt-1:${T0}`,
      state: 'opened',
      severity: 'critical',
      criteria: ['CC7.2'],
      subject: 'alice',
      evidenceSeqs: [2, 1],
      attributes: { tokensStillLive: 1, slaSeconds: 5 },
    });
    w.advance(1000);
    expect(w.token('deleted', refresh('r1', 's1'))).toEqual([]); // kept open until the SLA has run
    const [resolved] = w.advance(4000);
    expect(resolved).toMatchObject({
      id: opened?.id,
      state: 'resolved',
      at: T0 + 5000,
      attributes: { resolution: 'propagated', latencySeconds: 1, slaMet: true },
    });
    expect(w.c.drainObservations().revocations).toMatchObject([
      { eventType: 'refresh_reuse_detected', latencySeconds: 1, metSla: true },
    ]);
  });

  it('keeps the finding open past the SLA until the last family token leaves', () => {
    const w = new World();
    w.token('written', refresh('r1', 's1'));
    w.provider('refresh_reuse_detected', { tokenIds: [fp('r1')] });
    expect(w.advance(20_000)).toEqual([]);
    expect(w.c.openFindings()[0]?.attributes).toMatchObject({ slaMet: false, tokensStillLive: 1 });
    expect(w.token('deleted', refresh('r1', 's1'))[0]?.attributes).toMatchObject({
      latencySeconds: 20,
      slaMet: false,
    });
  });

  it('is seen by the auditor even when no family token was cached', () => {
    const w = new World();
    expect(rules(w.provider('refresh_reuse_detected', { tokenIds: [fp('r9')] }))).toEqual([
      'refresh_reuse_detected:opened',
    ]);
    const [resolved] = w.advance(5000);
    expect(resolved?.attributes.resolution).toBe('no_live_tokens');
    expect(w.c.drainObservations().revocations).toEqual([]);
  });

  it('reaches the whole rotation family, including family tokens written after the detection', () => {
    const w = new World();
    // Legit client rotated r1 -> r2; an attacker replays the stolen r1.
    w.provider('token_refreshed', { rotation: { previous: [fp('r1')], next: [fp('r2')] } });
    w.token('written', refresh('r2', 's1'));
    w.provider('refresh_reuse_detected', { tokenIds: [fp('r1')] });
    expect(w.c.openFindings()[0]?.attributes.tokensStillLive).toBe(1);
    w.advance(3000);
    // Another family token lands in Redis after the family was revoked: it must go too.
    expect(rules(w.token('written', refresh('r2', 's2')))).toEqual([
      'write_after_revocation:opened',
    ]);
    expect(
      w.c.openFindings().find((f) => f.rule === 'refresh_reuse_detected')?.attributes
        .tokensStillLive,
    ).toBe(2);
    w.token('deleted', refresh('r2', 's1'));
    w.advance(5000);
    expect(rules(w.token('deleted', refresh('r2', 's2'))).sort()).toEqual([
      'refresh_reuse_detected:resolved',
      'write_after_revocation:resolved',
    ]);
  });

  it('counts a reuse detection whatever its outcome', () => {
    const w = new World();
    expect(
      rules(w.provider('refresh_reuse_detected', { outcome: 'failure', tokenIds: [fp('r1')] })),
    ).toEqual(['refresh_reuse_detected:opened']);
  });
});
