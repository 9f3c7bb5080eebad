import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportCommand } from '../../src/cli/export.js';
import type { MergedExportIndex } from '../../src/compliance/merged-export.js';
import { verifyExport } from '../../src/compliance/verify-export.js';
import { T0 } from '../audit/instances.js';
import { tempDir } from '../audit/helpers.js';
import { sink } from '../helpers/sink.js';
import { haFleet } from './ha-fleet.js';

const period = ['--from', new Date(T0).toISOString(), '--to', new Date(T0 + 60_000).toISOString()];

describe('export of several instances', () => {
  it('writes one signed bundle per ledger and merged.json with coverage and the seqs not counted', async () => {
    const f = haFleet();
    const out = join(tempDir('tw-merged-export-'), 'bundle');
    const s = sink();
    const code = await exportCommand(
      ['--db', f.A!.dbPath, '--db', f.B!.dbPath, ...period, '--format', 'jsonl', '--out', out],
      s.out,
    );
    expect(code).toBe(0);
    const index = JSON.parse(readFileSync(join(out, 'merged.json'), 'utf8')) as MergedExportIndex;
    expect(index.format).toBe('tokenwatch-merged-export');
    expect(index.coverage.ok).toBe(true);
    expect(readdirSync(out).sort()).toEqual(
      [...index.bundles.map((b) => b.dir), 'merged.json'].sort(),
    );
    // Each bundle checks on its own with its instance's public key.
    for (const [i, b] of index.bundles.entries()) {
      const files = [f.A!, f.B!][i]!;
      const r = verifyExport(join(out, b.dir), files.trusted, files.logPath);
      expect(r.ok).toBe(true);
    }
    expect(index.tokens.counted).toBe(9);
    const skipped = Object.values(index.tokens.notCounted ?? {});
    expect(skipped.flatMap((x) => x.duplicates)).toHaveLength(4);
    expect(skipped.flatMap((x) => x.fencedExcluded)).toHaveLength(1);
    // The seqs name token records inside the bundles.
    const bLedger = index.bundles[1]!;
    const notCountedInB = index.tokens.notCounted?.[bLedger.ledgerId];
    for (const seq of [
      ...(notCountedInB?.duplicates ?? []),
      ...(notCountedInB?.fencedExcluded ?? []),
    ])
      expect(seq).toBeGreaterThanOrEqual(bLedger.firstSeq ?? Infinity);
    expect(s.text()).toMatch(/coverage complete; token records 9 counted/);
  });

  it('refuses, writing nothing, when coverage is incomplete', async () => {
    const f = haFleet();
    const out = join(tempDir('tw-merged-export-'), 'bundle');
    // A alone, as a directory of one ledger: B's epoch 2 is missing.
    await expect(
      exportCommand(['--db', f.A!.dir, ...period, '--out', out], sink().out),
    ).rejects.toMatchObject({ code: 'ERR_COVERAGE_INCOMPLETE' });
    expect(existsSync(out)).toBe(false);
  });

  it('--signing-key is given once per ledger', async () => {
    const f = haFleet();
    const out = join(tempDir('tw-merged-export-'), 'bundle');
    await expect(
      exportCommand(
        [
          '--db',
          f.A!.dbPath,
          '--db',
          f.B!.dbPath,
          ...period,
          '--out',
          out,
          '--signing-key',
          join(f.A!.dir, 'signing.key'),
        ],
        sink().out,
      ),
    ).rejects.toMatchObject({ code: 'ERR_USAGE' });
  });
});
