import { describe, expect, it } from 'vitest';
import { RefusalLimiter, type RefusalSummary } from '../../src/http/refusal-limiter.js';

function limiter(maxSources = 100) {
  let now = 1_000;
  const summaries: RefusalSummary[] = [];
  const l = new RefusalLimiter({
    perWindow: 2,
    windowMs: 1000,
    maxSources,
    now: () => now,
    onSummary: (s) => summaries.push(s),
  });
  return { l, summaries, advance: (ms: number) => (now += ms) };
}

describe('RefusalLimiter', () => {
  it('admits perWindow refusals per source, counts the rest, states them when the window ends', () => {
    const { l, summaries, advance } = limiter();
    expect([1, 2, 3, 4].map(() => l.admit('a', 'unauthenticated'))).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(l.admit('a', 'forbidden')).toBe(false);
    expect(l.admit('b', 'unauthenticated')).toBe(true);
    l.sweep();
    expect(summaries).toEqual([]);
    advance(1000);
    l.sweep();
    expect(summaries).toEqual([
      {
        source: 'a',
        from: 1000,
        to: 2000,
        recorded: 2,
        suppressed: 3,
        outcomes: { unauthenticated: 2, forbidden: 1 },
      },
    ]);
    // b suppressed nothing: no summary; both start afresh.
    expect(l.admit('a', 'unauthenticated')).toBe(true);
  });

  it('sources beyond maxSources share one bucket; flush states everything counted', () => {
    const { l, summaries } = limiter(1);
    expect(l.admit('a', 'x')).toBe(true);
    expect(['b', 'c', 'd'].map((s) => l.admit(s, 'x'))).toEqual([true, true, false]);
    l.flush();
    expect(summaries).toEqual([
      expect.objectContaining({ source: '*', recorded: 2, suppressed: 1 }),
    ]);
  });

  it('bounds what many sources together record per window (a flood from many addresses)', () => {
    let now = 1_000;
    const summaries: RefusalSummary[] = [];
    const l = new RefusalLimiter({
      perWindow: 20,
      windowMs: 60_000,
      maxSources: 10_000,
      total: 200,
      now: () => now,
      onSummary: (s) => summaries.push(s),
    });
    let recorded = 0;
    let refused = 0;
    for (let src = 0; src < 250; src++) {
      for (let i = 0; i < 40; i++) {
        refused += 1;
        if (l.admit(`127.0.2.${src}`, 'unauthenticated')) recorded += 1;
      }
    }
    expect(recorded).toBe(200);
    now += 60_000;
    l.sweep();
    // Every refusal is stated: one by one, in a source's own summary, or in the shared one.
    const suppressed = summaries.reduce((n, s) => n + s.suppressed, 0);
    expect(recorded + suppressed).toBe(refused);
    // 10 sources spent their own budget (10 summaries), everyone else shares `*`.
    expect(summaries).toHaveLength(11);
    expect(summaries.find((s) => s.source === '*')?.suppressed).toBe(refused - 200 - 10 * 20);
    // The next window has a fresh budget.
    expect(l.admit('127.0.9.9', 'unauthenticated')).toBe(true);
  });
});
