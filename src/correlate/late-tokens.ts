import type { ProviderEvent } from '../domain/provider-event.js';
import type { TokenQuery } from './token-store.js';

/** A revocation whose grace window is still open to tokens seen late. */
export interface GraceWindow {
  ev: ProviderEvent;
  seq: number | undefined;
  revokedAt: number;
  /** Tokens first seen up to this time belong to the revocation. */
  cutoff: number;
  query: TokenQuery;
  /** An obligation was tracked at the revocation: once it completes, nothing joins it. */
  tracked: boolean;
}

/**
 * Revocations still inside their grace window (`revocationGraceSeconds`). A provider's webhook
 * and Redis's keyspace notification travel on different connections: a token written just
 * before a revocation can reach the correlator after it (the ledger orders them as they
 * arrived). Such a token, first seen within the grace, belongs to the revocation as if it had
 * been live when the revocation arrived; without this the revocation measured nothing (CC6.2:
 * a revoked token would stay in Redis unmeasured). Windows are not part of the snapshot: a
 * restart within the grace of a revocation loses them (the restart is a recorded blind spot).
 */
export class GraceWindows {
  #windows: GraceWindow[] = [];
  readonly #max: number;
  #dropped = 0;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#windows.length;
  }

  get dropped(): number {
    return this.#dropped;
  }

  add(w: GraceWindow): void {
    this.#windows.push(w);
    if (this.#windows.length > this.#max) {
      this.#windows.shift();
      this.#dropped++;
    }
  }

  /** Windows a token first seen at `firstSeenAt` falls into. */
  covering(firstSeenAt: number): GraceWindow[] {
    return this.#windows.filter((w) => firstSeenAt <= w.cutoff);
  }

  /**
   * Drops windows whose cutoff lies `slackMs` behind `now`: a write observed before the cutoff
   * may be applied a little later (queueing), so windows outlive their cutoff by the slack.
   */
  expire(now: number, slackMs: number): void {
    if (this.#windows.some((w) => w.cutoff + slackMs < now))
      this.#windows = this.#windows.filter((w) => w.cutoff + slackMs >= now);
  }
}
