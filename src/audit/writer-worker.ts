import { workerData, type MessagePort } from 'node:worker_threads';
import { exposedReducingGc } from '../runtime/memory-release.js';
import { openLedgerFile } from './ledger-file.js';
import { insertSql, ROWS_PER_INSERT } from './row-writer.js';
import { INSERT_SEAL_SQL } from './seal.js';

/**
 * Worker entry of the ledger's writer thread (writer-thread.ts): owns a second connection to the
 * ledger file and commits the rows the event loop encoded and hashed, one transaction per batch,
 * in the order they arrive. After a failed batch it refuses the batches already sent behind it
 * (they chain from the one that failed) until the event loop says `resume`.
 */
export interface WriterWorkerData {
  path: string;
  port: MessagePort;
  /**
   * Int32 [0]: replies posted so far; the event loop Atomics.waits on it in a synchronous flush.
   * Int32 [1]: 1 once this thread exits (an exit event cannot reach a blocked event loop).
   */
  signal: SharedArrayBuffer;
}

export type WriterRequest =
  | { op: 'write'; id: number; args: unknown[]; seal?: unknown[] }
  | { op: 'pragma'; id: number; sql: string }
  | { op: 'exec'; id: number; sql: string; params: unknown[] }
  | { op: 'resume' }
  | { op: 'release' }
  | { op: 'close'; id: number };

export type WriterReply =
  | { id: number; ok: true }
  | { id: number; ok: false; message: string; code?: string; stale?: boolean };

const { path, port, signal } = workerData as WriterWorkerData;
const replies = new Int32Array(signal);
// The event loop opened (and migrated) the file first: this finds it current.
const db = openLedgerFile(path);
const many = db.prepare(insertSql(ROWS_PER_INSERT));
const one = db.prepare(insertSql(1));
const insertSeal = db.prepare(INSERT_SEAL_SQL);
// Rows and the seal of their head commit together: no committed row is ever without one.
const write = db.transaction((args: unknown[], seal: unknown[] | undefined) => {
  const width = ROWS_PER_INSERT * 9;
  let i = 0;
  // Positional arguments: an array argument binds ~2.5x slower (row-writer.ts).
  for (; i + width <= args.length; i += width) many.run(...args.slice(i, i + width));
  for (; i < args.length; i += 9) one.run(...args.slice(i, i + 9));
  if (seal) insertSeal.run(...seal);
});
let failed = false;
process.on('exit', () => {
  Atomics.store(replies, 1, 1);
  Atomics.notify(replies, 0);
});

function reply(r: WriterReply): void {
  port.postMessage(r);
  Atomics.add(replies, 0, 1);
  Atomics.notify(replies, 0);
}

/** Runs `work` and replies ok, or the error; returns whether it worked. */
function attempt(id: number, work: () => void): boolean {
  try {
    work();
  } catch (err) {
    const e = err as { message?: string; code?: unknown };
    reply({
      id,
      ok: false,
      message: e.message ?? String(err),
      ...(typeof e.code === 'string' ? { code: e.code } : {}),
    });
    return false;
  }
  reply({ id, ok: true });
  return true;
}

port.on('message', (m: WriterRequest) => {
  switch (m.op) {
    case 'write':
      if (failed) reply({ id: m.id, ok: false, message: 'an earlier batch failed', stale: true });
      else failed = !attempt(m.id, () => write(m.args, m.seal));
      return;
    case 'resume':
      failed = false;
      return;
    case 'release':
      // One memory-reducing GC of this thread's heap (src/runtime/memory-release.ts does the event
      // loop's): the batches a large baseline deserialized are garbage this idle thread would
      // keep. Only where serve set `--expose-gc`; otherwise nothing. No reply: nobody waits.
      exposedReducingGc()?.();
      return;
    case 'exec':
      // Not part of the chain (a checkpoint row): runs even after a failed batch.
      attempt(m.id, () => db.prepare(m.sql).run(...m.params));
      return;
    case 'pragma':
      attempt(m.id, () => db.pragma(m.sql));
      return;
    case 'close':
      attempt(m.id, () => db.close());
      port.close();
  }
});
