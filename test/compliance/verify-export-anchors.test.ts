import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportBundle } from '../../src/compliance/export-bundle.js';
import { verifyExport } from '../../src/compliance/verify-export.js';
import { dataFile, editLines, readManifest, readOnly, tempDir } from './helpers.js';
import { DAY, T0, socScenario } from './scenario.js';
import { LedgerStore } from '../../src/audit/store/ledger-store.js';

describe('verify-export: verdict, reason and anchors', () => {
  it('says verified or not verified with the reason, and checks the sealing checkpoint against the external log', async () => {
    const s = socScenario();
    const out = join(tempDir('tw-bundle-'), 'bundle');
    const db = readOnly(s.dbPath);
    try {
      await exportBundle({
        store: new LedgerStore(db),
        from: T0,
        to: T0 + DAY,
        format: 'jsonl',
        outDir: out,
        key: s.key,
      });
    } finally {
      db.close();
    }
    const log = join(s.dir, 'checkpoints.jsonl');

    const alone = verifyExport(out, s.trusted);
    expect(alone).toMatchObject({ ok: true, verdict: 'verified', reason: null, anchored: false });
    expect(alone.anchors.join('\n')).toMatch(/no external checkpoint log/);
    const withLog = verifyExport(out, s.trusted, log);
    expect(withLog).toMatchObject({ ok: true, verdict: 'verified', anchored: true });

    // A log that never held the sealing checkpoint: the bundle's checkpoints are not the log's.
    const sealedBy = readManifest(out).link?.sealedBy;
    expect(sealedBy).toBeDefined();
    const other = join(tempDir('tw-log-'), 'checkpoints.jsonl');
    writeFileSync(
      other,
      readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l !== '' && (JSON.parse(l) as { n: number }).n !== sealedBy?.n)
        .map((l) => `${l}\n`)
        .join(''),
    );
    const unlogged = verifyExport(out, s.trusted, other);
    expect(unlogged.verdict).toBe('not verified');
    expect(unlogged.reason).toMatch(/not in the external checkpoint log/);

    editLines(dataFile(out), (lines) => lines.slice(1));
    const edited = verifyExport(out, s.trusted, log);
    expect(edited.ok).toBe(false);
    expect(edited.verdict).toBe('not verified');
    expect(edited.reason).toMatch(/^[a-z_]+: /);
  });

  it('is not anchored by a key or log in a directory that holds the bundle (the default layout)', async () => {
    const s = socScenario();
    const out = join(s.dir, 'exports', 'bundle');
    const db = readOnly(s.dbPath);
    try {
      await exportBundle({
        store: new LedgerStore(db),
        from: T0,
        to: T0 + DAY,
        format: 'jsonl',
        outDir: out,
        key: s.key,
      });
    } finally {
      db.close();
    }
    const v = verifyExport(out, s.trusted, join(s.dir, 'checkpoints.jsonl'));
    expect(v).toMatchObject({ ok: true, verdict: 'verified', anchored: false });
    expect(v.anchors.join('\n')).toMatch(/holds the bundle/);
  });
});
