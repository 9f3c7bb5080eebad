import type { LedgerStore } from '../../audit/store/ledger-store.js';
import { PROVIDER_RECORD_PREFIX } from './audit-inputs.js';

/** Bounds of the seen-set. */
export interface SeenEventsOptions {
  /** Records observed longer ago than this are not loaded at rebuild, ms. */
  windowMs: number;
  /** Most ids remembered; the oldest are forgotten first. */
  maxEntries: number;
}

/** The ledger reads the seen-set is rebuilt from (src/audit/store/provider-dedup.ts). */
export type DedupReads = Pick<LedgerStore, 'eventIdsSince' | 'eventIdsAfter'>;

/**
 * The (provider, event id) pairs already committed to the ledger. The committed `provider.*`
 * records ARE the dedup markers, so a record and its marker commit atomically; this class only
 * caches them, rebuilt from the ledger at start-up and bounded in size (oldest evicted first).
 */
export class SeenEvents {
  readonly #opts: SeenEventsOptions;
  readonly #seen = new Set<string>();
  /**
   * Insertion order as a ring: evicting the oldest is O(1). (Deleting a Map's or Set's first
   * entry repeatedly is not: V8 leaves holes at the front that every `keys().next()` rescans.)
   */
  readonly #ring: string[] = [];
  #head = 0;

  constructor(options: SeenEventsOptions) {
    this.#opts = options;
  }

  get size(): number {
    return this.#seen.size;
  }

  has(key: string): boolean {
    return this.#seen.has(key);
  }

  add(key: string): void {
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    if (this.#ring.length < this.#opts.maxEntries) {
      this.#ring.push(key);
      return;
    }
    const oldest = this.#ring[this.#head];
    if (oldest !== undefined) this.#seen.delete(oldest);
    this.#ring[this.#head] = key;
    this.#head = (this.#head + 1) % this.#opts.maxEntries;
  }

  /**
   * Loads the newest provider records observed within the window (range scan of the
   * records_type_seq index), oldest first so eviction order matches time order.
   */
  rebuild(store: DedupReads, now: number): number {
    const rows = store.eventIdsSince(
      PROVIDER_RECORD_PREFIX,
      now - this.#opts.windowMs,
      this.#opts.maxEntries,
    );
    for (let i = rows.length - 1; i >= 0; i--) {
      const r = rows[i];
      if (r && typeof r.provider === 'string' && typeof r.eventId === 'string')
        this.add(seenKey(r.provider, r.eventId));
    }
    return rows.length;
  }

  /** Adds the provider records committed after `afterSeq` (a batch that failed part-way). */
  addCommittedAfter(store: DedupReads, afterSeq: number): void {
    for (const r of store.eventIdsAfter(PROVIDER_RECORD_PREFIX, afterSeq)) {
      if (typeof r.provider === 'string' && typeof r.eventId === 'string')
        this.add(seenKey(r.provider, r.eventId));
    }
  }
}

/** The dedup key of an event. */
export function seenKey(provider: string, eventId: string): string {
  return `${provider}\u0000${eventId}`;
}
