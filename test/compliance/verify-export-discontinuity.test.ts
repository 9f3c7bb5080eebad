import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportBundle } from '../../src/compliance/export-bundle.js';
import { verifyExport } from '../../src/compliance/verify-export.js';
import { loadTrustedKey } from '../../src/audit/signing-keys.js';
import { appendRecords, openLedger } from '../audit/helpers.js';
import { readOnly, tempDir } from './helpers.js';
import { LedgerStore } from '../../src/audit/store/ledger-store.js';

describe('verify-export and an accepted discontinuity', () => {
  it('says not verified when the range holds a ledger.discontinuity record', async () => {
    const dir = tempDir('tw-disc-');
    const { ledger, checkpointer, key, clock } = openLedger(dir);
    const from = clock.now();
    appendRecords(ledger, clock, 20);
    clock.advance(10);
    ledger.append({
      time: clock.now(),
      source: 'system',
      type: 'ledger.discontinuity',
      attrs: { class: 'unsealed', seq: 12, acceptedBy: 'serve --accept-discontinuity' },
    });
    appendRecords(ledger, clock, 20, 20);
    checkpointer.close();
    ledger.close();
    const trusted = [loadTrustedKey(join(dir, 'signing.pub'))];

    const out = join(tempDir('tw-bundle-'), 'bundle');
    const db = readOnly(join(dir, 'audit.db'));
    try {
      await exportBundle({
        store: new LedgerStore(db),
        from,
        to: clock.now() + 1,
        format: 'jsonl',
        outDir: out,
        key,
      });
    } finally {
      db.close();
    }
    const v = verifyExport(out, trusted);
    expect(v.verdict).toBe('not verified');
    expect(v.problems.map((p) => p.class)).toEqual(['discontinuity']);
    expect(v.reason).toMatch(/^discontinuity: .*ledger\.discontinuity/);
  });
});
