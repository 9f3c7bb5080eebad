import { cpSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { MergedVerifyReport } from '../../src/audit/verify-merged.js';
import { verify } from '../../src/cli/verify.js';
import { sink } from '../helpers/sink.js';
import { tempDir } from './helpers.js';
import { Fleet, type InstanceFiles } from './instances.js';

/** A (epoch 1) hands node n0 over to B (epoch 2); B is fenced; A takes over (epoch 3). */
function fleet(): Record<string, InstanceFiles> {
  return new Fleet()
    .start('A', 'B')
    .acquired('A', 1_000, 'n0', 1, null, null)
    .token('A', 2_000, 'n0', 1, '1.1.0.0')
    .released('A', 10_000, 'n0', 1, '1.2.-1')
    .acquired('B', 10_100, 'n0', 2, [1, 'A'], '1.2.-1')
    .token('B', 11_000, 'n0', 2, '2.1.0.0')
    .fenced('B', 20_000, 'n0', 2)
    .acquired('A', 21_000, 'n0', 3, [2, 'B'], '2.1.0', 1)
    .note('A', 30_000)
    .note('B', 30_000)
    .close();
}

describe('tokenwatch verify with several ledgers', () => {
  it('verifies each ledger as a single verify does, then coverage; exit 0 when complete', async () => {
    const f = fleet();
    const s = sink();
    const code = await verify(['--db', f.A!.dbPath, '--db', f.B!.dbPath], s.out);
    const text = s.text();
    expect(code).toBe(0);
    expect(text).toContain(`== ${f.A!.dbPath}\nledger `);
    expect(text).toContain(`== ${f.B!.dbPath}\nledger `);
    expect(text.match(/^OK: intact \(/gm)).toHaveLength(2);
    expect(text).toMatch(/^node n0: 100\.00% of /m);
    expect(text).toMatch(/^ {2}epoch 2 B in .*\(next\)$/m);
    expect(text).toMatch(/^coverage: complete$/m);
    expect(text).toMatch(/^OK: 2 ledger\(s\) intact, coverage complete$/m);
  });

  it('reads a directory of instance directories, each anchored by the files beside it', async () => {
    const f = fleet();
    const root = tempDir('tw-evidence-');
    for (const i of [f.A!, f.B!]) {
      mkdirSync(join(root, i.name));
      cpSync(i.dir, join(root, i.name), { recursive: true });
    }
    const j = sink();
    expect(await verify(['--db', root, '--json'], j.out)).toBe(0);
    const r = JSON.parse(j.text()) as MergedVerifyReport;
    expect(r.ledgers.map((l) => l.path)).toEqual([
      join(root, 'A', 'audit.db'),
      join(root, 'B', 'audit.db'),
    ]);
    expect(r.ledgers.every((l) => l.checkpoints.log !== null)).toBe(true);
    expect(r.ok).toBe(true);
  });

  it('follows an instance directory linked into the evidence directory; names an entry it cannot read', async () => {
    const f = fleet();
    const root = tempDir('tw-evidence-');
    symlinkSync(f.A!.dir, join(root, 'A'));
    symlinkSync(f.B!.dir, join(root, 'B'));
    const j = sink();
    expect(await verify(['--db', root, '--json'], j.out)).toBe(0);
    const r = JSON.parse(j.text()) as MergedVerifyReport;
    expect(r.ledgers.map((l) => l.path)).toEqual([
      join(root, 'A', 'audit.db'),
      join(root, 'B', 'audit.db'),
    ]);
    symlinkSync(join(root, 'gone'), join(root, 'c.db'));
    await expect(verify(['--db', root], sink().out)).rejects.toMatchObject({
      code: 'ERR_USAGE',
      message: expect.stringContaining(`${join(root, 'c.db')} cannot be read (ENOENT)`) as unknown,
    });
  });

  it('exits 1 naming node, epoch and span when a ledger that owned a period is withheld', async () => {
    const f = fleet();
    const s = sink();
    expect(await verify(['--db', f.A!.dbPath, '--coverage'], s.out)).toBe(1);
    expect(s.text()).toMatch(/^OK: intact \(/m); // A itself is intact
    expect(s.text()).toMatch(
      /^missing_epoch node n0 epoch 2: node n0: epoch 2 owned it from 2026-01-01T00:00:10\.000Z to 2026-01-01T00:00:21\.000Z/m,
    );
    expect(s.text()).toMatch(
      /^FAILED: every ledger intact; coverage incomplete \(1 problem\(s\)\)$/m,
    );
    const j = sink();
    expect(await verify(['--db', f.A!.dbPath, '--coverage', '--json'], j.out)).toBe(1);
    const r = JSON.parse(j.text()) as MergedVerifyReport;
    expect(r.coverage.problems).toMatchObject([{ class: 'missing_epoch', node: 'n0', epoch: 2 }]);
  });

  it('one --db without --coverage is the single-ledger verify, unchanged', async () => {
    const f = fleet();
    const j = sink();
    expect(await verify(['--db', f.A!.dbPath, '--json'], j.out)).toBe(0);
    const r = JSON.parse(j.text()) as Record<string, unknown>;
    expect(r).not.toHaveProperty('coverage');
    expect(r).toHaveProperty('problems', []);
  });

  it('--checkpoints is given once per ledger, in order', async () => {
    const f = fleet();
    await expect(
      verify(['--db', f.A!.dbPath, '--db', f.B!.dbPath, '--checkpoints', f.A!.logPath], sink().out),
    ).rejects.toMatchObject({ code: 'ERR_USAGE' });
    const s = sink();
    // Swapped logs: each ledger is checked against the other's log and fails.
    expect(
      await verify(
        [
          '--db',
          f.A!.dbPath,
          '--db',
          f.B!.dbPath,
          '--checkpoints',
          f.B!.logPath,
          '--checkpoints',
          f.A!.logPath,
        ],
        s.out,
      ),
    ).toBe(1);
    expect(s.text()).toMatch(/^not read \(does not verify\): /m);
  });
});
