import type { ReplayStore } from '../../audit/replay-store.js';
import type { Fingerprinter } from '../../audit/fingerprint.js';
import { isTokenwatchError } from '../../errors.js';
import { replayError } from './event-ingest.js';

/** The acceptance window of a one-time token: whatever `iat` may be, and the clock skew. */
export interface ReplayWindow {
  /** Oldest `iat` accepted, seconds (`maxAgeSeconds`, default 24 h). */
  maxAgeSec: number;
  clockToleranceSec: number;
}

/**
 * Runs `record` once per (provider, jti) for the whole acceptance window, across cache eviction
 * and restarts: the jti's HMAC fingerprint is claimed durably first (src/audit/replay-store.ts),
 * and given back when recording fails for a reason that is not a replay (the sender retries).
 * Call only after the token's signature verified.
 *
 * @throws TokenwatchError ERR_WEBHOOK_REPLAY when the jti was claimed inside its window.
 */
export class ReplayGuard {
  readonly #store: ReplayStore;
  readonly #fingerprinter: Fingerprinter;

  constructor(store: ReplayStore, fingerprinter: Fingerprinter) {
    this.#store = store;
    this.#fingerprinter = fingerprinter;
  }

  async once<T>(
    provider: string,
    token: { jti: string; iat: number },
    window: ReplayWindow,
    record: () => Promise<T>,
  ): Promise<T> {
    const key = this.#fingerprinter.of(`${provider}\u0000${token.jti}`);
    const expiresAt = (token.iat + window.maxAgeSec + window.clockToleranceSec) * 1000;
    if (!this.#store.claim(key, expiresAt)) throw replayError();
    try {
      return await record();
    } catch (err) {
      if (!(isTokenwatchError(err) && err.code === 'ERR_WEBHOOK_REPLAY')) this.#store.release(key);
      throw err;
    }
  }
}
