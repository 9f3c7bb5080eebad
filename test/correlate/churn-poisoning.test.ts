import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Finding } from '../../src/domain/finding.js';
import type { TokenEvent } from '../../src/domain/token-event.js';
import { FindingBook } from '../../src/correlate/finding-book.js';
import { resolveCorrelatorOptions } from '../../src/correlate/options.js';
import type { ChurnOptions } from '../../src/correlate/options.js';
import { ChurnSpikeRule } from '../../src/correlate/rules/churn-spike.js';
import { T0 } from './helpers.js';

interface Recording {
  kind: string;
  burstStarts: number[];
  burstSeconds: number;
  counts: number[];
}

/** Issue #16.1: per-second churn of one kind after a restart, with a burst inside the warm-up. */
const soak = JSON.parse(
  readFileSync(new URL('../fixtures/churn/soak-restart-refresh.json', import.meta.url), 'utf8'),
) as Recording;

/** The churn rule alone, on a fake clock: per second, `count` expirations, then a tick. */
class Detector {
  readonly rule: ChurnSpikeRule;
  readonly book: FindingBook;
  t: number;

  constructor(churn: ChurnOptions = {}, at = T0) {
    const opts = resolveCorrelatorOptions({ churn });
    this.book = new FindingBook(opts);
    this.rule = new ChurnSpikeRule(opts, this.book);
    this.t = at;
  }

  /** Feeds `counts` one second each; returns each finding with the index of its second. */
  feed(counts: readonly number[], extra: Partial<TokenEvent> = {}): { s: number; f: Finding }[] {
    const out: { s: number; f: Finding }[] = [];
    counts.forEach((n, s) => {
      for (let i = 0; i < n; i++) this.rule.record(event(this.t + (i % 1000), extra), undefined);
      this.t += 1000;
      for (const f of this.rule.tick(this.t)) out.push({ s, f });
    });
    return out;
  }
}

const event = (observedAt: number, extra: Partial<TokenEvent>): TokenEvent => ({
  type: 'expired',
  kind: soak.kind,
  fingerprint: 'hmac-sha256:k1:00',
  keyAttrs: {},
  node: 'redis-a:6379',
  db: 0,
  observedAt,
  redisEvent: 'expired',
  ...extra,
});

const steady = (seconds: number): number[] =>
  Array.from({ length: seconds }, (_, s) => 140 + ((s * 7) % 23) - 11);

/** Each burst after `from` opens exactly one finding within its ramp and resolves before the next. */
function expectEachBurstFiresAndResolves(
  found: { s: number; f: Finding }[],
  bursts: readonly number[],
): void {
  expect(found.map((x) => x.f.state)).toEqual(bursts.flatMap(() => ['opened', 'resolved']));
  bursts.forEach((start, i) => {
    const opened = found[2 * i];
    const resolved = found[2 * i + 1];
    expect(opened?.s).toBeGreaterThanOrEqual(start);
    expect(opened?.s).toBeLessThan(start + 4); // during the ramp, before the plateau
    expect(resolved?.f.id).toBe(opened?.f.id);
    expect(resolved?.s).toBeLessThan(bursts[i + 1] ?? Infinity);
  });
}

describe('churn_spike cannot be poisoned (issue #16.1 replay)', () => {
  it('fresh start: the warm-up burst is not learned; the bursts at +80, +140, +200 s each fire and resolve', () => {
    const d = new Detector();
    const found = d.feed(soak.counts);
    expectEachBurstFiresAndResolves(found, [80, 140, 200]);
  });

  it('restart with the baseline restored: even the burst inside the former warm-up fires', () => {
    const before = new Detector();
    expect(before.feed(steady(300))).toEqual([]);
    const saved = JSON.parse(JSON.stringify(before.rule.snapshot())) as unknown;
    const after = new Detector({}, before.t + 45_000);
    after.rule.restore(saved, 'churn');
    after.rule.resume(after.t);
    expectEachBurstFiresAndResolves(after.feed(soak.counts), soak.burstStarts);
  });

  it('the threshold after the replay is where the background puts it, not where the bursts would', () => {
    const d = new Detector();
    d.feed(soak.counts);
    const [st] = d.rule.snapshot();
    const window = st?.window ?? [];
    const sorted = [...window].sort((a, b) => a - b);
    const median = sorted[sorted.length >> 1] ?? 0;
    expect(median).toBeGreaterThan(120);
    expect(median).toBeLessThan(160);
    // What was learned of the bursts was clipped to the calm threshold of the time.
    expect(Math.max(...window)).toBeLessThan(300);
  });

  it('does not learn the downtime of a restart as silence', () => {
    const before = new Detector();
    before.feed(steady(120));
    const saved = JSON.parse(JSON.stringify(before.rule.snapshot())) as unknown;
    const after = new Detector({}, before.t + 600_000);
    after.rule.restore(saved, 'churn');
    after.rule.resume(after.t);
    expect(after.feed(steady(30))).toEqual([]);
    expect(after.rule.snapshot()[0]?.window).toHaveLength(150);
    expect(Math.min(...(after.rule.snapshot()[0]?.window ?? []))).toBeGreaterThan(100);
  });

  it('an open spike survives a restart and resolves after it under the same id', () => {
    const before = new Detector();
    before.feed(steady(120));
    const [opened] = before.feed([1400, 1400]);
    expect(opened?.f.state).toBe('opened');
    const saved = JSON.parse(JSON.stringify(before.rule.snapshot())) as unknown;
    const after = new Detector({}, before.t + 20_000);
    after.book.adopt(opened!.f);
    after.rule.restore(saved, 'churn');
    after.rule.resume(after.t);
    const found = after.feed(steady(12));
    expect(found.map((x) => [x.f.id, x.f.state])).toEqual([[opened?.f.id, 'resolved']]);
  });

  it('uncredited shortfall survives a snapshot, but the downtime of a restart is no shortfall', () => {
    const before = new Detector();
    before.feed(steady(120));
    before.feed([0]); // a stalled second, just before the snapshot
    const saved = JSON.parse(JSON.stringify(before.rule.snapshot())) as { shortfall: number[] }[];
    expect(saved[0]?.shortfall.at(-1)).toBeGreaterThan(100);
    // Restored where it left off (a replay from the snapshot): the late events are credited.
    const same = new Detector({}, before.t);
    same.rule.restore(saved, 'churn');
    expect(same.feed([280])).toEqual([]);
    // Restored after downtime: the seconds not observed are not a shortfall to credit.
    const after = new Detector({}, before.t + 30_000);
    after.rule.restore(saved, 'churn');
    after.rule.resume(after.t);
    expect(after.feed([280]).map((x) => x.f.state)).toEqual(['opened']);
  });

  it('expiry backlog and reconciliation results are not churn', () => {
    const d = new Detector();
    d.feed(steady(120));
    expect(d.feed([1400, 1400, 1400], { backlog: true })).toEqual([]);
    expect(d.feed([1400, 1400, 1400], { type: 'vanished', redisEvent: 'reconcile' })).toEqual([]);
    expect(d.feed([1400]).map((x) => x.f.state)).toEqual(['opened']);
  });
});
