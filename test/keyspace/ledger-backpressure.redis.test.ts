import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startApp, waitFor, type Harness } from '../helpers/app-harness.js';

/**
 * Backpressure from the ledger to the keyspace watcher (WatcherSink.room): while the writer
 * cannot commit (here another connection holds the file's write lock, as a slow disk or a
 * burst beyond the writer's pace would), the watcher stops applying notifications once the
 * ledger holds audit.maxPending / 20 records. The backlog waits, compact, in the node's
 * notification queue instead of filling the ledger's bounded queue, which drops records past
 * audit.maxPending. Once the writer commits again every token is recorded: nothing dropped, no
 * gap. Each test holds the lock for a second or so, well under the ledger's busy_timeout (5 s),
 * past which the writer would fail and the ledger degrade (and not be waited for).
 */
let redis: RedisServer;
let h: Harness | undefined;
let c: Redis;
let lock: Database.Database | undefined;

beforeAll(async () => {
  redis = await startRedis();
  c = redis.client();
});

afterEach(async () => {
  if (lock?.inTransaction) lock.exec('COMMIT');
  lock?.close();
  lock = undefined;
  await h?.stop();
  h = undefined;
  await c.flushall();
});

afterAll(async () => {
  await redis?.stop();
});

const MAX_PENDING = 10_000;
const TOKENS = 12_000; // more than MAX_PENDING: without the backpressure, records would drop
const MAX_CHUNK = 5000; // node-watcher.ts: notifications applied after one wait

/** tokenwatch on `redis` with audit.maxPending MAX_PENDING, its one watcher baselined. */
async function startWatching(redisLines: string[] = []) {
  h = startApp(redis.url, { audit: [`maxPending: ${MAX_PENDING}`], redis: redisLines });
  const { app } = h;
  await app.whenReady();
  const w = app.watchers[0]!;
  await waitFor(() => w.subscribed && w.baselined && !w.reconciling, 30_000, 'baselined');
  return { app, w };
}

async function writeTokens(n: number): Promise<void> {
  for (let i = 0; i < n; i += 1000) {
    const p = c.pipeline();
    for (let j = i; j < Math.min(n, i + 1000); j++) p.set(`oauth:access:bp${j}`, 'v', 'EX', 3600);
    await p.exec();
  }
}

it('holds the backlog in the notification queue while the ledger cannot commit, and loses nothing', async () => {
  const { app, w } = await startWatching();
  const roomAbove = app.recorder.roomAbove;
  expect(roomAbove).toBe(MAX_PENDING / 20);

  lock = new Database(app.ledger.path);
  lock.exec('BEGIN IMMEDIATE'); // the writer's next commit waits (busy_timeout 5 s)
  let maxPending = 0;
  let maxWaiting = 0;
  const sampler = setInterval(() => {
    maxPending = Math.max(maxPending, app.ledger.state().pending);
    maxWaiting = Math.max(maxWaiting, w.waiting);
  }, 2);
  try {
    await writeTokens(TOKENS);
    // SET EX: `set` and `expire`, two notifications per token, one record.
    await waitFor(() => w.waiting >= 2 * TOKENS - 2 * (roomAbove + MAX_CHUNK), 10_000, 'backlog');
    expect(app.ledger.state().pending).toBeGreaterThan(roomAbove);
    expect(app.ledger.state().degraded).toBe(false);
    // The backlog shows where it waits.
    const text = await app.metrics.registry.metrics();
    const line = text
      .split('\n')
      .find((l) => l.startsWith(`tokenwatch_keyspace_notifications_waiting{node="${w.label}"}`));
    expect(Number(line?.split(' ').at(-1))).toBeGreaterThan(TOKENS);
  } finally {
    lock.exec('COMMIT');
  }
  // Every notification applied (the last chunk may still be in its look-up when the queue is
  // empty), then every record committed.
  await waitFor(() => w.waiting === 0, 30_000, 'applied');
  await app.settle();
  await waitFor(() => app.ledger.state().pending === 0, 30_000, 'committed');
  clearInterval(sampler);

  // While stalled the ledger never held more than one chunk past the bound.
  expect(maxPending).toBeGreaterThan(roomAbove);
  expect(maxPending).toBeLessThanOrEqual(roomAbove + MAX_CHUNK);
  expect(maxWaiting).toBeGreaterThan(TOKENS);
  // Nothing lost: every token recorded once, no record dropped, no gap, no overflow.
  expect(app.ledger.state().droppedTotal).toBe(0);
  expect(app.ledger.list({ type: 'keyspace.gap' })).toEqual([]);
  expect(app.ledger.list({ type: 'token.written' })).toHaveLength(TOKENS);
  expect(app.inventory.size('access_token')).toBe(TOKENS);
}, 90_000);

it('stops waiting for room when the watcher closes, and applies what already arrived', async () => {
  const { app, w } = await startWatching();

  lock = new Database(app.ledger.path);
  lock.exec('BEGIN IMMEDIATE');
  await writeTokens(6000);
  await waitFor(
    () => w.waiting > 0 && app.ledger.state().pending > app.recorder.roomAbove,
    10_000,
    'waiting for room',
  );
  const waiting = w.waiting;
  const closed = w.close();
  // close() waits up to 2 s for the backlog, then applies the rest without look-ups: it
  // resolves while the ledger still cannot commit, the backlog applied, not left behind.
  const t0 = Date.now();
  await closed;
  expect(Date.now() - t0).toBeLessThan(5000);
  expect(w.waiting).toBe(0);
  expect(app.ledger.state().pending).toBeGreaterThanOrEqual(waiting / 2);
  lock.exec('COMMIT');
  await waitFor(() => app.ledger.state().pending === 0, 30_000, 'committed');
  expect(app.ledger.state().droppedTotal).toBe(0);
  expect(app.ledger.list({ type: 'token.written' })).toHaveLength(6000);
}, 90_000);

it('drops and reconciles a backlog that overflows while it waits for room: the inventory ends equal to Redis', async () => {
  const { app, w } = await startWatching(['maxPendingNotifications: 1000']);

  lock = new Database(app.ledger.path);
  lock.exec('BEGIN IMMEDIATE');
  try {
    await writeTokens(5000); // 10 000 notifications against a backlog of at most 1 000
    await waitFor(
      () => app.ledger.state().pending > app.recorder.roomAbove,
      10_000,
      'waiting for room',
    );
  } finally {
    lock.exec('COMMIT');
  }
  await waitFor(
    () => app.ledger.list({ type: 'keyspace.gap' }).length > 0 && !w.reconciling,
    30_000,
    'reconciled',
  );
  await app.settle();
  await waitFor(() => app.ledger.state().pending === 0, 30_000, 'committed');
  // One gap per overflow (the backlog may overflow again while the first one reconciles).
  const reasons = app.ledger.list({ type: 'keyspace.gap' }).map((r) => r.attrs.reason);
  expect(reasons.length).toBeGreaterThan(0);
  expect(new Set(reasons)).toEqual(new Set(['backlog_overflow']));
  expect(app.ledger.state().droppedTotal).toBe(0);
  expect(app.inventory.size('access_token')).toBe(await c.dbsize());
}, 90_000);
