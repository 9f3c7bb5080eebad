import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it, vi } from 'vitest';
import { checkpointSignatureValid, type Checkpoint } from '../../src/audit/checkpoint.js';
import { Checkpointer } from '../../src/audit/checkpointer.js';
import { readCheckpointLog } from '../../src/audit/checkpoint-log.js';
import { Ledger } from '../../src/audit/ledger.js';
import { resolveSigningKey } from '../../src/audit/signing-keys.js';
import { appendRecords, copyDb, FakeClock, openLedger, tempDir } from './helpers.js';

function reasons(dir: string): string[] {
  return readCheckpointLog(join(dir, 'checkpoints.jsonl')).entries.map((c) => c.reason);
}

describe('Checkpointer', () => {
  it('seals every N records, at interval ticks, as an idle heartbeat and at shutdown', () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock } = openLedger(dir, { checkpointEvery: 100 });
    expect(reasons(dir)).toEqual(['start']); // the genesis record
    // At most one checkpoint per commit: each commit that reaches N records since the last seals.
    appendRecords(ledger, clock, 120);
    appendRecords(ledger, clock, 120, 120);
    expect(reasons(dir)).toEqual(['start', 'records', 'records']);
    appendRecords(ledger, clock, 10, 240);
    checkpointer.tick(); // 10 records since the last one
    expect(reasons(dir)).toEqual(['start', 'records', 'records', 'interval']);
    // Idle: heartbeat every 300 s with a 60 s tick → on the 5th idle tick.
    for (let i = 0; i < 4; i++) checkpointer.tick();
    expect(reasons(dir)).toHaveLength(4);
    clock.advance(300_000);
    checkpointer.tick();
    expect(reasons(dir).at(-1)).toBe('heartbeat');
    checkpointer.close();
    ledger.close();
    const { entries, problems } = readCheckpointLog(join(dir, 'checkpoints.jsonl'));
    expect(problems).toEqual([]);
    expect(entries.map((c) => c.reason).at(-1)).toBe('shutdown');
    expect(entries.map((c) => c.n)).toEqual(entries.map((_, i) => i + 1));
    expect(entries.at(-1)?.seq).toBe(251);
  });

  it('on the commit path hands the row to the writer thread, and logs only what committed', async () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock } = openLedger(dir, { checkpointEvery: 100 });
    expect(ledger.writer).toBe('thread');
    // No sync flush: the batch commits on the worker, the checkpoint row follows it there.
    for (let i = 0; i < 150; i++) {
      ledger.append({ time: clock.advance(1), source: 'redis', type: 'token.written' });
    }
    await vi.waitFor(() => expect(reasons(dir)).toEqual(['start', 'records']));
    const logged = readCheckpointLog(join(dir, 'checkpoints.jsonl')).entries.at(-1);
    expect(logged?.seq).toBe(151);
    // The database takes no writes: the next checkpoint stays out of the log too.
    ledger.pragma('query_only = 1');
    expect(checkpointer.checkpoint('interval')).toBeUndefined();
    expect(reasons(dir)).toEqual(['start', 'records']);
    expect(checkpointer.state().last?.n).toBe(2);
    ledger.pragma('query_only = 0');
    expect(checkpointer.checkpoint('interval')?.n).toBe(3);
    expect(reasons(dir)).toEqual(['start', 'records', 'interval']);
    checkpointer.close();
    ledger.close();
    const rows = new Database(join(dir, 'audit.db'), { readonly: true });
    expect(rows.prepare('SELECT count(*) AS n FROM checkpoints').get()).toEqual({ n: 4 });
    rows.close();
  });

  it('stores each checkpoint in the database and the log, signed and linked to the previous one', () => {
    const dir = tempDir();
    const { ledger, checkpointer, clock, key } = openLedger(dir, { checkpointEvery: 10 });
    appendRecords(ledger, clock, 35);
    checkpointer.close();
    const rows = ledger.db
      .prepare('SELECT n, seq, lower(hex(chain)) AS chain, key_id, sig FROM checkpoints ORDER BY n')
      .all() as {
      n: number;
      seq: number;
      chain: string;
      key_id: string;
      sig: Buffer;
    }[];
    const heads = ledger.db
      .prepare('SELECT seq, lower(hex(chain)) AS chain FROM records')
      .all() as { seq: number; chain: string }[];
    ledger.close();
    const { entries } = readCheckpointLog(join(dir, 'checkpoints.jsonl'));
    expect(entries).toHaveLength(rows.length);
    let prev: Checkpoint | undefined;
    for (const [i, c] of entries.entries()) {
      const row = rows[i]!;
      expect([c.n, c.seq, c.chain, c.keyId, c.sig]).toEqual([
        row.n,
        row.seq,
        row.chain,
        row.key_id,
        row.sig.toString('base64'),
      ]);
      expect(c.chain).toBe(heads.find((h) => h.seq === c.seq)?.chain);
      expect(c.keyId).toBe(key.keyId);
      expect(c.prev).toBe(prev?.sig ?? null);
      expect(checkpointSignatureValid(c, key.publicKey)).toBe(true);
      expect(checkpointSignatureValid({ ...c, seq: c.seq + 1 }, key.publicKey)).toBe(false);
      prev = c;
    }
  });

  it('seals at start what a crashed run left unsealed', () => {
    const dir = tempDir();
    const first = openLedger(dir, { checkpointEvery: 1000 });
    appendRecords(first.ledger, first.clock, 20);
    // crash: no shutdown checkpoint
    first.ledger.close();
    const second = openLedger(dir, { clock: first.clock });
    const { entries } = readCheckpointLog(join(dir, 'checkpoints.jsonl'));
    expect(entries.at(-1)).toMatchObject({ reason: 'start', seq: 21 });
    second.checkpointer.close();
    second.ledger.close();
  });

  it('publishes checkpoints the log missed, and refuses a log that is ahead of the database', () => {
    const dir = tempDir();
    const a = openLedger(dir, { checkpointEvery: 10 });
    appendRecords(a.ledger, a.clock, 30);
    a.checkpointer.close();
    a.ledger.close();
    const log = join(dir, 'checkpoints.jsonl');
    const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
    // The log lost its last two lines (e.g. written to another volume that lagged).
    writeFileSync(
      log,
      lines
        .slice(0, -2)
        .map((l) => `${l}\n`)
        .join(''),
    );
    copyDb(join(dir, 'audit.db'), join(dir, 'old.db'));
    const b = openLedger(dir, { clock: a.clock });
    expect(readCheckpointLog(log).entries).toHaveLength(lines.length);
    appendRecords(b.ledger, b.clock, 30, 30);
    b.checkpointer.close();
    b.ledger.close();
    // Now put the old database back: the log knows better.
    rmSync(join(dir, 'audit.db'));
    copyDb(join(dir, 'old.db'), join(dir, 'audit.db'));
    expect(() => openLedger(dir, { clock: a.clock })).toThrow(
      expect.objectContaining({
        code: 'ERR_LEDGER_INTEGRITY',
        message: expect.stringMatching(/rolled back/) as string,
      }) as Error,
    );
  });

  it('refuses a log of another ledger, and a database whose records end before its checkpoints', () => {
    const dir = tempDir();
    const a = openLedger(dir);
    a.checkpointer.close();
    a.ledger.close();
    rmSync(join(dir, 'audit.db'));
    expect(() => openLedger(dir)).toThrow(
      expect.objectContaining({
        code: 'ERR_LEDGER_INTEGRITY',
        message: expect.stringMatching(/belongs to ledger/) as string,
      }) as Error,
    );

    const dir2 = tempDir();
    const c = openLedger(dir2, { checkpointEvery: 5 });
    appendRecords(c.ledger, c.clock, 20);
    c.checkpointer.close();
    c.ledger.close();
    const db = new Database(join(dir2, 'audit.db'));
    db.exec('DROP TRIGGER records_no_delete');
    db.prepare('DELETE FROM records WHERE seq > 10').run();
    db.close();
    expect(() => openLedger(dir2)).toThrow(
      expect.objectContaining({ message: expect.stringMatching(/truncated/) as string }) as Error,
    );
  });

  it.runIf(existsSync('/dev/full'))(
    'keeps checkpoints in the database while the log cannot be written, and publishes them later',
    () => {
      const dir = tempDir();
      const clock = new FakeClock();
      const dbPath = join(dir, 'audit.db');
      const { key } = resolveSigningKey(undefined, dbPath);
      const opts = {
        everyRecords: 1000,
        intervalMs: 60_000,
        heartbeatMs: 60_000,
        now: clock.now,
        key,
      };
      const ledger = new Ledger({
        path: dbPath,
        batchSize: 100,
        flushIntervalMs: 5,
        maxPending: 10_000,
        hmacKeyIds: ['k'],
        now: clock.now,
      });
      // Every write to /dev/full fails with ENOSPC: the external log is unavailable.
      const broken = new Checkpointer({ ...opts, ledger, logPath: '/dev/full' });
      broken.start();
      expect(broken.state().logProblem).toMatch(/cannot append to checkpoint log/);
      broken.tick();
      expect(broken.state().unpublished).toBe(2); // start + heartbeat, retried on every tick
      broken.close();
      ledger.close();

      const reopened = new Ledger({
        path: dbPath,
        batchSize: 100,
        flushIntervalMs: 5,
        maxPending: 10_000,
        hmacKeyIds: ['k'],
        now: clock.now,
      });
      const logPath = join(dir, 'checkpoints.jsonl');
      const fixed = new Checkpointer({ ...opts, ledger: reopened, logPath });
      expect(fixed.state()).toMatchObject({ unpublished: 0, logProblem: undefined });
      fixed.close();
      reopened.close();
      const { entries } = readCheckpointLog(logPath);
      expect(entries.map((c) => c.reason)).toEqual(['start', 'heartbeat', 'shutdown', 'shutdown']);
    },
  );
});
