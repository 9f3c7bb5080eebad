import type { Logger } from 'pino';
import type { Committed } from './record.js';

/** Receives every committed batch, in commit order. */
export type CommittedListener = (batch: readonly Committed[]) => void;

/**
 * The one channel committed records leave the ledger by: after each COMMIT, the batch in seq
 * order, each record with the typed domain event it was made from (token, provider, finding,
 * index observations; src/domain/domain-event.ts). The correlator, metrics, cache health and
 * the OTLP log stream subscribe here; nothing reaches them before its record is durable, so
 * every finding can cite the seqs of its evidence.
 *
 * A listener that throws is logged and skipped: it never makes a batch commit twice nor keeps
 * the others from hearing of it.
 */
export class CommittedChannel {
  readonly #listeners = new Set<CommittedListener>();
  readonly #logger: Logger | undefined;

  constructor(logger?: Logger) {
    this.#logger = logger;
  }

  /** Subscribes; returns the unsubscribe function. */
  subscribe(listener: CommittedListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Hands a committed batch to every listener (the ledger's commit path calls it). */
  publish(batch: readonly Committed[]): void {
    for (const l of this.#listeners) {
      try {
        l(batch);
      } catch (err) {
        this.#logger?.error({ err: (err as Error).message }, 'audit onCommit listener failed');
      }
    }
  }
}
