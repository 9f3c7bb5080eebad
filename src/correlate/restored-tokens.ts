import type { TokenEvent } from '../domain/token-event.js';
import { tokenIdentity } from './join-keys.js';

/** A token identity restored from a snapshot, split back into its parts. */
export interface RestoredToken {
  id: string;
  node: string;
  db: number;
  kind: string;
  fingerprint: string;
}

/**
 * Tokens the correlator knew before a restart and has not seen since. Redis may have dropped
 * any of them while tokenwatch was down, and no notification will ever say so; the start-up
 * baseline SCAN of their node does, by not finding them (see Correlator.baselineDone).
 */
export class RestoredTokens {
  readonly #byId = new Map<string, RestoredToken>();

  get size(): number {
    return this.#byId.size;
  }

  /** `id` as made by tokenIdentity(node, db, kind, fingerprint). */
  add(id: string): void {
    const parts = id.split('\u0000');
    if (parts.length !== 4) return;
    const [node, db, kind, fingerprint] = parts as [string, string, string, string];
    this.#byId.set(id, { id, node, db: Number(db), kind, fingerprint });
  }

  /** Any event of a restored token confirms it was still known to Redis. */
  seen(ev: TokenEvent): void {
    this.#byId.delete(tokenIdentity(ev.node, ev.db, ev.kind, ev.fingerprint));
    const from = ev.renamedFrom;
    if (from) this.#byId.delete(tokenIdentity(ev.node, ev.db, from.kind, from.fingerprint));
  }

  /** Removes and returns the unconfirmed tokens of `node`. */
  take(node: string): RestoredToken[] {
    const out: RestoredToken[] = [];
    for (const t of this.#byId.values()) if (t.node === node) out.push(t);
    for (const t of out) this.#byId.delete(t.id);
    return out;
  }
}
