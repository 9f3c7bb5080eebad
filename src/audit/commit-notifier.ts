import type { Logger } from 'pino';
import { committedOf, type Pending } from './commit-queue.js';
import type { CommittedChannel } from './committed-channel.js';
import type { Written } from './committer.js';
import type { LedgerHead } from './ledger-options.js';
import type { Committed } from './record.js';

export interface CommitNotifierOptions {
  channel: CommittedChannel;
  logger?: Logger;
  onCommitTimed?: (records: number, startMs: number, endMs: number) => void;
}

/**
 * Tells everyone who waits on a COMMIT, once it happened: durable waiters resolve, the committed
 * channel publishes the batch, head listeners (checkpoints) hear the new head. Errors of a
 * listener are logged, never thrown: a batch that committed must not be retried (it would be
 * written twice).
 */
export class CommitNotifier {
  readonly #o: CommitNotifierOptions;
  readonly #headListeners: ((head: LedgerHead) => void)[] = [];

  constructor(opts: CommitNotifierOptions) {
    this.#o = opts;
  }

  /** Wall-clock start of a commit when someone times commits, else 0 (no clock read). */
  started(): number {
    return this.#o.onCommitTimed ? Date.now() : 0;
  }

  addHeadListener(listener: (head: LedgerHead) => void): void {
    this.#headListeners.push(listener);
  }

  /** `items` committed as `written`, leaving `head`; returns the batch as it was published. */
  notify(items: Pending[], written: Written, started: number, head: LedgerHead): Committed[] {
    const logger = this.#o.logger;
    try {
      this.#o.onCommitTimed?.(items.length, started, Date.now());
    } catch (err) {
      logger?.error({ err: (err as Error).message }, 'audit onCommitTimed failed');
    }
    const committed: Committed[] = [...written.extra];
    for (const p of items) committed.push(committedOf(p));
    for (const p of items) {
      const w = p.waiter;
      if (w && --w.remaining === 0) w.resolve(w.items.map(committedOf));
    }
    this.#o.channel.publish(committed);
    for (const l of this.#headListeners) {
      try {
        l(head);
      } catch (err) {
        logger?.error({ err: (err as Error).message }, 'audit commit listener failed');
      }
    }
    return committed;
  }
}
