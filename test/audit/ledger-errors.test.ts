import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Ledger } from '../../src/audit/ledger.js';
import { TokenwatchError } from '../../src/errors.js';
import { DIST_TIMEOUT_MS, ensureDist } from './dist.js';
import { FakeClock, tempDir } from './helpers.js';

beforeAll(() => ensureDist(), DIST_TIMEOUT_MS); // the writer thread runs the compiled writer-worker.js

function open(dir: string): Ledger {
  const clock = new FakeClock();
  return new Ledger({
    path: join(dir, 'audit.db'),
    batchSize: 100,
    flushIntervalMs: 5,
    maxPending: 1000,
    hmacKeyIds: ['k1'],
    now: clock.now,
  });
}

describe('Ledger write errors on the writer thread', () => {
  it('a statement the worker refuses comes back as ERR_AUDIT_WRITE with its SQLite code', () => {
    const ledger = open(tempDir());
    expect(ledger.writer).toBe('thread');
    let error: Error | undefined;
    let answered = false;
    ledger.execAside('INSERT INTO no_such_table (x) VALUES (?)', [1], (err) => {
      answered = true;
      error = err;
    });
    ledger.settle();
    expect(answered).toBe(true);
    expect(error).toBeInstanceOf(TokenwatchError);
    expect(error).toMatchObject({
      code: 'ERR_AUDIT_WRITE',
      details: { sqliteCode: 'SQLITE_ERROR' },
    });
    ledger.close();
  });

  it('a full file degrades the ledger with a reason that starts with the SQLite code', async () => {
    const ledger = open(tempDir());
    expect(ledger.writer).toBe('thread');
    expect(ledger.flush()).toBe(true);
    ledger.pragma(`max_page_count = ${ledger.db.pragma('page_count', { simple: true }) as number}`);
    const durable = ledger.appendDurable([
      { time: 1, source: 'system', type: 'test.big', attrs: { pad: 'x'.repeat(64_000) } },
    ]);
    await expect(durable).rejects.toMatchObject({ code: 'ERR_AUDIT_DEGRADED' });
    expect(ledger.state()).toMatchObject({ degraded: true });
    expect(ledger.state().degradedReason).toMatch(/^SQLITE_FULL: /);
    ledger.close();
  });
});
