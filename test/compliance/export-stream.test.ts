import { statSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { exportBundle } from '../../src/compliance/export-bundle.js';
import { verifyExport } from '../../src/compliance/verify-export.js';
import { loadSigningKey, loadTrustedKey } from '../../src/audit/signing-keys.js';
import { FakeClock, openLedger } from '../audit/helpers.js';
import { fp, readManifest, readOnly, tempDir } from './helpers.js';
import { LedgerStore } from '../../src/audit/store/ledger-store.js';

const RECORDS = 200_000;
// A full GC before the baseline, so garbage left by building the ledger does not hide growth.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MB = 1024 * 1024;

describe('exporting a large ledger streams', () => {
  it(`exports and verifies ${RECORDS.toLocaleString('en-US')} records in bounded memory`, async () => {
    const dir = tempDir('tw-large-');
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const { ledger, checkpointer } = openLedger(dir, {
      checkpointEvery: 10_000,
      batchSize: 5000,
      clock,
    });
    for (let i = 0; i < RECORDS; i++) {
      clock.t += 10;
      ledger.append({
        time: clock.t,
        source: 'redis',
        type: i % 10 === 0 ? 'token.expired' : 'token.written',
        kind: 'access_token',
        fingerprint: fp(i),
        attrs: {
          node: 'redis-0',
          db: 0,
          redisEvent: 'set',
          key: {
            token: fp(i),
            sub: `user-${i % 997}`,
            client: 'web-frontend',
            scope: 'openid profile email offline_access',
          },
          ttlMs: 3_600_000,
          dueAt: clock.t + 3_600_000,
        },
      });
      if (i % 5000 === 4999) ledger.flush();
    }
    checkpointer.close();
    ledger.close();
    const key = loadSigningKey(join(dir, 'signing.key'));

    const db = readOnly(join(dir, 'audit.db'));
    const out = join(tempDir('tw-large-out-'), 'bundle');
    gc();
    const base = process.memoryUsage();
    let peakHeap = base.heapUsed;
    let peakExternal = base.external;
    const started = performance.now();
    try {
      await exportBundle({
        store: new LedgerStore(db),
        from: Date.UTC(2026, 0, 1),
        to: Date.UTC(2026, 0, 2),
        format: 'ocsf',
        outDir: out,
        key,
        onProgress: () => {
          const m = process.memoryUsage();
          peakHeap = Math.max(peakHeap, m.heapUsed);
          peakExternal = Math.max(peakExternal, m.external);
        },
      });
    } finally {
      db.close();
    }
    const exportMs = performance.now() - started;
    const m = readManifest(out);
    const bytes = m.files.reduce((a, f) => a + statSync(join(out, f.name)).size, 0);
    const heapGrowth = (peakHeap - base.heapUsed) / MB;
    const externalGrowth = (peakExternal - base.external) / MB;

    const verifyStarted = performance.now();
    const report = verifyExport(out, [loadTrustedKey(join(dir, 'signing.pub'))]);
    const verifyMs = performance.now() - verifyStarted;
    process.stdout.write(
      `export of ${RECORDS + 1} records (${m.query.format}, ${(bytes / MB).toFixed(0)} MB in ${m.files.length} files): ${(exportMs / 1000).toFixed(1)} s, peak heap growth ${heapGrowth.toFixed(1)} MB, external ${externalGrowth.toFixed(1)} MB; verify-export ${(verifyMs / 1000).toFixed(1)} s\n`,
    );
    expect(m.range?.records).toBe(RECORDS + 1); // + genesis
    expect(report.problems).toEqual([]);
    expect(report.rows).toBe(RECORDS + 1);
    expect(bytes).toBeGreaterThan(100 * MB); // more than the heap growth the export is allowed
    expect(heapGrowth).toBeLessThan(100);
    expect(externalGrowth).toBeLessThan(50);
  }, 180_000); // ~16 s on a quiet 2-core machine; the assertion is memory, not time
});
