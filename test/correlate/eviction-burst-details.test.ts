import { describe, expect, it } from 'vitest';
import { T0, World, rules, session } from './helpers.js';

describe('tokens_evicted: what it records and where a burst ends', () => {
  it('says how many evictions, over how long, in its summaries and attributes', () => {
    const w = new World({ evictionBurstMinCount: 2 });
    expect(w.token('evicted', session('s1'))).toEqual([]);
    w.clock.t += 1500;
    const [opened] = w.token('evicted', session('s2'));
    expect(opened).toMatchObject({
      summary: 'Redis is evicting session tokens under memory pressure (2 evictions so far).',
      evidenceSeqs: [1, 2],
      attributes: {
        evicted: 2,
        firstEvictionAt: T0,
        lastEvictionAt: T0 + 1500,
        burstSeconds: 1.5,
        gapSeconds: 10,
      },
    });
    w.clock.t += 500;
    w.token('evicted', session('s3'));
    expect(w.c.openFindings()[0]).toMatchObject({
      evidenceSeqs: [1, 2, 3],
      attributes: { evicted: 3, lastEvictionAt: T0 + 2000, burstSeconds: 2 },
    });
    const [resolved] = w.advance(10_000);
    expect(resolved).toMatchObject({
      summary: 'Eviction burst of session tokens ended: 3 tokens evicted over 2 s.',
      attributes: { resolution: 'quiet', evicted: 3 },
    });
  });

  it('one eviction: singular words', () => {
    const w = new World();
    const [opened] = w.token('evicted', session('s1'));
    expect(opened?.summary).toBe(
      'Redis is evicting session tokens under memory pressure (1 eviction so far).',
    );
    const [resolved] = w.advance(10_000);
    expect(resolved?.summary).toBe(
      'Eviction burst of session tokens ended: 1 token evicted over 0 s.',
    );
  });

  it('ends a burst exactly one gap after its last eviction, not before', () => {
    const w = new World();
    w.token('evicted', session('s1'));
    w.clock.t = T0 + 9999;
    expect(w.tick()).toEqual([]);
    w.clock.t = T0 + 10_000;
    expect(rules(w.tick())).toEqual(['tokens_evicted:resolved']);
    // An eviction exactly one gap after the last starts a new burst.
    const v = new World();
    v.token('evicted', session('s1'));
    v.clock.t = T0 + 9999;
    expect(v.token('evicted', session('s2'))).toEqual([]);
    v.clock.t = T0 + 9999 + 10_000;
    expect(rules(v.token('evicted', session('s3')))).toEqual([
      'tokens_evicted:resolved',
      'tokens_evicted:opened',
    ]);
  });

  it('an eviction reported late does not move the burst’s last eviction back', () => {
    const w = new World();
    w.clock.t = T0 + 5000;
    w.token('evicted', session('s1'));
    w.token('evicted', session('s2'), { observedAt: T0 + 1000 });
    expect(w.c.openFindings()[0]?.attributes).toMatchObject({
      evicted: 2,
      firstEvictionAt: T0 + 5000,
      lastEvictionAt: T0 + 5000,
    });
  });

  it('caps evidence gathered before the finding opens, and tries to open only once', () => {
    const w = new World({
      evictionBurstMinCount: 5,
      limits: { maxEvidenceSeqs: 2, maxOpenFindingsPerRule: 1 },
    });
    const other = { kind: 'access_token', fingerprint: session('j').fingerprint, keyAttrs: {} };
    for (let i = 0; i < 5; i++) w.token('evicted', other);
    // The rule is at its cap: the session burst's open is refused, once.
    for (let i = 0; i < 7; i++) expect(w.token('evicted', session(`s${i}`))).toEqual([]);
    expect(w.c.snapshot().evictions[1]).toMatchObject({
      kind: 'session',
      count: 7,
      seqs: [6, 7],
      attempted: true,
      findingId: undefined,
    });
    expect(w.c.stats().suppressedFindings).toBe(1);
  });

  it('a burst pushed out by the cap on kinds is resolved', () => {
    const w = new World({ limits: { maxKinds: 1 } });
    const [opened] = w.token('evicted', session('s1'));
    const out = w.token('evicted', {
      kind: 'access_token',
      fingerprint: session('j1').fingerprint,
      keyAttrs: {},
    });
    expect(out.map((f) => [f.id === opened?.id, f.state])).toEqual([
      [true, 'resolved'],
      [false, 'opened'],
    ]);
    expect(w.c.stats().evictions.evictionKinds).toBe(1);
  });

  it('forgets a burst once it ended, including one whose open was refused', () => {
    const w = new World({ rules: { tokens_evicted: { enabled: false } } });
    w.token('evicted', session('s1'));
    expect(w.c.stats().sizes.evictionKinds).toBe(1);
    expect(w.advance(10_000)).toEqual([]);
    expect(w.c.stats().sizes.evictionKinds).toBe(0);
  });
});
