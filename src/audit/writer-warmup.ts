import { createHash } from 'node:crypto';
import type { AuditInput } from './record.js';
import { RowWriter } from './row-writer.js';

/** Records encoded per turn of the writer thread's event loop while it warms up. */
const CHUNK = 250;
/** Turns: V8 optimises the encoder after a few thousand records. */
const TURNS = 16;

/** A `token.*` record shaped as the keyspace recorder writes them (nothing of it is stored). */
function sample(i: number, now: number): AuditInput {
  const fingerprint = `hmac-sha256:warm:${createHash('sha256').update(String(i)).digest('hex')}`;
  const written = i % 4 !== 3;
  return {
    time: now,
    source: 'redis',
    type: written ? 'token.written' : 'token.deleted',
    kind: 'access_token',
    fingerprint,
    attrs: written
      ? {
          db: 0,
          dueAt: now + 3_600_000,
          key: { token: fingerprint },
          node: '127.0.0.1:6379',
          redisEvent: 'set',
          ttlMs: 3_600_000,
        }
      : { db: 0, key: { token: fingerprint }, node: '127.0.0.1:6379', redisEvent: 'del' },
  };
}

/**
 * Runs the writer thread's encoder (canonical text, leaf and chain hashes, storage encoding)
 * over synthetic records, a chunk per turn, so that V8 has optimised it before the first real
 * batches: the thread is new at every start, and a cold encoder added tens of milliseconds to
 * the first seconds' commit latency (benchmark scenario 2). Nothing is written; batches that
 * arrive meanwhile are handled between chunks.
 */
export async function warmUpEncoder(): Promise<void> {
  const rows = new RowWriter(undefined);
  const now = Date.now();
  const chain = Buffer.alloc(32);
  for (let turn = 0; turn < TURNS; turn++) {
    rows.begin(0, chain, now);
    for (let i = 0; i < CHUNK; i++) rows.add(sample(turn * CHUNK + i, now));
    rows.end();
    await new Promise((resolve) => setImmediate(resolve));
  }
}
