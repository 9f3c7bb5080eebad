import type { Logger } from 'pino';
import type { AuditInput } from '../audit/record.js';
import { RefusalLimiter } from '../http/refusal-limiter.js';
import type { CoordinationMetrics } from '../metrics/coordination-metrics.js';
import type { MarkerRejection } from './stream-position.js';

/** Refused markers recorded one by one per node and window; the rest are counted in a summary. */
const PER_WINDOW = 10;
const WINDOW_MS = 60_000;
/** Nodes tracked at once (a Cluster's masters); beyond, one `*` bucket. */
const MAX_NODES = 64;

export interface MarkerRejectionsOptions {
  append: (input: AuditInput) => void;
  metrics: CoordinationMetrics;
  now: () => number;
  logger: Logger;
  /**
   * HMAC fingerprint of the refused value (the shared `audit.hmacKeys`): the key name or
   * committed value an attacker wrote is never recorded itself, only this and its length.
   */
  fingerprint: (value: Buffer) => string;
}

/**
 * What a refused marker leaves (docs/ha.md, threat model): every one is counted
 * (`tokenwatch_marker_rejected_total{node,reason}`); the first PER_WINDOW per node and window are
 * `ownership.marker_rejected` records ({node, reason, length} and the value's HMAC fingerprint), the
 * rest only counted in one `ownership.marker_rejected_suppressed` record when the window ends. A
 * flood of forged markers therefore costs the ledger a bounded number of records per minute.
 */
export class MarkerRejections {
  readonly #o: MarkerRejectionsOptions;
  readonly #limiter: RefusalLimiter;
  readonly #timer: NodeJS.Timeout;

  constructor(o: MarkerRejectionsOptions) {
    this.#o = o;
    this.#limiter = new RefusalLimiter({
      perWindow: PER_WINDOW,
      windowMs: WINDOW_MS,
      maxSources: MAX_NODES,
      now: o.now,
      onSummary: (s) =>
        o.append({
          time: o.now(),
          source: 'system',
          type: 'ownership.marker_rejected_suppressed',
          attrs: {
            node: s.source,
            from: s.from,
            to: s.to,
            recorded: s.recorded,
            suppressed: s.suppressed,
            reasons: s.outcomes,
          },
        }),
    });
    this.#timer = setInterval(() => this.#limiter.sweep(), WINDOW_MS);
    this.#timer.unref();
  }

  rejected(node: string, reason: MarkerRejection, key: Buffer): void {
    const o = this.#o;
    o.metrics.markerRejected.inc({ node, reason });
    if (!this.#limiter.admit(node, reason)) return;
    o.logger.warn({ node, reason }, 'stream marker refused: it moves no position');
    o.append({
      time: o.now(),
      source: 'system',
      type: 'ownership.marker_rejected',
      // What a refused writer chose: only its fingerprint and length (never the bytes).
      fingerprint: o.fingerprint(key),
      attrs: { node, reason, length: key.length },
    });
  }

  /** States what was only counted so far; stops the window timer. */
  close(): void {
    clearInterval(this.#timer);
    this.#limiter.flush();
  }
}
