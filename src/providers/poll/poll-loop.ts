import type { Logger } from 'pino';

import type { ProviderName } from '../../domain/provider-event.js';
import {
  POLL_ERROR_REASONS,
  type PollErrorReason,
  type ProviderMetrics,
} from '../../metrics/provider-metrics.js';

/** One catch-up run of a provider API; resolves with the number of events read. */
export type PollRun = (signal: AbortSignal) => Promise<number>;

/** Options of a {@link PollLoop}. */
export interface PollLoopOptions {
  provider: ProviderName;
  intervalMs: number;
  run: PollRun;
  metrics: ProviderMetrics;
  logger: Logger;
}

/**
 * Runs a poller at start-up and then every interval, one run at a time, off the request path: a
 * failing or slow provider API only counts `tokenwatch_provider_poll_errors_total` and logs.
 */
export class PollLoop {
  readonly provider: ProviderName;
  readonly #o: PollLoopOptions;
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(options: PollLoopOptions) {
    this.#o = options;
    this.provider = options.provider;
  }

  /** First run now (catch-up after downtime), then every interval. */
  start(): void {
    this.#schedule(0);
  }

  /** Runs once now (after the run in progress, if any); never rejects. */
  async runNow(): Promise<void> {
    while (this.#running) await this.#running;
    if (this.#closed) return;
    const run = this.#runOnce();
    this.#running = run;
    try {
      await run;
    } finally {
      if (this.#running === run) this.#running = undefined;
    }
  }

  /** Stops the timer, aborts waits and requests, waits for the run in progress. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort.abort(new Error('closing'));
    while (this.#running) await this.#running;
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.runNow().then(() => this.#schedule(this.#o.intervalMs));
    }, ms);
    this.#timer.unref();
  }

  async #runOnce(): Promise<void> {
    const { provider, logger, metrics } = this.#o;
    const started = Date.now();
    try {
      const n = await this.#o.run(this.#abort.signal);
      logger.debug({ provider, events: n, ms: Date.now() - started }, 'provider poll run done');
    } catch (err) {
      if (this.#abort.signal.aborted) return;
      const reason = pollErrorReason(err);
      metrics.pollErrors.inc({ provider, reason });
      const e = err as { code?: string; message?: string };
      logger.warn(
        { provider, code: e.code, reason, err: e.message?.slice(0, 300) },
        'provider poll run failed; retrying next interval',
      );
    }
  }
}

/** The bounded `reason` label of a failed run (or a refused cursor) from its error. */
export function pollErrorReason(err: unknown): PollErrorReason {
  const e = err as { name?: unknown; code?: unknown; details?: { reason?: unknown } };
  const r = e.details?.reason;
  if (typeof r === 'string' && (POLL_ERROR_REASONS as readonly string[]).includes(r))
    return r as PollErrorReason;
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timeout';
  if (e.code === 'ERR_WEBHOOK_MALFORMED') return 'malformed';
  return 'other';
}
