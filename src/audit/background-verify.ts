import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Damage } from './damage.js';
import type { Ledger } from './ledger.js';
import type { SigningKey } from './signing-keys.js';
import { compiledWorkerUrl } from './worker-url.js';

/** Longest close() waits for the worker to finish loading better-sqlite3 before terminating it. */
const LOAD_WAIT_MS = 5_000;

/** What the worker gets (plain data: it crosses threads). */
export interface BackgroundVerifyData {
  dbPath: string;
  checkpointLog: string;
  publicKeyPem: string;
  keySource: string;
}

/** What the worker answers. */
export interface BackgroundVerifyResult {
  ok: boolean;
  records: number;
  problems: Damage[];
  problemCount: number;
  durationMs: number;
}

export interface BackgroundVerifierOptions {
  ledger: Ledger;
  dbPath: string;
  checkpointLog: string;
  key: SigningKey;
  now: () => number;
  logger: Logger;
  /** Called with every result (metrics). */
  onResult?: (r: BackgroundVerifyResult, at: number) => void;
}

/**
 * The full verification of the ledger at start, on a worker thread so a 10 M record file never
 * delays start-up (the inline start-up check covers the tail since the last external
 * checkpoint). Damage is logged, counted and written to the ledger as a
 * `finding.ledger_damage` record (SOC 2 CC7.2: anomalies in the evidence itself must be seen).
 */
export class BackgroundVerifier {
  readonly #o: BackgroundVerifierOptions;
  #worker: Worker | undefined;
  /** Resolves once the worker has loaded the native SQLite binding (or exited). */
  #loaded: Promise<void> = Promise.resolve();
  #closed = false;
  /** The last result, undefined until the first run finished. */
  last: BackgroundVerifyResult | undefined;
  /** Resolves when the run started by start() finished (tests). */
  done: Promise<BackgroundVerifyResult | undefined> = Promise.resolve(undefined);

  constructor(o: BackgroundVerifierOptions) {
    this.#o = o;
  }

  start(): void {
    if (this.#closed || this.#worker) return;
    const url = compiledWorkerUrl('verify-background-worker.js');
    if (!url) {
      this.#o.logger.warn(
        'no compiled background verifier: the full ledger is not verified at start',
      );
      return;
    }
    const data: BackgroundVerifyData = {
      dbPath: this.#o.dbPath,
      checkpointLog: this.#o.checkpointLog,
      publicKeyPem: this.#o.key.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      keySource: 'audit.signingKey',
    };
    const worker = new Worker(url, { workerData: data, execArgv: [] });
    worker.unref(); // never holds the process open
    this.#worker = worker;
    this.#loaded = new Promise<void>((resolve) => {
      worker.on('message', (m: { loaded?: true }) => {
        if (m.loaded) resolve();
      });
      worker.once('exit', () => resolve());
    });
    this.done = new Promise((resolve) => {
      worker.on('message', (m: BackgroundVerifyResult | { error: string } | { loaded: true }) => {
        if ('loaded' in m) return;
        this.#worker = undefined;
        void worker.terminate();
        if ('error' in m) {
          this.#o.logger.error({ err: m.error }, 'background ledger verification failed to run');
          resolve(undefined);
          return;
        }
        this.#result(m);
        resolve(m);
      });
      worker.once('error', (err) => {
        this.#worker = undefined;
        this.#o.logger.error({ err: err.message }, 'background ledger verification failed to run');
        resolve(undefined);
      });
      worker.once('exit', () => resolve(this.last));
    });
  }

  #result(r: BackgroundVerifyResult): void {
    this.last = r;
    const at = this.#o.now();
    this.#o.onResult?.(r, at);
    if (this.#closed) return;
    if (r.ok) {
      this.#o.logger.info(
        { records: r.records, durationMs: r.durationMs },
        'background ledger verification: intact',
      );
      return;
    }
    const first = r.problems[0];
    this.#o.logger.error(
      { problems: r.problemCount, first },
      'background ledger verification found damage: run tokenwatch verify with the external log and key',
    );
    if (this.#o.ledger.closed) return;
    this.#o.ledger.append({
      time: at,
      source: 'system',
      type: 'finding.ledger_damage',
      attrs: {
        state: 'opened',
        severity: 'critical',
        criteria: ['CC7.2'],
        summary: `full verification of the ledger found ${r.problemCount} problem(s)${first ? `, first: ${first.class} at seq ${first.seq}` : ''}`,
        problems: r.problems.map((p) => ({
          class: p.class,
          seq: p.seq,
          ...(p.toSeq === undefined ? {} : { toSeq: p.toSeq }),
        })),
        problemCount: r.problemCount,
      },
    });
  }

  /**
   * Stops a run in progress. Idempotent. The thread is terminated only once it has loaded the
   * native binding (at most LOAD_WAIT_MS later): a terminate during that load aborts the process.
   */
  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    this.#worker = undefined;
    if (!worker) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#loaded,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, LOAD_WAIT_MS))),
    ]);
    clearTimeout(timer);
    await worker.terminate();
  }
}
