import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DAY_MS } from '../../src/audit/retention.js';
import { loadTrustedKey } from '../../src/audit/signing-keys.js';
import { LedgerStore } from '../../src/audit/store/ledger-store.js';
import { buildReport } from '../../src/compliance/report-data.js';
import type { Archived } from '../audit/archive-helpers.js';

/** The integrity section of a report over days [fromDay, toDay) of an archivedLedger(). */
const T0 = Date.UTC(2026, 0, 1);

export async function archivedIntegrity(a: Archived, fromDay: number, toDay: number) {
  const db = new Database(a.dbPath, { readonly: true });
  try {
    const r = await buildReport({
      store: new LedgerStore(db),
      from: T0 + fromDay * DAY_MS,
      to: T0 + toDay * DAY_MS,
      trusted: [loadTrustedKey(join(a.dir, 'signing.pub'))],
      anchors: { checkpointLog: join(a.dir, 'checkpoints.jsonl') },
      policy: {
        seq: null,
        time: null,
        maxTtlSeconds: { access_token: 3600 },
        ttlToleranceSeconds: 0,
        revocationSlaSeconds: null,
        revocationEventTypes: null,
        digest: null,
      },
      now: a.clock.now,
    });
    return r.integrity;
  } finally {
    db.close();
  }
}
