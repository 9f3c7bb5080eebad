import type { TokenEvent } from '../domain/token-event.js';
import { TOKEN_END_TYPES } from '../domain/token-event.js';
import { tokenIdentity, tokenJoins, tokenScope } from './join-keys.js';
import type { ResolvedCorrelatorOptions } from './options.js';
import { tokenFromSnapshot, tokenToSnapshot } from './snapshot.js';
import type { TokenRecordSnapshot } from './snapshot.js';
import { arr } from './snapshot-read.js';
import { EndedTokens } from './ended-tokens.js';
import { NO_OPEN, TokenStore } from './token-store.js';
import type { TokenRecord } from './token-store.js';

/** What one TokenEvent did to the live view. */
export interface ViewChange {
  /** The live record after the event (written, appeared, ttl_changed, persisted, renamed). */
  token: TokenRecord | undefined;
  /** The event wrote the token: `written`, or a rename from a key that matched no rule. */
  isWrite: boolean;
  /** The key was not live in the view before this event. */
  isNew: boolean;
  /** The record that left Redis with this event (also kept in `ended` for late events). */
  ended: TokenRecord | undefined;
  /** A tracked key renamed onto another tracked identity. */
  moved: { from: string; to: string } | undefined;
  /** Records pushed out of the live view by its cap: their fate in Redis is no longer known. */
  lost: readonly TokenRecord[];
}

/** ViewChange.lost of the (usual) event that pushed nothing out: one shared, frozen array. */
const NONE_LOST: readonly TokenRecord[] = Object.freeze([]);

/**
 * The correlator's own live view of Redis tokens, fed only by TokenEvents, plus a short memory
 * of tokens that left (so a revocation that arrives after the Redis delete still finds them).
 */
export class TokenView {
  readonly live: TokenStore;
  readonly ended: EndedTokens;
  readonly #opts: ResolvedCorrelatorOptions;
  #lost: TokenRecord[] = [];
  /** #scopeOf's last node, db and kind, and their scope. */
  readonly #scopeMemo = { node: '', db: -1, kind: '', scope: '' };

  /**
   * `lostMatters`: whether a token the live view's cap pushes out must be reported in
   * ViewChange.lost even without open findings (something waits on tokens by id); false: it is
   * dropped unread. Absent: always reported.
   */
  constructor(opts: ResolvedCorrelatorOptions, lostMatters?: () => boolean) {
    this.#opts = opts;
    this.live = new TokenStore(opts.limits.maxTrackedTokens, (rec) => this.#lost.push(rec), {
      evictedMatter: lostMatters,
    });
    this.ended = new EndedTokens(opts.limits.maxEndedTokens);
  }

  apply(ev: TokenEvent, seq: number | undefined): ViewChange {
    const scope = this.#scopeOf(ev.node, ev.db, ev.kind);
    const id = scope + ev.fingerprint;
    let change: ViewChange;
    if (TOKEN_END_TYPES.has(ev.type)) change = this.#end(ev, id, seq);
    else if (ev.type === 'renamed') change = this.#rename(ev, id, seq, scope);
    else change = this.#upsert(ev, id, seq, ev.type === 'written', scope);
    if (this.#lost.length > 0) {
      change.lost = this.#lost;
      this.#lost = [];
    }
    return change;
  }

  /**
   * Live tokens something still depends on (an open per-token finding, or an id in `keep`), and
   * the newest `max` ended tokens a late provider event may still match.
   */
  snapshot(
    keep: ReadonlySet<string>,
    now: number,
    max: number,
    truncated: Record<string, number>,
  ): { tokens: TokenRecordSnapshot[]; ended: TokenRecordSnapshot[] } {
    const tokens = this.live.retained(keep).map(tokenToSnapshot);
    const horizon = now - this.#opts.revocationLookbackSeconds * 1000;
    const recent = this.ended.newestSince(horizon, max);
    if (recent.dropped > 0) truncated.endedTokens = recent.dropped;
    return { tokens, ended: recent.records.map(tokenToSnapshot) };
  }

  /** @throws TokenwatchError ERR_SNAPSHOT_INVALID */
  restore(tokens: unknown, ended: unknown, path: string): void {
    const lim = this.#opts.limits;
    for (const [i, v] of arr(tokens, `${path}.tokens`, lim.maxTrackedTokens).entries())
      this.live.put(tokenFromSnapshot(v, `${path}.tokens[${i}]`));
    for (const [i, v] of arr(ended, `${path}.ended`, lim.maxEndedTokens).entries())
      this.ended.put(tokenFromSnapshot(v, `${path}.ended[${i}]`));
  }

  /** Forgets ended tokens that can no longer match a late provider event. */
  expire(now: number): void {
    const horizon = now - this.#opts.revocationLookbackSeconds * 1000;
    this.ended.dropEndedBefore(horizon);
  }

  /**
   * tokenScope(node, db, kind), the same string again while they repeat (one node, one kind per
   * burst): the live view then finds the scope's code without hashing a new string.
   */
  #scopeOf(node: string, db: number, kind: string): string {
    const m = this.#scopeMemo;
    if (node !== m.node || db !== m.db || kind !== m.kind) {
      m.node = node;
      m.db = db;
      m.kind = kind;
      m.scope = tokenScope(node, db, kind);
    }
    return m.scope;
  }

  /** `scope`: what `id` starts with (tokenScope), its fingerprint being the event's. */
  #upsert(
    ev: TokenEvent,
    id: string,
    seq: number | undefined,
    isWrite: boolean,
    scope: string,
  ): ViewChange {
    const dueAt = ev.type === 'persisted' ? null : ev.dueAt;
    const live = this.live;
    const slot = live.slotOfParts(id, scope, ev.fingerprint, ev.digest);
    if (slot >= 0) {
      if (dueAt !== undefined) live.setDue(slot, dueAt);
      if (isWrite) {
        live.markWritten(slot, ev.observedAt, seq);
        live.rejoinSlot(slot, ev.fingerprint, tokenJoins(ev, this.#opts.kinds.get(ev.kind)));
      }
      live.touchSlot(slot);
      return {
        token: live.record(slot, id, ev.fingerprint),
        isWrite,
        isNew: false,
        ended: undefined,
        moved: undefined,
        lost: NONE_LOST,
      };
    }
    const rec = this.#record(ev, id, seq, isWrite);
    rec.dueAt = dueAt;
    const token = live.bind(rec, live.put(rec, true));
    return { token, isWrite, isNew: true, ended: undefined, moved: undefined, lost: NONE_LOST };
  }

  #end(ev: TokenEvent, id: string, seq: number | undefined): ViewChange {
    // A key deleted before we ever saw it (written before tokenwatch started) still counts for
    // a late revocation, so it is remembered too.
    const rec = this.live.remove(id) ?? this.#record(ev, id, undefined, false);
    rec.endedAt = ev.observedAt;
    rec.endType = ev.type;
    rec.endSeq = seq;
    this.ended.put(rec);
    return {
      token: undefined,
      isWrite: false,
      isNew: false,
      ended: rec,
      moved: undefined,
      lost: NONE_LOST,
    };
  }

  #rename(ev: TokenEvent, id: string, seq: number | undefined, scope: string): ViewChange {
    const from = ev.renamedFrom;
    // RENAME from an unmatched key (write-then-rename into place) is how the token got written.
    if (!from) return this.#upsert(ev, id, seq, true, scope);
    const fromId = tokenIdentity(ev.node, ev.db, from.kind, from.fingerprint);
    const old = fromId === id ? undefined : this.live.remove(fromId);
    if (!old) return this.#upsert(ev, id, seq, false, scope);
    // RENAME keeps the TTL, so the source's dueAt carries over unless the event says otherwise.
    const rec: TokenRecord = {
      ...this.#record(ev, id, old.seq, old.writeSeen),
      firstSeenAt: old.firstSeenAt,
      writtenAt: old.writtenAt,
      dueAt: ev.dueAt === undefined ? old.dueAt : ev.dueAt,
      open: old.open,
    };
    // RENAME overwrites the destination: a token that lived there has left Redis.
    const replaced = this.live.remove(id);
    if (replaced) {
      replaced.endedAt = ev.observedAt;
      replaced.endType = 'deleted';
      replaced.endSeq = seq;
      this.ended.put(replaced);
    }
    const token = this.live.bind(rec, this.live.put(rec));
    return {
      token,
      isWrite: false,
      isNew: false,
      ended: replaced,
      moved: { from: fromId, to: id },
      lost: NONE_LOST,
    };
  }

  #record(ev: TokenEvent, id: string, seq: number | undefined, writeSeen: boolean): TokenRecord {
    return {
      id,
      kind: ev.kind,
      fingerprint: ev.fingerprint,
      joins: tokenJoins(ev, this.#opts.kinds.get(ev.kind)),
      firstSeenAt: ev.observedAt,
      writtenAt: ev.observedAt,
      writeSeen,
      dueAt: undefined,
      seq,
      endedAt: undefined,
      endType: undefined,
      endSeq: undefined,
      open: NO_OPEN,
    };
  }
}
