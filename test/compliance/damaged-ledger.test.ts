import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openReadOnly } from '../../src/audit/query.js';
import { exportCommand } from '../../src/cli/export.js';
import { reportCommand } from '../../src/cli/report.js';
import type { Soc2Report } from '../../src/compliance/report-types.js';
import { appendRecords, openLedger, tamper, tempDir } from '../audit/helpers.js';
import { sink } from '../helpers/sink.js';

/**
 * A report reads records outside its period (the policy in force, the inventory replay) and an
 * export links its range through checkpoints the external log must still hold: both rest on the
 * whole ledger verifying against the given anchors, not on the period's rows alone.
 */

/** 300 records, checkpointed; returns the paths and the time window of records 200..300. */
function ledger(): { dir: string; db: string; log: string; pub: string; from: string; to: string } {
  const dir = tempDir('tw-damaged-');
  const { ledger, checkpointer, clock } = openLedger(dir);
  appendRecords(ledger, clock, 300);
  checkpointer.close();
  ledger.close();
  const db = join(dir, 'audit.db');
  const r = openReadOnly(db);
  const t = (seq: number) =>
    (r.prepare('SELECT time FROM records WHERE seq = ?').get(seq) as { time: number }).time;
  const from = new Date(t(200)).toISOString();
  const to = new Date(t(301) + 1).toISOString();
  r.close();
  return { dir, db, log: join(dir, 'checkpoints.jsonl'), pub: join(dir, 'signing.pub'), from, to };
}

async function report(l: ReturnType<typeof ledger>): Promise<Soc2Report> {
  const out = sink();
  const err = sink();
  const args = ['--db', l.db, '--from', l.from, '--to', l.to, '--format', 'json'];
  expect(
    await reportCommand([...args, '--public-key', l.pub, '--checkpoints', l.log], out.out, err.out),
  ).toBe(0);
  return JSON.parse(out.text()) as Soc2Report;
}

describe('reports and exports of a damaged ledger', () => {
  it('a record edited before the period makes the period not verified', async () => {
    const l = ledger();
    expect((await report(l)).integrity.verdict).toBe('verified');
    // The attacker edits an early record's attributes (e.g. the policy in force), chain untouched.
    tamper(l.db, (db) => db.prepare(`UPDATE records SET attrs = '{"x":1}' WHERE seq = 5`).run());
    const r = await report(l);
    expect(r.integrity.verdict).toBe('not verified');
    expect(r.integrity.problems.join('\n')).toMatch(/ledger: modified at seq 5/);
  });

  it('a tail cut together with its checkpoints is caught against the external log', async () => {
    const l = ledger();
    tamper(l.db, (db) => {
      db.exec('DROP TRIGGER IF EXISTS seals_no_delete');
      db.prepare('DELETE FROM records WHERE seq > 250').run();
      db.prepare('DELETE FROM seals WHERE seq > 250').run();
      db.prepare('DELETE FROM checkpoints WHERE seq > 250').run();
    });
    const r = await report(l);
    expect(r.integrity.verdict).toBe('not verified');
    expect(r.integrity.problems.join('\n')).toMatch(/ledger: (rollback|truncated)/);
  });

  it('export refuses a ledger with damage outside the exported range', async () => {
    const l = ledger();
    const exportTo = (name: string) =>
      exportCommand(
        [
          '--db',
          l.db,
          '--from',
          l.from,
          '--to',
          l.to,
          '--format',
          'jsonl',
          '--out',
          join(l.dir, name),
        ],
        sink().out,
      );
    expect(await exportTo('b1')).toBe(0);
    tamper(l.db, (db) => db.prepare('DELETE FROM records WHERE seq = 7').run());
    await expect(exportTo('b2')).rejects.toMatchObject({
      code: 'ERR_LEDGER_INTEGRITY',
      message: expect.stringMatching(/missing at seq 7/),
    });
  });
});
