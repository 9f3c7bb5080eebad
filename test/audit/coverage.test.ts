import { describe, expect, it } from 'vitest';
import { assertCoverage, checkCoverage } from '../../src/audit/coverage.js';
import { afterCut, compareStreamPlace, parsePosition } from '../../src/audit/ownership-records.js';
import { verifyMerged } from '../../src/audit/verify-merged.js';
import { Fleet, T0, asMerged, forgeRecord, type InstanceFiles } from './instances.js';

/**
 * Two instances, node n0: A owns epoch 1, hands over to B (epoch 2), B dies, A takes over
 * (epoch 3, replaying from B's committed position), A is fenced (paused past its lease) and B
 * takes over (epoch 4). Node n1 is B's all along (epoch 1). Both ledgers go on to 40 s.
 */
function twoInstances(): Record<string, InstanceFiles> {
  return new Fleet()
    .start('A', 'B')
    .acquired('A', 1_000, 'n0', 1, null, null)
    .acquired('B', 1_500, 'n1', 1, null, null)
    .token('A', 2_000, 'n0', 1, '1.1.0.0')
    .token('B', 2_500, 'n1', 2, '1.1.0.0')
    .released('A', 10_000, 'n0', 1, '1.3.-1')
    .acquired('B', 10_050, 'n0', 2, [1, 'A'], '1.3.-1', 1)
    .token('B', 12_000, 'n0', 3, '2.1.0.0')
    .acquired('A', 20_000, 'n0', 3, [2, 'B'], '2.1.0', 2)
    .token('A', 21_000, 'n0', 4, '3.1.0.0')
    .fenced('A', 30_000, 'n0', 3)
    .acquired('B', 31_000, 'n0', 4, [3, 'A'], '3.1.0', 4)
    .note('A', 40_000)
    .note('B', 40_000)
    .close();
}

/**
 * Three instances, node n0: A (epoch 1) hands over to B (2); B dies; C takes over (3); C is
 * fenced; A takes over (4). C's ledger ends at its fencing, A's and B's at 40 s.
 */
function threeInstances(): Record<string, InstanceFiles> {
  return new Fleet()
    .start('A', 'B', 'C')
    .acquired('A', 1_000, 'n0', 1, null, null)
    .token('A', 2_000, 'n0', 1, '1.1.0.0')
    .released('A', 10_000, 'n0', 1, '1.2.-1')
    .acquired('B', 10_100, 'n0', 2, [1, 'A'], '1.2.-1', 0)
    .token('B', 12_000, 'n0', 2, '2.1.0.0')
    .acquired('C', 20_000, 'n0', 3, [2, 'B'], '2.1.0', 3)
    .token('C', 22_000, 'n0', 3, '3.1.0.0')
    .fenced('C', 30_000, 'n0', 3)
    .acquired('A', 31_000, 'n0', 4, [3, 'C'], '3.1.0', 2)
    .note('A', 40_000)
    .note('B', 40_000)
    .close();
}

describe('merged verify: coverage across instances', () => {
  it('two ledgers with handover, takeover and fencing: every ledger intact, coverage complete', async () => {
    const f = twoInstances();
    const r = await verifyMerged({ ledgers: asMerged(f.A!, f.B!) });
    expect(r.ledgers.map((l) => l.ok)).toEqual([true, true]);
    expect(r.coverage.problems).toEqual([]);
    expect(r.ok).toBe(true);
    const n0 = r.coverage.nodes.find((n) => n.node === 'n0');
    expect(
      n0?.epochs.map((e) => [e.epoch, e.instance, e.start - T0, e.end - T0, e.endedBy]),
    ).toEqual([
      [1, 'A', 1_000, 10_050, 'next'],
      [2, 'B', 10_050, 20_000, 'next'],
      [3, 'A', 20_000, 31_000, 'next'],
      [4, 'B', 31_000, 40_000, 'period_end'],
    ]);
    expect(n0?.covered).toBe(1);
    expect(r.coverage.nodes.map((n) => n.node)).toEqual(['n0', 'n1']);
  });

  it('a node released as removed (it left the topology) needs no owner afterwards; released as handover it does', async () => {
    const fleet = (reason: string) =>
      new Fleet()
        .start('A', 'B')
        .acquired('A', 1_000, 'n0', 1, null, null)
        .acquired('B', 1_000, 'n1', 1, null, null)
        .token('A', 2_000, 'n0', 1, '1.1.0.0')
        .released('A', 10_000, 'n0', 1, '1.2.-1', reason)
        .note('A', 40_000)
        .note('B', 40_000)
        .close();
    const removed = fleet('removed');
    const r = await verifyMerged({ ledgers: asMerged(removed.A!, removed.B!) });
    expect(r.coverage.problems).toEqual([]);
    expect(r.ok).toBe(true);
    const n0 = r.coverage.nodes.find((n) => n.node === 'n0');
    expect(n0?.window.to).toBe(T0 + 10_000);
    expect(n0?.covered).toBe(1);
    const handedOver = fleet('handover');
    const h = await verifyMerged({ ledgers: asMerged(handedOver.A!, handedOver.B!) });
    expect(h.ok).toBe(false);
    expect(h.coverage.problems.map((p) => [p.class, p.node, p.span.from - T0])).toEqual([
      ['unowned', 'n0', 10_000],
    ]);
  });

  it('three ledgers with handover, takeover and fencing pass', async () => {
    const f = threeInstances();
    const r = await verifyMerged({ ledgers: asMerged(f.A!, f.B!, f.C!) });
    expect(r.coverage.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.coverage.nodes[0]?.epochs.map((e) => e.instance)).toEqual(['A', 'B', 'C', 'A']);
  });

  it('fails when one instance withholds its ledger for a period it owned (issue #20 acceptance)', async () => {
    const f = twoInstances();
    const r = await verifyMerged({ ledgers: asMerged(f.A!) });
    expect(r.ledgers[0]?.ok).toBe(true); // the ledger given is intact: coverage is what fails
    expect(r.ok).toBe(false);
    const span = (p: { span: { from: number; to: number } }) => [p.span.from - T0, p.span.to - T0];
    const problems = r.coverage.problems.map((p) => [p.class, p.node, p.epoch, ...span(p)]);
    expect(problems).toEqual([
      // epoch 2 is B's: A's epoch 3 names it as its predecessor
      ['missing_epoch', 'n0', 2, 10_000, 20_000],
      // after A was fenced, B owned n0 (epoch 4): nobody in the given ledgers did
      ['unowned', 'n0', 3, 30_000, 40_000],
    ]);
    expect(() => assertCoverage(r.coverage)).toThrow(
      expect.objectContaining({ code: 'ERR_COVERAGE_INCOMPLETE' }),
    );
  });

  it('a missing epoch wholly before the period is not reported', async () => {
    const f = twoInstances();
    // B's epoch 2 of n0 ended at 20 s; from 20.5 s on only B's epoch 4 (after A's fencing) is missing.
    const later = await verifyMerged({ ledgers: asMerged(f.A!), from: T0 + 20_500 });
    expect(later.coverage.problems.map((p) => [p.class, p.epoch])).toEqual([['unowned', 3]]);
    const all = await verifyMerged({ ledgers: asMerged(f.A!, f.B!), from: T0 + 20_500 });
    expect(all.ok).toBe(true);
  });

  it('withholding the middle one of three fails naming its epoch and span', async () => {
    const f = threeInstances();
    const r = await verifyMerged({ ledgers: asMerged(f.A!, f.B!) });
    expect(r.ok).toBe(false);
    expect(r.coverage.problems).toMatchObject([
      {
        class: 'missing_epoch',
        node: 'n0',
        epoch: 3,
        span: { from: T0 + 10_100, to: T0 + 31_000 },
      },
    ]);
  });

  it('a node owned all period by a withheld instance shows only when named (--node)', async () => {
    const f = twoInstances();
    // B owned n1 from 1.5 s on; A's ledger never names n1.
    const quiet = await verifyMerged({ ledgers: asMerged(f.A!) });
    expect(quiet.coverage.problems.some((p) => p.node === 'n1')).toBe(false);
    const named = await verifyMerged({ ledgers: asMerged(f.A!), nodes: ['n1'] });
    expect(named.coverage.problems).toContainEqual(
      expect.objectContaining({ class: 'unowned', node: 'n1', epoch: null }),
    );
    // With every ledger the named node is covered.
    const all = await verifyMerged({ ledgers: asMerged(f.A!, f.B!), nodes: ['n0', 'n1'] });
    expect(all.ok).toBe(true);
  });

  it('a takeover that could not replay is covered only by its keyspace.gap', async () => {
    const build = (withGap: boolean) => {
      const fleet = new Fleet()
        .start('A', 'B')
        .acquired('A', 1_000, 'n0', 1, null, null)
        .note('A', 5_000); // A dies after this
      // B takes over at 20 s with no buffer reaching back: no replay (from: null).
      fleet.acquired('B', 20_000, 'n0', 2, [1, 'A'], null);
      if (withGap) fleet.gap('B', 20_500, 'n0', 5_000, 20_000);
      return fleet.note('B', 30_000).close();
    };
    const without = build(false);
    const r1 = await verifyMerged({ ledgers: asMerged(without.A!, without.B!) });
    expect(r1.coverage.problems).toMatchObject([
      { class: 'unowned', node: 'n0', epoch: 1, span: { from: T0 + 5_000, to: T0 + 20_000 } },
    ]);
    const withGap = build(true);
    const r2 = await verifyMerged({ ledgers: asMerged(withGap.A!, withGap.B!) });
    expect(r2.coverage.problems).toEqual([]);
    expect(r2.ok).toBe(true);
    expect(r2.coverage.nodes[0]?.gaps).toHaveLength(1);
  });

  it('a forged ownership record in a ledger that does not verify is not trusted', async () => {
    const f = threeInstances();
    // C withheld; B's writer forges C's epoch 3 into B's ledger (no signing key: unsealed).
    forgeRecord(f.B!.dbPath, T0 + 40_001, 'ownership.acquired', {
      node: 'n0',
      epoch: 3,
      instance: 'C',
      previous: { epoch: 2, instance: 'B' },
      from: '2.1.0',
      replayed: 0,
    });
    const r = await verifyMerged({ ledgers: asMerged(f.A!, f.B!) });
    const b = r.ledgers[1];
    expect(b?.ok).toBe(false);
    expect(b?.problems[0]?.class).toBe('unsealed');
    expect(r.untrusted).toEqual([f.B!.dbPath]);
    expect(r.ok).toBe(false);
    // Coverage read A's ledger only: epochs 2 and 3 are missing, the forged epoch 3 counts for nothing.
    expect(r.coverage.ledgers.map((l) => l.label)).toEqual([f.A!.dbPath]);
    expect(r.coverage.problems).toMatchObject([
      { class: 'missing_epoch', node: 'n0', epoch: 2, toEpoch: 3 },
    ]);
  });

  it('two owners under one epoch (a lost epoch counter) is a conflict, not coverage', () => {
    const acq = (ledger: string, instance: string, time: number) => ({
      type: 'acquired' as const,
      ledger,
      seq: 2,
      time,
      node: 'n0',
      epoch: 1,
      instance,
      previous: null,
      from: null,
      replayed: 0,
    });
    const r = checkCoverage({
      ledgers: [
        { ledger: 'la', label: 'a.db', lastTime: 100, records: [acq('la', 'A', 10)], malformed: 0 },
        { ledger: 'lb', label: 'b.db', lastTime: 100, records: [acq('lb', 'B', 50)], malformed: 0 },
      ],
      from: 0,
      to: 100,
    });
    expect(r.problems).toMatchObject([{ class: 'epoch_conflict', node: 'n0', epoch: 1 }]);
  });
});

describe('stream positions as records carry them', () => {
  it('parses e.n.k and e.n.k.i and orders by the notification they name', () => {
    expect(parsePosition('3.2.7.1')).toEqual([3, 2, 7, 1]);
    expect(parsePosition('3.2.-1')).toEqual([3, 2, -1]);
    expect(parsePosition('3.2')).toBeUndefined();
    expect(parsePosition('3.x.1')).toBeUndefined();
    const p = (s: string) => parsePosition(s) ?? [];
    expect(compareStreamPlace(p('3.2.7.1'), p('3.2.7'))).toBe(0);
    expect(compareStreamPlace(p('3.2.8.0'), p('3.2.7'))).toBe(1);
    expect(compareStreamPlace(p('3.3.-1'), p('3.2.99'))).toBe(1);
    expect(compareStreamPlace(p('2.9.9'), p('3.0.0'))).toBe(-1);
  });

  it('a replay point with an index cuts inside a notification; without one, after it', () => {
    const p = (s: string) => parsePosition(s) ?? [];
    expect(afterCut(p('3.2.7.1'), p('3.2.7'))).toBe(false);
    expect(afterCut(p('3.2.8.0'), p('3.2.7'))).toBe(true);
    expect(afterCut(p('3.2.7.1'), p('3.2.7.0'))).toBe(true);
    expect(afterCut(p('3.2.7.0'), p('3.2.7.0'))).toBe(false);
    expect(afterCut(p('3.3.0.0'), p('3.3.-1'))).toBe(true);
  });
});
