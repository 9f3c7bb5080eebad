import { describe, expect, it } from 'vitest';
import { T0, World, access, rules, session } from './helpers.js';

describe('tokens_evicted', () => {
  it('opens one finding per burst, counts it, and resolves after the quiet gap', () => {
    const w = new World();
    const [opened] = w.token('evicted', session('s1'));
    expect(opened).toMatchObject({
      id: `tokens_evicted:session:${T0}`,
      rule: 'tokens_evicted',
      severity: 'high',
      criteria: ['A1.2'],
      kind: 'session',
      evidenceSeqs: [1],
    });
    for (let i = 2; i <= 5; i++) {
      w.advance(2000);
      expect(w.token('evicted', session(`s${i}`))).toEqual([]);
    }
    expect(w.c.openFindings()[0]?.attributes).toMatchObject({ evicted: 5, burstSeconds: 8 });
    expect(w.advance(9000)).toEqual([]);
    const [resolved] = w.advance(1000);
    expect(resolved).toMatchObject({
      id: opened?.id,
      state: 'resolved',
      attributes: { evicted: 5, resolution: 'quiet' },
    });
    expect(resolved?.evidenceSeqs).toEqual([1, 2, 3, 4, 5]);

    w.advance(1000);
    const [next] = w.token('evicted', session('s9'));
    expect(next?.id).not.toBe(opened?.id);
  });

  it('keeps kinds apart and honours evictionBurstMinCount', () => {
    const w = new World({ evictionBurstMinCount: 3 });
    expect(w.token('evicted', session('s1'))).toEqual([]);
    expect(w.token('evicted', access('j1'))).toEqual([]);
    expect(w.token('evicted', session('s2'))).toEqual([]);
    expect(rules(w.token('evicted', session('s3')))).toEqual(['tokens_evicted:opened']);
    expect(w.c.openFindings().map((f) => f.kind)).toEqual(['session']);
  });

  it('closes a burst whose gap passed before tick ran and starts a new one', () => {
    const w = new World();
    w.token('evicted', session('s1'));
    w.clock.t += 15_000; // no tick in between
    expect(rules(w.token('evicted', session('s2')))).toEqual([
      'tokens_evicted:resolved',
      'tokens_evicted:opened',
    ]);
  });
});
