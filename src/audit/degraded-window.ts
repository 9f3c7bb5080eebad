import { TokenwatchError } from '../errors.js';
import type { AuditInput } from './record.js';
import { describeWriteError } from './write-failure.js';

/**
 * The fail-closed window of the ledger: when it opened, why, and how many records had to be
 * dropped meanwhile. Vault refuses a request no audit device could record; the ledger refuses
 * durable appends (503) for as long as the window is open, and states the window in an
 * `audit.degraded` record once it can write again (SOC 2 CC7.2: gaps must be visible).
 */
export class DegradedWindow {
  #since: number | undefined;
  #reason: string | undefined;
  #droppedInWindow = 0;
  #droppedTotal = 0;

  get active(): boolean {
    return this.#since !== undefined;
  }

  get since(): number | undefined {
    return this.#since;
  }

  get reason(): string | undefined {
    return this.#reason;
  }

  get droppedTotal(): number {
    return this.#droppedTotal;
  }

  /** Opens the window at `at` (no-op while open); returns the reason when it just opened. */
  open(at: number, err: unknown): string | undefined {
    if (this.#since !== undefined) return undefined;
    this.#since = at;
    this.#reason = describeWriteError(err);
    return this.#reason;
  }

  dropped(n: number): void {
    this.#droppedTotal += n;
    this.#droppedInWindow += n;
  }

  /** The `audit.degraded` record that closes the window if it commits at `now`. */
  marker(now: number): AuditInput {
    const since = this.#since ?? now;
    return {
      time: now,
      source: 'system',
      type: 'audit.degraded',
      attrs: {
        start: since,
        end: now,
        durationMs: now - since,
        reason: this.#reason,
        droppedRecords: this.#droppedInWindow,
      },
    };
  }

  /** Closes the window (its marker committed); returns what it covered. */
  close(now: number): { durationMs: number; dropped: number } {
    const covered = { durationMs: now - (this.#since ?? now), dropped: this.#droppedInWindow };
    this.#since = undefined;
    this.#reason = undefined;
    this.#droppedInWindow = 0;
    return covered;
  }

  /** What durable callers get while the window is open (webhooks answer 503; providers retry). */
  error(): TokenwatchError {
    return new TokenwatchError(
      'ERR_AUDIT_DEGRADED',
      'the audit ledger cannot write right now; retry later',
      { details: { reason: this.#reason } },
    );
  }
}
