/**
 * Heap bytes per tracked token of the correlator, and of the inventory, alone (issue #16.4), under churn:
 * `node --expose-gc dist/bench/correlator-memory.js [liveTokens...]`. Each run writes the live
 * set, then churns it (delete + write of as many tokens again) so the ended-token memory is at
 * its steady state too, and reports heap growth per live token with the structure sizes.
 */
import { createHash } from 'node:crypto';
import { Correlator } from '../correlate/index.js';
import { Inventory } from '../keyspace/inventory.js';
import type { TokenEvent } from '../domain/token-event.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const fp = (n: number): string =>
  `hmac-sha256:k1:${createHash('sha256').update(`t${n}`).digest('hex')}`;

function event(type: TokenEvent['type'], n: number, at: number): TokenEvent {
  const f = fp(n);
  return {
    type,
    kind: 'access_token',
    fingerprint: f,
    keyAttrs: { token: f },
    node: '127.0.0.1:6379',
    db: 0,
    observedAt: at,
    redisEvent: type === 'written' ? 'set' : 'del',
    ...(type === 'written' ? { dueAt: at + 3_600_000, ttlMs: 3_600_000 } : {}),
  };
}

function heap(): number {
  gc!();
  gc!();
  return process.memoryUsage().heapUsed;
}

/** Typed-array columns (inventory pages, live and ended token slots) live outside the V8 heap. */
function arrayBuffers(): number {
  return process.memoryUsage().arrayBuffers;
}

for (const live of (process.argv.slice(2).length
  ? process.argv.slice(2)
  : ['100000', '500000']
).map(Number)) {
  // The inventory's share for as many live tokens (src/keyspace/token-table.ts).
  const inv = new Inventory(['access_token'], 'hmac-sha256:k1:');
  const invBefore = heap();
  const invBuffers = arrayBuffers();
  for (let i = 0; i < live; i++)
    inv.set('access_token', fp(i), { due: 3_600_000 + i, written: i, node: 0 });
  const invAfter = heap();
  const invColumns = arrayBuffers() - invBuffers;
  let t = Date.UTC(2026, 11, 3);
  const clock = { now: () => t };
  const before = heap();
  const buffersBefore = arrayBuffers();
  const c = new Correlator(
    {
      kinds: [{ kind: 'access_token', joins: { tokenId: 'token' } }],
      limits: { maxTrackedTokens: live * 2 },
    },
    { clock },
  );
  let next = 0;
  for (; next < live; next++) c.onTokenEvent(event('written', next, t++), next + 1);
  const written = heap();
  const liveColumns = arrayBuffers() - buffersBefore;
  // Churn: replace every live token once (delete the oldest, write a new one).
  for (let i = 0; i < live; i++) {
    c.onTokenEvent(event('deleted', i, t), undefined);
    c.onTokenEvent(event('written', next++, t++), undefined);
    if (i % 1000 === 0) c.tick();
  }
  const after = heap();
  const columns = arrayBuffers() - buffersBefore;
  const s = c.stats().sizes;
  process.stdout.write(
    `${JSON.stringify({
      liveTokens: s.liveTokens,
      bytesPerLiveTokenNoChurn: Math.round((written - before) / live),
      endedTokens: s.endedTokens,
      bytesPerEndedToken: Math.round((after - written) / Math.max(1, s.endedTokens)),
      bytesPerLiveTokenUnderChurn: Math.round((after - before) / s.liveTokens),
      bytesPerLiveTokenOutsideHeap: Math.round(liveColumns / live),
      bytesPerEndedTokenOutsideHeap: Math.round(
        (columns - liveColumns) / Math.max(1, s.endedTokens),
      ),
      inventoryHeapBytesPerToken: Math.round((invAfter - invBefore) / inv.size('access_token')),
      inventoryBytesPerTokenOutsideHeap: Math.round(invColumns / live),
      // Everything per live token under churn: correlator (live + ended, heap + columns) and inventory.
      allInBytesPerLiveToken: Math.round(
        (after - before + columns + invAfter - invBefore + invColumns) / s.liveTokens,
      ),
    })}\n`,
  );
  void c;
}
