import { workerData, type MessagePort } from 'node:worker_threads';
import { exposedReducingGc } from '../runtime/memory-release.js';
import { openLedgerFile } from './ledger-file.js';
import { chainBatch, sealRow } from './batch-encoder.js';
import type { AuditInput } from './record.js';
import { chainLeaves, RowWriter, type EncodeMismatch } from './row-writer.js';
import { INSERT_SEAL_SQL } from './seal.js';
import { warmUpEncoder } from './writer-warmup.js';
import type { SigningKey } from './signing-keys.js';
import { decodeTokens, type TokenColumns } from './token-record.js';

/**
 * Worker entry of the ledger's writer thread (writer-thread.ts): owns a second connection to the
 * ledger file and commits batches, one transaction per batch, in the order they arrive. It owns
 * the chain: it hashes each batch after the one before (or after the head the event loop names),
 * signs the head and returns its chain hash. The records come planned (`chain`: seqs and clock
 * decided on the event loop, batch-encoder.ts; encoded and hashed here) or encoded with their
 * leaf hashes (`leaves`: only chained here); threaded-committer.ts says which when. After a
 * failed batch it refuses the batches already sent behind it (they chain from the one that
 * failed) until the event loop says `resume`.
 */
export interface WriterWorkerData {
  path: string;
  port: MessagePort;
  /**
   * Int32 [0]: replies posted so far; the event loop Atomics.waits on it in a synchronous flush.
   * Int32 [1]: 1 once this thread exits (an exit event cannot reach a blocked event loop).
   */
  signal: SharedArrayBuffer;
  /** The ledger's id and the key that signs each batch head, when the ledger seals. */
  seal?: { ledgerId: string; key: SigningKey };
}

/** Where a batch chains on: the seq and chain hash of the record before it. */
export interface ChainAfter {
  seq: number;
  chain: Uint8Array;
}

export type WriterRequest =
  | {
      op: 'chain';
      id: number;
      /**
       * The record the batch chains after; absent: after the batch posted before it, which the
       * event loop omits only while that batch is in flight (so it is known here).
       */
      after?: ChainAfter;
      /** The batch's clock (replaces non-finite record times; the seal's time). */
      clock: number;
      /** Seq the batch's last record must get (the event loop's plan). */
      seq: number;
      /** The records, to be encoded and hashed here: as structured-clone copies, or */
      inputs?: AuditInput[];
      /** as columns (token records only, Ledger.appendToken; token-record.ts). */
      tokens?: TokenColumns;
    }
  | {
      op: 'leaves';
      id: number;
      after?: ChainAfter;
      clock: number;
      seq: number;
      /** The rows the event loop encoded, each with its full leaf hash (RowWriter.beginLeaves). */
      args: unknown[];
    }
  | { op: 'pragma'; id: number; sql: string }
  | { op: 'exec'; id: number; sql: string; params: unknown[] }
  | { op: 'resume' }
  | { op: 'release' }
  | { op: 'close'; id: number };

export type WriterReply =
  | {
      id: number;
      ok: true;
      /** For a `chain` batch: its head's chain hash (hex). */
      chain?: string;
      /** For a `chain` batch: records whose sampled decode check failed (row-writer.ts). */
      mismatches?: EncodeMismatch[];
      /**
       * For a batch: how long (ms) this thread's event loop was active out of `spanMs` since its
       * previous batch reply (the batch, its fsync, messages): how the event loop learns whether
       * this thread keeps up.
       */
      activeMs?: number;
      spanMs?: number;
      /** For a batch: this thread's RowWriter.uncheckedFrom after it. */
      uncheckedFrom?: number;
    }
  | { id: number; ok: false; message: string; code?: string; stale?: boolean };

const { path, port, signal, seal: sealing } = workerData as WriterWorkerData;
const replies = new Int32Array(signal);
// The event loop opened (and migrated) the file first: this finds it current.
const db = openLedgerFile(path);
const insertSeal = db.prepare(INSERT_SEAL_SQL);
/** Records whose sampled decode check failed in the batch being chained. */
let mismatches: EncodeMismatch[] = [];
const rows = new RowWriter(db, (m) => mismatches.push(m));
/** The head of the last batch committed here: where a batch without `after` chains on. */
let tip: { seq: number; chain: Buffer } | undefined;

type Batch = Extract<WriterRequest, { op: 'chain' | 'leaves' }>;

/** Where `m` chains on. */
function afterOf(m: Batch): { seq: number; chain: Buffer } {
  const after = m.after ? { seq: m.after.seq, chain: Buffer.from(m.after.chain) } : tip;
  if (!after) throw new Error('no chain position for a batch (a tokenwatch bug)');
  return after;
}

/** Inserts leaves-only rows chained after `after`; returns the head. */
function insertLeaves(m: Extract<Batch, { op: 'leaves' }>, after: { seq: number; chain: Buffer }) {
  const { args } = m;
  if (args[0] !== after.seq + 1) throw new Error('rows do not follow the head (a tokenwatch bug)');
  const chain = chainLeaves(args, after.chain.toString('hex'));
  rows.insertRows(args);
  return { seq: args[args.length - 9] as number, chain: Buffer.from(chain, 'hex') };
}

/** A `chain` batch's records, as posted (a message with neither is a tokenwatch bug). */
function inputsOf(m: Extract<Batch, { op: 'chain' }>): AuditInput[] {
  if (m.tokens !== undefined) return decodeTokens(m.tokens);
  if (m.inputs) return m.inputs;
  throw new Error('a chain batch without records (a tokenwatch bug)');
}

// Rows and the seal of their head commit together: no committed row is ever without one.
const commit = db.transaction((m: Batch) => {
  const after = afterOf(m);
  const head =
    m.op === 'chain' ? chainBatch(rows, after, m.clock, inputsOf(m)) : insertLeaves(m, after);
  if (head.seq !== m.seq) {
    throw new Error(`batch chained to seq ${head.seq}, planned ${m.seq} (a tokenwatch bug)`);
  }
  if (sealing) {
    insertSeal.run(...sealRow(sealing.ledgerId, sealing.key, head.seq, head.chain, m.clock));
  }
  return head;
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

/** Runs `work` and replies ok (with what it returns), or the error; returns whether it worked. */
function attempt(id: number, work: () => Partial<WriterReply> | void): boolean {
  let extra: Partial<WriterReply> | void;
  try {
    extra = work();
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
  reply({ ...extra, id, ok: true });
  return true;
}

/** This thread's event loop utilisation since its previous batch reply began here. */
let loadMark = performance.eventLoopUtilization();

/** Chains, inserts and seals a batch; the tip moves only when it committed. */
function commitBatch(m: Batch): Partial<WriterReply> {
  mismatches = [];
  const head = commit(m);
  tip = head;
  const found = mismatches;
  mismatches = [];
  const load = performance.eventLoopUtilization(loadMark);
  loadMark = performance.eventLoopUtilization();
  const r: Partial<WriterReply> = {
    chain: head.chain.toString('hex'),
    activeMs: load.active,
    spanMs: load.idle + load.active,
    ...(rows.uncheckedFrom === undefined ? {} : { uncheckedFrom: rows.uncheckedFrom }),
  };
  return found.length > 0 ? { ...r, mismatches: found } : r;
}

port.on('message', (m: WriterRequest) => {
  switch (m.op) {
    case 'chain':
    case 'leaves':
      if (failed) reply({ id: m.id, ok: false, message: 'an earlier batch failed', stale: true });
      else failed = !attempt(m.id, () => commitBatch(m));
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
      attempt(m.id, () => {
        db.prepare(m.sql).run(...m.params);
      });
      return;
    case 'pragma':
      attempt(m.id, () => {
        db.pragma(m.sql);
      });
      return;
    case 'close':
      attempt(m.id, () => {
        db.close();
      });
      port.close();
  }
});

// The warm-up's work is not load: the first replies report from its end on.
void warmUpEncoder().then(() => {
  loadMark = performance.eventLoopUtilization();
});
