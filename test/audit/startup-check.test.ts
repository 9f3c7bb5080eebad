import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BackgroundVerifier } from '../../src/audit/background-verify.js';
import { Ledger } from '../../src/audit/ledger.js';
import { loadTrustedKey, resolveSigningKey } from '../../src/audit/signing-keys.js';
import { checkAtStart } from '../../src/audit/startup-check.js';
import { createLogger } from '../../src/logger.js';
import { DIST_TIMEOUT_MS, ensureDist } from './dist.js';
import type { FakeClock } from './helpers.js';
import {
  appendRecords,
  openLedger,
  recomputeChain,
  rewriteRecord,
  tamper,
  tempDir,
} from './helpers.js';

/** The ledger file opened the way the service opens it, before anything is signed. */
function reopen(dir: string, clock: FakeClock): Ledger {
  return new Ledger({
    path: join(dir, 'audit.db'),
    batchSize: 100,
    flushIntervalMs: 5,
    maxPending: 1000,
    hmacKeyIds: ['k1'],
    signingKey: resolveSigningKey(undefined, join(dir, 'audit.db')).key,
    now: clock.now,
  });
}

function check(dir: string, ledger: Ledger) {
  return checkAtStart({
    db: ledger.db,
    dbPath: join(dir, 'audit.db'),
    ledgerId: ledger.ledgerId,
    logPath: join(dir, 'checkpoints.jsonl'),
    trusted: [loadTrustedKey(join(dir, 'signing.pub'))],
  });
}

/** A ledger of `records` records, closed cleanly (shutdown checkpoint) or not. */
function written(records: number, clean: boolean, checkpointEvery = 1000) {
  const dir = tempDir();
  const { ledger, checkpointer, clock } = openLedger(dir, { checkpointEvery, batchSize: 100 });
  appendRecords(ledger, clock, records);
  if (clean) checkpointer.close();
  ledger.close();
  if (!clean) checkpointer.close();
  return { dir, clock };
}

describe('start-up check', () => {
  it('reads only the tail after the newest logged checkpoint; a clean stop comes from the signed shutdown checkpoint', () => {
    const dir = tempDir();
    const first = openLedger(dir, { checkpointEvery: 1_000_000 }); // the start checkpoint only
    appendRecords(first.ledger, first.clock, 250);
    first.ledger.close(); // a crash: no shutdown checkpoint
    first.checkpointer.close();
    const crashed = reopen(dir, first.clock);
    const r = check(dir, crashed);
    expect(r).toMatchObject({ ok: true, checkedRecords: 250, cleanShutdown: false });
    expect(r.anchor).toMatchObject({ source: 'log', n: 1, seq: 1 });
    crashed.close();

    const second = openLedger(dir, { clock: first.clock }); // seals the tail, then stops cleanly
    second.checkpointer.close();
    second.ledger.close();
    const clean = reopen(dir, first.clock);
    expect(check(dir, clean)).toMatchObject({ ok: true, cleanShutdown: true, checkedRecords: 0 });
    clean.close();
  });

  it('a record edited before the anchor with the chain recomputed → modified at the anchor', () => {
    const { dir, clock } = written(300, true, 100);
    tamper(join(dir, 'audit.db'), (db) => {
      rewriteRecord(db, 50, (f) => ({ ...f, type: 'token.deleted' }));
      recomputeChain(db, 50);
    });
    const ledger = reopen(dir, clock);
    const r = check(dir, ledger);
    expect(r.ok).toBe(false);
    expect(r.finding).toMatchObject({ class: 'modified', seq: 301 });
    ledger.close();
  });

  it(
    'the background verification finds what the inline check does not read, and records a finding',
    async () => {
      ensureDist();
      const { dir, clock } = written(300, true, 100);
      // An edit deep inside the sealed part, the chain left as it was: only a full scan sees it.
      tamper(join(dir, 'audit.db'), (db) => {
        db.prepare("UPDATE records SET attrs = '{}' WHERE seq = 42").run();
      });
      const { ledger, checkpointer, key } = openLedger(dir, { clock });
      expect(check(dir, ledger).ok).toBe(true);
      const bg = new BackgroundVerifier({
        ledger,
        dbPath: join(dir, 'audit.db'),
        checkpointLog: join(dir, 'checkpoints.jsonl'),
        key,
        now: clock.now,
        logger: createLogger('silent'),
      });
      bg.start();
      const r = await bg.done;
      expect(r?.ok).toBe(false);
      expect(r?.problems[0]).toMatchObject({ class: 'modified', seq: 42 });
      ledger.flush();
      const [finding] = ledger.list({ type: 'finding.ledger_damage' });
      expect(finding?.attrs).toMatchObject({
        severity: 'critical',
        problemCount: 1,
        problems: [{ class: 'modified', seq: 42 }],
      });
      await bg.close();
      checkpointer.close();
      ledger.close();
    },
    DIST_TIMEOUT_MS,
  );
});
