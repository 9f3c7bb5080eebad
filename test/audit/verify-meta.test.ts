import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { readMeta } from '../../src/audit/verify-meta.js';
import { appendRecords, openLedger, tamper, tempDir } from './helpers.js';

// readMeta on a ledger holding the writer's own records: what it counts and what it skips.
function ledgerWith(extra: { type: string; attrs: Record<string, unknown> }[]) {
  const dir = tempDir();
  const { ledger, checkpointer, clock } = openLedger(dir);
  appendRecords(ledger, clock, 3);
  for (const e of extra) {
    clock.advance(10);
    ledger.append({ time: clock.now(), source: 'system', type: e.type, attrs: e.attrs });
  }
  appendRecords(ledger, clock, 2, 3);
  const ledgerId = ledger.ledgerId;
  checkpointer.close();
  ledger.close();
  return { dbPath: join(dir, 'audit.db'), ledgerId, clock };
}

function meta(dbPath: string) {
  const db = new Database(dbPath, { readonly: true });
  try {
    return readMeta(db);
  } finally {
    db.close();
  }
}

describe('readMeta', () => {
  it('reads the ends, times, id and seal state of a current ledger', () => {
    const l = ledgerWith([]);
    const m = meta(l.dbPath);
    expect(m).toMatchObject({
      ledgerId: l.ledgerId,
      hasCheckpoints: true,
      empty: false,
      firstSeq: 1,
      maxSeq: 6,
      lastTime: l.clock.now(),
      hasSeals: true,
      genesisSeals: true,
      clockSkewRecords: 0,
      degraded: { windows: 0, droppedRecords: 0 },
      purges: [],
      discontinuities: [],
      malformed: [],
    });
    expect(m.firstTime).toBeLessThan(m.lastTime ?? 0);
    expect(m.checkpoints.length).toBeGreaterThan(0);
  });

  it('counts degraded windows and the records they dropped, skew flags too', () => {
    const l = ledgerWith([
      { type: 'audit.degraded', attrs: { droppedRecords: 7 } },
      { type: 'audit.degraded', attrs: { droppedRecords: 'many' } },
      { type: 'audit.degraded', attrs: { droppedRecords: 5 } },
      { type: 'audit.clock_skew', attrs: { backwardsMs: 5000 } },
      { type: 'audit.clock_skew', attrs: { backwardsMs: 9000 } },
    ]);
    const m = meta(l.dbPath);
    expect(m.degraded).toEqual({ windows: 3, droppedRecords: 12 });
    expect(m.clockSkewRecords).toBe(2);
  });

  it('takes purge records whose range and chain are stated, skips the rest', () => {
    const chain = 'ab'.repeat(32);
    const l = ledgerWith([
      { type: 'audit.retention_purge', attrs: { fromSeq: 1, toSeq: 2, chain } },
      { type: 'audit.retention_purge', attrs: { fromSeq: 1, toSeq: '2', chain } },
      { type: 'audit.retention_purge', attrs: { fromSeq: '1', toSeq: 2, chain } },
      { type: 'audit.retention_purge', attrs: { fromSeq: 1, toSeq: 2, chain: 5 } },
    ]);
    const m = meta(l.dbPath);
    expect(m.purges).toEqual([
      { seq: 5, time: expect.any(Number) as number, fromSeq: 1, toSeq: 2, chain },
    ]);
  });

  it('without the meta row the ledger id comes from the genesis record', () => {
    const l = ledgerWith([]);
    tamper(l.dbPath, (db) =>
      db.exec("DROP TRIGGER meta_no_delete; DELETE FROM meta WHERE k = 'ledger_id'"),
    );
    expect(meta(l.dbPath).ledgerId).toBe(l.ledgerId);
    // Neither: no id (the checkpoints are then read under the empty id).
    tamper(l.dbPath, (db) => db.exec('DELETE FROM records WHERE seq = 1'));
    const m = meta(l.dbPath);
    expect(m.ledgerId).toBeNull();
    expect(m.genesisSeals).toBe(false);
    expect(m.firstSeq).toBe(2);
  });

  it('an empty records table: empty, ends 0, no times', () => {
    const l = ledgerWith([]);
    tamper(l.dbPath, (db) => db.exec('DELETE FROM records'));
    expect(meta(l.dbPath)).toMatchObject({
      empty: true,
      firstSeq: 0,
      maxSeq: 0,
      firstTime: null,
      lastTime: null,
      ledgerId: l.ledgerId,
    });
  });

  it('a malformed checkpoint row is listed with its number and why, not parsed', () => {
    const l = ledgerWith([]);
    const count = meta(l.dbPath).checkpoints.length;
    tamper(l.dbPath, (db) => db.exec("UPDATE checkpoints SET reason = 'bogus' WHERE n = 1"));
    const m = meta(l.dbPath);
    expect(m.malformed).toEqual([{ n: 1, seq: 1, message: 'unknown reason' }]);
    expect(m.checkpoints).toHaveLength(count - 1);
  });
});
