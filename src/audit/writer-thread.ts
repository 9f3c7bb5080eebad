import {
  MessageChannel,
  receiveMessageOnPort,
  Worker,
  type MessagePort,
} from 'node:worker_threads';
import type { AuditInput } from './record.js';
import type { SigningKey } from './signing-keys.js';
import type { TokenColumns } from './token-record.js';
import type { ChainAfter, WriterReply, WriterRequest, WriterWorkerData } from './writer-worker.js';

/**
 * A synchronous wait gives up after this long without a reply. Node delivers a worker's exit as
 * an event, which cannot run while the event loop blocks: the worker raises a flag in the shared
 * buffer as it exits; a worker that neither answers nor exits is declared dead (and terminated)
 * after this rather than waited for forever. busy_timeout (5 s) plus a slow fsync fit.
 */
const WAIT_LIMIT_MS = 60_000;

/** The `after` of a batch request, in a buffer of its own (not a view of Node's 8 KiB pool). */
function afterField(after: ChainAfter | undefined): { after?: ChainAfter } {
  return after ? { after: { seq: after.seq, chain: Uint8Array.from(after.chain) } } : {};
}

/**
 * The event loop's side of the ledger's writer thread: posts batches to a worker that chains,
 * INSERTs, seals and COMMITs them (hashing the chain, SQLite and fsync off the event loop),
 * encoding them first when the event loop only planned them, and gets one reply per request,
 * in order. Replies arrive as messages (`onReply`), or synchronously through `waitReply` (a
 * synchronous flush or close: Atomics.wait on a shared counter, then receiveMessageOnPort).
 */
export class WriterThread {
  readonly #worker: Worker;
  readonly #port: MessagePort;
  readonly #replies: Int32Array;
  /** Every request posted with an id gets exactly one reply, in id order. */
  #nextId = 1;
  #answered = 0;
  #dead: string | undefined;
  #onReply: (r: WriterReply) => void = () => undefined;
  #onDeath: (reason: string) => void = () => undefined;

  /** `seal`: the ledger's id and the key that signs each batch head, when the ledger seals. */
  constructor(path: string, url: URL, seal?: { ledgerId: string; key: SigningKey }) {
    const { port1, port2 } = new MessageChannel();
    const signal = new SharedArrayBuffer(8);
    this.#replies = new Int32Array(signal);
    this.#port = port1;
    // The private key goes to the worker as a KeyObject (structured clone), never as text.
    const data: WriterWorkerData = { path, port: port2, signal, ...(seal ? { seal } : {}) };
    // No execArgv of ours (e.g. --input-type): a worker refuses some flags the process took.
    this.#worker = new Worker(url, { workerData: data, transferList: [port2], execArgv: [] });
    this.#port.on('message', (r: WriterReply) => this.#deliver(r));
    this.#worker.on('error', (err) => this.#die(`writer thread failed: ${err.message}`));
    this.#worker.on('exit', (code) => this.#die(`writer thread exited with code ${code}`));
    this.#idle();
  }

  /** Set by the ledger: called for each reply delivered asynchronously or by waitReply. */
  set onReply(fn: (r: WriterReply) => void) {
    this.#onReply = fn;
  }

  /** Set by the ledger: called once when the worker is gone (its outstanding writes failed). */
  set onDeath(fn: (reason: string) => void) {
    this.#onDeath = fn;
  }

  /** Why the worker is gone, or undefined while it runs. */
  get dead(): string | undefined {
    return this.#dead;
  }

  get outstanding(): number {
    return this.#nextId - 1 - this.#answered;
  }

  /** Id of the last request posted (0 before any). */
  get lastPosted(): number {
    return this.#nextId - 1;
  }

  /** Id of the last request answered: replies come in request order. */
  get lastAnswered(): number {
    return this.#answered;
  }

  /**
   * Posts rows the event loop encoded with their leaf hashes (RowWriter.beginLeaves), which the
   * worker chains after `after` (or the batch posted before), inserts and seals in one
   * transaction; returns its request id.
   */
  leaves(after: ChainAfter | undefined, clock: number, seq: number, args: unknown[]): number {
    return this.#post((id) => ({ op: 'leaves', id, clock, seq, args, ...afterField(after) }));
  }

  /**
   * Posts a planned batch (batch-encoder.ts) that the worker encodes, hashes, inserts and seals
   * in one transaction, after `after` or, without it, after the batch posted before; returns its
   * request id. Throws what postMessage throws (a DataCloneError) before anything was posted.
   */
  chain(
    after: ChainAfter | undefined,
    clock: number,
    records: AuditInput[] | { tokens: TokenColumns },
    seq: number,
  ): number {
    const body = Array.isArray(records) ? { inputs: records } : { tokens: records.tokens };
    return this.#post((id) => ({ op: 'chain', id, clock, ...body, seq, ...afterField(after) }));
  }

  /** Posts one statement outside the chain (a checkpoint row); returns its request id. */
  exec(sql: string, params: unknown[]): number {
    // A small Buffer is a view of an 8 KiB pool that postMessage would copy whole.
    const own = params.map((p) => (Buffer.isBuffer(p) ? Uint8Array.from(p) : p));
    return this.#post((id) => ({ op: 'exec', id, sql, params: own }));
  }

  /** After a failed write: the worker accepts writes again (the ones already sent stay refused). */
  resume(): void {
    if (!this.#dead) this.#port.postMessage({ op: 'resume' } satisfies WriterRequest);
  }

  /** Asks the worker for a memory-reducing GC of its heap (writer-worker.ts); no reply. */
  releaseMemory(): boolean {
    if (this.#dead) return false;
    this.#port.postMessage({ op: 'release' } satisfies WriterRequest);
    return true;
  }

  /** The worker's V8 heap (diagnostics, tests); undefined once it is gone. */
  async heapStatistics(): Promise<{ usedHeapSize: number; totalHeapSize: number } | undefined> {
    if (this.#dead) return undefined;
    const h = await this.#worker.getHeapStatistics();
    return { usedHeapSize: h.used_heap_size, totalHeapSize: h.total_heap_size };
  }

  /** Runs a PRAGMA on the worker's connection and waits for it (fault drills set max_page_count). */
  pragmaSync(sql: string): void {
    const id = this.#post((id) => ({ op: 'pragma', id, sql }));
    const r = this.#waitFor(id);
    if (!r.ok) throw new Error(r.message);
  }

  /** Blocks until the next reply arrives and delivers it; false when the worker is gone. */
  waitReply(): boolean {
    for (;;) {
      const m = receiveMessageOnPort(this.#port);
      if (m) {
        this.#deliver(m.message as WriterReply);
        return true;
      }
      if (this.#dead || this.outstanding === 0) return false;
      if (Atomics.load(this.#replies, 1) === 1) {
        this.#die('writer thread exited without answering');
        return false;
      }
      // [0] counts the replies posted: the k-th reply answers request k.
      if (Atomics.wait(this.#replies, 0, this.#answered, WAIT_LIMIT_MS) === 'timed-out') {
        this.#die(`writer thread did not answer within ${WAIT_LIMIT_MS / 1000} s`);
        return false;
      }
    }
  }

  /** Closes the worker's connection (after its outstanding writes) and ends the thread. */
  close(): void {
    if (this.#dead) return;
    const id = this.#post((id) => ({ op: 'close', id }));
    this.#waitFor(id);
    this.#dead = 'closed';
    this.#port.close();
    void this.#worker.terminate();
  }

  /** Posts the request `make` builds around the next id; returns the id. */
  #post(make: (id: number) => WriterRequest & { id: number }): number {
    if (this.#dead) throw new Error(this.#dead);
    const m = make(this.#nextId);
    this.#port.postMessage(m); // may throw (DataCloneError): then no id was used
    this.#nextId++;
    if (this.outstanding === 1) this.#busy();
    return m.id;
  }

  #waitFor(id: number): WriterReply {
    let mine: WriterReply | undefined;
    const previous = this.#onReply;
    this.#onReply = (r) => {
      if (r.id === id) mine = r;
      else previous(r);
    };
    try {
      while (mine === undefined && this.waitReply());
    } finally {
      this.#onReply = previous;
    }
    return mine ?? { id, ok: false, message: this.#dead ?? 'writer thread is gone' };
  }

  #deliver(r: WriterReply): void {
    if (this.#dead) return; // a reply after the worker was given up on: the ledger reads the file
    this.#answered = r.id;
    if (this.outstanding === 0) this.#idle();
    this.#onReply(r);
  }

  #die(reason: string): void {
    if (this.#dead) return;
    this.#dead = reason;
    this.#answered = this.#nextId - 1;
    this.#idle();
    this.#port.close();
    void this.#worker.terminate();
    this.#onDeath(reason);
  }

  /** While a write is outstanding the process stays up for its reply; otherwise it may exit. */
  #busy(): void {
    this.#port.ref();
    this.#worker.ref();
  }

  #idle(): void {
    this.#port.unref();
    this.#worker.unref();
  }
}
