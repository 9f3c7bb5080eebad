import { join } from 'node:path';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { Ledger } from '../../src/audit/ledger.js';
import { KeyspaceRecorder, ROOM_WAIT_MAX_MS } from '../../src/keyspace/recorder.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { tempDir } from '../audit/helpers.js';

/**
 * KeyspaceRecorder.room (WatcherSink.room), the keyspace watchers' backpressure, against a real
 * ledger whose queue depth is set through its state(): a writer that neither commits nor fails
 * (a hung disk) cannot be made for real here. test/keyspace/ledger-backpressure.redis.test.ts
 * runs it end to end with a stalled writer.
 */
let ledger: Ledger;
let recorder: KeyspaceRecorder;
let pending = 0;

beforeEach(() => {
  ledger = new Ledger({
    path: join(tempDir(), 'audit.db'),
    batchSize: 100,
    flushIntervalMs: 5,
    maxPending: 2000,
    hmacKeyIds: ['k1'],
    writerThread: false,
  });
  recorder = new KeyspaceRecorder(
    ledger,
    createMetrics(['access_token'], { defaultMetrics: false }),
    0,
  );
  recorder.setQueueLimit(2000);
  const real = ledger.state.bind(ledger);
  pending = 0;
  vi.spyOn(ledger, 'state').mockImplementation(() => ({ ...real(), pending }));
  vi.useFakeTimers({ toFake: ['setTimeout', 'performance'] });
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  ledger.close();
});

const never = () => false;

/** Whether `p` settled within `ms` of (fake) time. */
async function settledWithin(p: Promise<void>, ms: number): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await vi.advanceTimersByTimeAsync(ms);
  return done;
}

it('waits only while more than a twentieth of audit.maxPending records wait to commit', async () => {
  expect(recorder.roomAbove).toBe(100);
  pending = 100;
  expect(recorder.room('n:1', never)).toBeUndefined();
  pending = 101;
  const wait = recorder.room('n:1', never);
  expect(wait).toBeInstanceOf(Promise);
  expect(await settledWithin(wait!, 500)).toBe(false);
  pending = 60;
  expect(await settledWithin(wait!, 5)).toBe(true);
});

it('ends the wait when the watcher closes, and does not wait for a closing one', async () => {
  pending = 5000;
  let closed = false;
  const wait = recorder.room('n:1', () => closed);
  expect(await settledWithin(wait!, 100)).toBe(false);
  closed = true;
  expect(await settledWithin(wait!, 5)).toBe(true);
  expect(recorder.room('n:1', () => true)).toBeUndefined();
});

it('does not wait on a degraded ledger', async () => {
  pending = 5000;
  const degraded = vi.spyOn(ledger, 'degraded', 'get').mockReturnValue(true);
  expect(recorder.room('n:1', never)).toBeUndefined();
  const wait = recorder.room('n:1', never);
  expect(wait).toBeUndefined();
  degraded.mockReturnValue(false);
  const again = recorder.room('n:1', never);
  expect(again).toBeInstanceOf(Promise);
  degraded.mockReturnValue(true); // the writer failed meanwhile: the wait ends
  expect(await settledWithin(again!, 5)).toBe(true);
});

it('gives up after ROOM_WAIT_MAX_MS of a writer that neither commits nor fails, until the queue is under the bound again', async () => {
  pending = 5000;
  const wait = recorder.room('n:1', never);
  expect(await settledWithin(wait!, ROOM_WAIT_MAX_MS - 50)).toBe(false);
  expect(await settledWithin(wait!, 100)).toBe(true);
  // The ledger's own bound applies meanwhile: no more waits while it stays over.
  expect(recorder.room('n:1', never)).toBeUndefined();
  expect(recorder.room('n:1', never)).toBeUndefined();
  pending = 10;
  expect(recorder.room('n:1', never)).toBeUndefined();
  pending = 5000;
  expect(recorder.room('n:1', never)).toBeInstanceOf(Promise);
});
