import type { TokenEvent } from '../domain/token-event.js';

export interface UnownedPreludeOptions {
  /** `coordination.standby.maxEvents`. */
  maxEvents: number;
  /** `coordination.standby.maxAgeMs`. */
  maxAgeMs: number;
  now: () => number;
}

/**
 * A node's token events from before any owner's marker (issue #20): what every instance receives
 * from a node nobody has owned yet (a Cluster replica just promoted, a deployment's first start),
 * which no ledger records and which the inventory applies live. The node's first owner records
 * them before going live; without this, a deletion in that window was in no ledger, and the
 * reconciliation of the node's gap (against an inventory that had applied it) found nothing.
 *
 * Collects only until a marker of the node is seen (someone owns it: its owner records).
 * Bounded like the standby buffer; over the bounds the oldest go and `complete` turns false
 * (the first owner then records a gap and reconciles).
 */
export class UnownedPrelude {
  readonly #o: UnownedPreludeOptions;
  #events: TokenEvent[] = [];
  #head = 0;
  #complete = true;
  #owned = false;

  constructor(o: UnownedPreludeOptions) {
    this.#o = o;
  }

  /** Events held now. */
  get depth(): number {
    return this.#events.length - this.#head;
  }

  /** A token event without a stream position (no marker seen yet). */
  push(ev: TokenEvent): void {
    if (this.#owned) return;
    this.#events.push(ev);
    if (this.depth > this.#o.maxEvents) this.#drop();
    const limit = this.#o.now() - this.#o.maxAgeMs;
    while (this.depth > 0 && (this.#events[this.#head] as TokenEvent).observedAt < limit)
      this.#drop();
  }

  /** A marker of the node arrived: someone owns it; nothing is collected from now on. */
  markerSeen(): void {
    this.#owned = true;
    this.#events = [];
    this.#head = 0;
  }

  /**
   * What was collected (in stream order) and whether it is everything since the watcher's
   * subscription (false: the bounds dropped some). Empties it; it collects nothing afterwards.
   */
  take(): { events: TokenEvent[]; complete: boolean; owned: boolean } {
    const r = {
      events: this.#events.slice(this.#head),
      complete: this.#complete,
      owned: this.#owned,
    };
    this.markerSeen();
    return r;
  }

  #drop(): void {
    this.#complete = false;
    this.#head += 1;
    if (this.#head > 1024 && this.#head * 2 > this.#events.length) {
      this.#events = this.#events.slice(this.#head);
      this.#head = 0;
    }
  }
}
