import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Ledger } from '../../src/audit/ledger.js';
import type { AuditInput } from '../../src/audit/record.js';
import { memoryReducingGc } from '../../src/runtime/memory-release.js';
import { DIST_TIMEOUT_MS, ensureDist } from './dist.js';
import { FakeClock, tempDir } from './helpers.js';

beforeAll(() => ensureDist(), DIST_TIMEOUT_MS); // the writer thread runs the compiled writer-worker.js

const record = (i: number, t: number): AuditInput => ({
  time: t,
  source: 'redis',
  type: 'token.present',
  kind: 'access_token',
  attrs: { i, note: `baseline record ${i} `.repeat(8) },
});

describe('Ledger.releaseWriterMemory', () => {
  it('has the writer thread collect the garbage of a burst; inline there is no thread to ask', async () => {
    // Sets --expose-gc for this test process (vitest runs each file in a process of its own),
    // as serve does for the service.
    memoryReducingGc();
    const dir = tempDir();
    const clock = new FakeClock();
    const ledger = new Ledger({
      path: join(dir, 'audit.db'),
      batchSize: 1000,
      flushIntervalMs: 5,
      maxPending: 200_000,
      hmacKeyIds: ['k1'],
      now: clock.now,
    });
    expect(ledger.writer).toBe('thread');
    // A baseline-sized burst: every batch the thread deserialized is garbage once committed.
    for (let b = 0; b < 60; b++) {
      const batch = Array.from({ length: 1000 }, (_, k) => record(b * 1000 + k, clock.now()));
      await ledger.appendDurable(batch);
    }
    const before = await ledger.writerHeap();
    expect(before).toBeDefined();
    expect(ledger.releaseWriterMemory()).toBe(true);
    let after = before;
    for (let i = 0; i < 50 && (after?.totalHeapSize ?? 0) >= (before?.totalHeapSize ?? 0); i++) {
      await new Promise((r) => setTimeout(r, 20));
      after = await ledger.writerHeap();
    }
    expect(after?.totalHeapSize).toBeLessThan(before?.totalHeapSize ?? 0);
    expect(after?.usedHeapSize).toBeLessThanOrEqual(before?.usedHeapSize ?? 0);
    // The thread still writes afterwards.
    await ledger.appendDurable([record(-1, clock.now())]);
    ledger.close();

    const inline = new Ledger({
      path: ':memory:',
      batchSize: 10,
      flushIntervalMs: 5,
      maxPending: 100,
      hmacKeyIds: ['k1'],
    });
    expect(inline.releaseWriterMemory()).toBe(false);
    expect(await inline.writerHeap()).toBeUndefined();
    inline.close();
  });
});
