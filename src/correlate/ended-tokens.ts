import { NO_OPEN, TokenStore } from './token-store.js';
import type { TokenQuery, TokenRecord } from './token-store.js';

/**
 * The correlator's memory of tokens that left Redis (for provider events that arrive after the
 * delete). Under churn it holds every token that ended within the revocation lookback, as many
 * as the live view or more, so it is the same slot columns as the live view (TokenStore over
 * LiveColumns) plus end time, type and seq columns; records are rebuilt only when a provider
 * event or a snapshot reads them, as copies (an ended token's `open` is not kept). Oldest first,
 * `put` of a known id moves it to the newest end, capped (evictions counted).
 */
export class EndedTokens {
  readonly capacity: number;
  readonly #store: TokenStore;

  constructor(capacity: number) {
    // Evicted records are not read: nothing here holds open findings or waits on them.
    this.#store = new TokenStore(capacity, undefined, { ends: true, detached: true });
    this.capacity = capacity;
  }

  get size(): number {
    return this.#store.size;
  }

  /** Tokens dropped because the memory was full (not expiry). */
  get evictions(): number {
    return this.#store.evictions;
  }

  /** Bytes of the typed-array columns (outside the V8 heap). */
  get columnBytes(): number {
    return this.#store.columnBytes;
  }

  get(id: string): TokenRecord | undefined {
    return this.#store.get(id);
  }

  /** Stores a copy of `rec` at the newest end (its `open` is not kept: it ended). */
  put(rec: TokenRecord): void {
    this.#store.put(rec.open === NO_OPEN ? rec : { ...rec, open: NO_OPEN });
  }

  /**
   * The newest `max` tokens that ended at or after `horizon` (oldest first), and how many more
   * there were: only those are rebuilt as records (a snapshot keeps the newest few).
   */
  newestSince(horizon: number, max: number): { records: TokenRecord[]; dropped: number } {
    const slots: number[] = [];
    for (const s of this.#store.slots()) if (this.#store.endedAt(s) >= horizon) slots.push(s);
    const keep = slots.slice(Math.max(0, slots.length - max));
    return {
      records: keep.map((s) => this.#store.record(s)),
      dropped: slots.length - keep.length,
    };
  }

  /** Oldest first. */
  values(): IterableIterator<TokenRecord> {
    return this.#store.values();
  }

  /** Forgets tokens (oldest first) that ended before `horizon`: no late event can match them. */
  dropEndedBefore(horizon: number): void {
    this.#store.dropOldestWhile((s) => this.#store.endedAt(s) < horizon);
  }

  find(q: TokenQuery): TokenRecord[] {
    return this.#store.find(q);
  }
}
