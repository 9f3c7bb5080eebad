import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openLedgerStore } from '../../src/audit/store/ledger-store.js';
import { verifyMerged } from '../../src/audit/verify-merged.js';
import { buildMergedReport, type MergedSoc2Report } from '../../src/compliance/merged-report.js';
import { Fleet, T0, asMerged, forgeRecord, type InstanceFiles } from '../audit/instances.js';
import { tempDir } from '../audit/helpers.js';
import { haFleet } from './ha-fleet.js';

/**
 * Merged evidence under attack (issue #20, docs/ha-evidence.md "What coverage trusts"): who
 * chooses the files given to the auditor, who writes ledger files without a signing key, who
 * writes the coordination Redis.
 */

interface Given {
  f: InstanceFiles;
  damage?: string[];
}

async function merged(...given: Given[]): Promise<MergedSoc2Report> {
  const stores = given.map((g) => openLedgerStore(g.f.dbPath));
  try {
    return await buildMergedReport({
      ledgers: given.map((g, i) => ({
        path: g.f.dbPath,
        store: stores[i]!,
        trusted: g.f.trusted,
        checkpointLog: g.f.logPath,
        damage: g.damage ?? [],
      })),
      from: T0,
      to: T0 + 60_000,
      now: () => T0 + 60_000,
    });
  } finally {
    for (const s of stores) s.close();
  }
}

/** A byte copy of a closed ledger (and its log and key) under another directory. */
function copyOf(f: InstanceFiles): InstanceFiles {
  const dir = tempDir('tw-copy-');
  const out = {
    ...f,
    dir,
    dbPath: join(dir, 'audit.db'),
    logPath: join(dir, 'checkpoints.jsonl'),
    publicKeyPath: join(dir, 'signing.pub'),
  };
  copyFileSync(f.dbPath, out.dbPath);
  copyFileSync(f.logPath, out.logPath);
  copyFileSync(f.publicKeyPath, out.publicKeyPath);
  return out;
}

describe('merged evidence under attack', () => {
  it('the same ledger given twice counts no token event twice, with or without a position', async () => {
    const f = haFleet();
    const once = await merged({ f: f.A! }, { f: f.B! });
    const twice = await merged({ f: f.A! }, { f: f.B! }, { f: copyOf(f.A!) });
    expect(twice.tokens.counted).toBe(once.tokens.counted);
    expect(twice.tokens.withoutPosition).toBe(once.tokens.withoutPosition);
    expect(twice.tokens.byType).toEqual(once.tokens.byType);
  });

  it("a damaged ledger's forged replay point does not exclude an intact ledger's real events", async () => {
    const f = haFleet();
    const honest = await merged({ f: f.A! }, { f: f.B! });
    // Appended without A's key: "epoch 3 replayed everything after 1.0.0", so B's fenced epoch
    // would lose every record (fp5, only B has it, included).
    forgeRecord(f.A!.dbPath, T0 + 29_000, 'ownership.acquired', {
      node: 'n0',
      epoch: 3,
      instance: 'A',
      previous: { epoch: 2, instance: 'B' },
      from: '1.0.0',
      replayed: 0,
    });
    const r = await merged({ f: f.A!, damage: ['unsealed record'] }, { f: f.B! });
    expect(r.ledgers[0]?.report.integrity.status).toBe('failed');
    // Without the forged point B's fenced records are counted (its copies that A also holds
    // dedup by position): never fewer than the honest count.
    expect(r.tokens.counted).toBeGreaterThanOrEqual(honest.tokens.counted);
    expect(r.tokens.byType['token.written']?.access_token).toBeGreaterThanOrEqual(8);
  });

  it('a withheld first epoch is missing even when the successor names no previous owner', async () => {
    // The coordination Redis' `last` key was deleted by someone with write access to it: B's
    // acquisition of epoch 2 says previous null. A's ledger (epoch 1) is withheld.
    const f = new Fleet()
      .start('A', 'B')
      .note('B', 500)
      .acquired('A', 1_000, 'n0', 1, null, null)
      .acquired('B', 10_000, 'n0', 2, null, null)
      .note('A', 20_000)
      .note('B', 20_000)
      .close();
    const r = await verifyMerged({ ledgers: asMerged(f.B!), nodes: ['n0'] });
    expect(r.coverage.problems.map((p) => [p.class, p.epoch])).toContainEqual(['missing_epoch', 1]);
    expect(r.ok).toBe(false);
    const both = await verifyMerged({ ledgers: asMerged(f.A!, f.B!) });
    expect(both.coverage.problems).toEqual([]);
  });

  it('an older snapshot of a ledger given before the full copy does not hide a withheld epoch', async () => {
    // B owns epoch 2, hands over to C (3, withheld), takes it back (4). The auditor is given
    // A, a snapshot of B taken while it owned epoch 2, and B's full ledger.
    const fleet = new Fleet()
      .start('A', 'B', 'C')
      .acquired('A', 1_000, 'n0', 1, null, null)
      .released('A', 5_000, 'n0', 1, '1.2.-1')
      .acquired('B', 5_050, 'n0', 2, [1, 'A'], '1.2.-1')
      .note('B', 8_000);
    const snapshotDir = tempDir('tw-snap-');
    const f0 = fleet.snapshot('B', snapshotDir);
    const f = fleet
      .released('B', 10_000, 'n0', 2, '2.2.-1')
      .acquired('C', 10_050, 'n0', 3, [2, 'B'], '2.2.-1')
      .released('C', 20_000, 'n0', 3, '3.2.-1')
      .acquired('B', 20_050, 'n0', 4, [3, 'C'], '3.2.-1')
      .note('A', 30_000)
      .note('B', 30_000)
      .close();
    const snap = { ...f0, trusted: f.B!.trusted };
    const honest = await verifyMerged({ ledgers: asMerged(f.A!, f.B!) });
    expect(honest.coverage.problems.map((p) => [p.class, p.epoch])).toEqual([['missing_epoch', 3]]);
    const r = await verifyMerged({ ledgers: asMerged(f.A!, snap, f.B!) });
    expect(r.ledgers.map((l) => l.ok)).toEqual([true, true, true]);
    expect(r.coverage.problems.map((p) => [p.class, p.epoch])).toEqual([['missing_epoch', 3]]);
    expect(r.ok).toBe(false);
  });
  it("another deployment's ledger for a node of the same name does not stand in for a withheld epoch", async () => {
    // Deployment Y: A (1) hands over to B (2), B to C (3, withheld), C to B (4). Deployment X
    // (another cluster whose node has the same address) has an epoch 3 at the right time.
    const y = new Fleet()
      .start('A', 'B', 'C', 'X')
      .acquired('A', 1_000, 'n0', 1, null, null)
      .released('A', 5_000, 'n0', 1, '1.2.-1')
      .acquired('B', 5_050, 'n0', 2, [1, 'A'], '1.2.-1')
      .released('B', 10_000, 'n0', 2, '2.2.-1')
      .acquired('C', 10_050, 'n0', 3, [2, 'B'], '2.2.-1')
      .acquired('X', 10_100, 'n0', 3, [2, 'X-other'], '2.9.-1')
      .released('X', 19_900, 'n0', 3, '3.2.-1')
      .released('C', 20_000, 'n0', 3, '3.2.-1')
      .acquired('B', 20_050, 'n0', 4, [3, 'C'], '3.2.-1')
      .note('A', 30_000)
      .note('B', 30_000)
      .note('X', 30_000)
      .close();
    const honest = await verifyMerged({ ledgers: asMerged(y.A!, y.B!, y.C!) });
    expect(honest.coverage.problems).toEqual([]);
    const r = await verifyMerged({ ledgers: asMerged(y.A!, y.B!, y.X!) });
    expect(r.ledgers.map((l) => l.ok)).toEqual([true, true, true]);
    expect(r.coverage.problems.map((p) => [p.class, p.epoch])).toContainEqual([
      'epoch_conflict',
      3,
    ]);
    expect(r.ok).toBe(false);
  });
  it('a withheld successor of a handover at the end of the given records is missing', async () => {
    // A hands node n0 over to B and writes nothing more; B's ledger is withheld.
    const f = new Fleet()
      .start('A', 'B')
      .acquired('A', 1_000, 'n0', 1, null, null)
      .released('A', 10_000, 'n0', 1, '1.2.-1')
      .acquired('B', 10_050, 'n0', 2, [1, 'A'], '1.2.-1')
      .note('B', 30_000)
      .close();
    const r = await verifyMerged({ ledgers: asMerged(f.A!) });
    expect(r.coverage.problems.map((p) => [p.class, p.epoch])).toEqual([['missing_epoch', 2]]);
    expect(r.ok).toBe(false);
    const both = await verifyMerged({ ledgers: asMerged(f.A!, f.B!) });
    expect(both.ok).toBe(true);
  });
});
