import type { Finding } from '../domain/finding.js';
import type { ProviderEvent } from '../domain/provider-event.js';
import { BoundedMap } from './bounded-map.js';
import type { FindingBook } from './finding-book.js';
import { plural, secs } from './format.js';
import type { ResolvedCorrelatorOptions } from './options.js';
import { SetIndex } from './set-index.js';
import { obligationFromSnapshot, obligationToSnapshot } from './obligation-snapshot.js';
import { arr } from './snapshot-read.js';
import type { TokenRecord } from './token-store.js';
import type { RevocationLatency } from './types.js';

/**
 * Something the provider did that Redis must follow within an SLA:
 * - `revocation`: revoked tokens must leave (rule revocation_not_propagated, CC6.2);
 * - `refresh_reuse`: the reused family must leave (rule refresh_reuse_detected, CC7.2);
 * - `rotation`: rotated-out tokens must leave, optionally the successor must arrive
 *   (rule rotation_incomplete, CC6.1).
 */
export type ObligationKind = 'revocation' | 'refresh_reuse' | 'rotation';

export interface ObligationInput {
  kind: ObligationKind;
  ev: ProviderEvent;
  seq: number | undefined;
  revokedAt: number;
  slaSeconds: number;
  /** Matching tokens still live: each must leave Redis. */
  live: readonly TokenRecord[];
  /** Matching tokens that left before the event reached us (out of order): already propagated. */
  ended: readonly TokenRecord[];
  /** refresh_reuse: family token ids whose later writes join the obligation; rotation: successor ids. */
  watchIds?: readonly string[];
  successorExpected?: boolean;
  successorSeen?: boolean;
}

/** One obligation in flight (exported for its snapshot codec, obligation-snapshot.ts). */
export interface Obligation {
  /** Map key: one obligation per kind per provider event. */
  key: string;
  /** Finding id part: the provider event (`provider:id`). */
  eventKey: string;
  kind: ObligationKind;
  ev: Pick<ProviderEvent, 'provider' | 'id' | 'type' | 'subject' | 'sessionId'>;
  revokedAt: number;
  deadline: number;
  slaSeconds: number;
  /** identity → what the finding may show of it. */
  pending: Map<string, { kind: string; fingerprint: string }>;
  matched: number;
  goneBeforeEvent: number;
  lastLeftAt: number | undefined;
  lost: number;
  /** Kinds of every matched token (live or gone), for the finding. */
  kinds: Set<string>;
  deadlinePassed: boolean;
  findingId: string | undefined;
  evidence: (number | undefined)[];
  watchIds: readonly string[];
  successorExpected: boolean;
  successorSeen: boolean;
}

export const MAX_WATCH_IDS = 256;

/**
 * Tracks every pending obligation until its tokens have left Redis, opening the finding at the
 * SLA deadline (evaluated in `tick`) and resolving it when the last token leaves. Every
 * revocation and reuse containment reports its latency, met or not, through `observe`.
 */
export class PropagationTracker {
  readonly #opts: ResolvedCorrelatorOptions;
  readonly #book: FindingBook;
  readonly #observe: (o: RevocationLatency) => void;
  readonly #obligations: BoundedMap<string, Obligation>;
  readonly #byToken = new SetIndex();
  readonly #byWatchId = new SetIndex();
  readonly #awaitingDeadline = new Set<string>();
  #spill: Finding[] = [];
  #now = 0;

  constructor(
    opts: ResolvedCorrelatorOptions,
    book: FindingBook,
    observe: (o: RevocationLatency) => void,
  ) {
    this.#opts = opts;
    this.#book = book;
    this.#observe = observe;
    this.#obligations = new BoundedMap(opts.limits.maxPendingObligations, (_k, ob) =>
      this.#evicted(ob),
    );
  }

  get size(): number {
    return this.#obligations.size;
  }

  /** Tokens some pending obligation waits for (the token -> obligation index). */
  get trackedTokens(): number {
    return this.#byToken.size;
  }

  get evictions(): number {
    return this.#obligations.evictions;
  }

  /** Every obligation in flight, as plain data. */
  snapshot(): unknown[] {
    return [...this.#obligations.values()].map(obligationToSnapshot);
  }

  /** @throws TokenwatchError ERR_SNAPSHOT_INVALID */
  restore(raw: unknown, path: string): void {
    const list = arr(raw, path, this.#opts.limits.maxPendingObligations);
    for (const [i, v] of list.entries())
      this.#track(obligationFromSnapshot(v, `${path}[${i}]`, this.#opts));
  }

  /** Identities of the tokens obligations are waiting for. */
  pendingTokenIds(): Set<string> {
    const ids = new Set<string>();
    for (const ob of this.#obligations.values()) for (const id of ob.pending.keys()) ids.add(id);
    return ids;
  }

  start(input: ObligationInput, now: number): Finding[] {
    const { ev, kind } = input;
    const ob: Obligation = {
      key: `${kind}:${ev.provider}:${ev.id}`,
      eventKey: `${ev.provider}:${ev.id}`,
      kind,
      ev: {
        provider: ev.provider,
        id: ev.id,
        type: ev.type,
        subject: ev.subject,
        sessionId: ev.sessionId,
      },
      revokedAt: input.revokedAt,
      deadline: input.revokedAt + input.slaSeconds * 1000,
      slaSeconds: input.slaSeconds,
      pending: new Map(input.live.map((r) => [r.id, { kind: r.kind, fingerprint: r.fingerprint }])),
      matched: input.live.length + input.ended.length,
      goneBeforeEvent: input.ended.length,
      lastLeftAt: undefined,
      lost: 0,
      kinds: new Set([...input.live, ...input.ended].map((r) => r.kind)),
      deadlinePassed: false,
      findingId: undefined,
      evidence: [input.seq, ...input.live.map((r) => r.seq), ...input.ended.map((r) => r.endSeq)]
        .filter((s) => s !== undefined)
        .slice(0, this.#opts.limits.maxEvidenceSeqs),
      watchIds: (input.watchIds ?? []).slice(0, MAX_WATCH_IDS),
      successorExpected: input.successorExpected ?? false,
      successorSeen: input.successorSeen ?? false,
    };
    for (const r of input.ended) {
      ob.lastLeftAt = Math.max(ob.lastLeftAt ?? -Infinity, r.endedAt ?? now);
    }
    // Revocation with nothing to propagate: no finding, no latency to report.
    if (kind === 'revocation' && ob.matched === 0) return [];
    this.#now = now;
    // Everything already gone (out of order): report the latency, nothing to wait for.
    if (kind !== 'refresh_reuse' && this.#done(ob)) return this.#complete(ob, now, 'propagated');
    const out: Finding[] = [];
    if (kind === 'refresh_reuse') {
      const n = ob.pending.size;
      const f = this.#book.open(
        {
          ...this.#fields(ob),
          rule: 'refresh_reuse_detected',
          key: ob.eventKey,
          summary: `${ev.provider} detected refresh token reuse${ev.subject === undefined ? '' : ` for subject ${ev.subject}`}; ${plural(n, 'token')} of the family ${n === 1 ? 'is' : 'are'} in Redis and must leave within ${ob.slaSeconds} s.`,
          attributes: { ...this.#attrs(ob), vendorType: ev.vendorType },
        },
        now,
      );
      ob.findingId = f?.id;
      if (f) out.push(f);
    }
    this.#track(ob);
    out.push(...this.#drainSpill(), ...this.#advance(ob, now));
    return out;
  }

  #track(ob: Obligation): void {
    this.#obligations.set(ob.key, ob);
    for (const id of ob.pending.keys()) this.#byToken.add(id, ob.key);
    for (const id of ob.watchIds) this.#byWatchId.add(id, ob.key);
    if (!ob.deadlinePassed) this.#awaitingDeadline.add(ob.key);
  }

  /** Whether the obligation of `kind` for this provider event is in flight. */
  tracking(kind: ObligationKind, ev: Pick<ProviderEvent, 'provider' | 'id'>): boolean {
    return this.#obligations.has(`${kind}:${ev.provider}:${ev.id}`);
  }

  /**
   * A token first seen within a revocation's grace window that matches it (see GraceWindows):
   * it joins the revocation's obligation, or starts one when the revocation matched nothing.
   */
  joinLate(
    input: Omit<ObligationInput, 'live' | 'ended'>,
    rec: TokenRecord,
    seq: number | undefined,
    now: number,
  ): Finding[] {
    const key = `${input.kind}:${input.ev.provider}:${input.ev.id}`;
    const ob = this.#obligations.get(key);
    if (!ob) return this.start({ ...input, live: [rec], ended: [] }, now);
    if (ob.pending.has(rec.id)) return [];
    ob.pending.set(rec.id, { kind: rec.kind, fingerprint: rec.fingerprint });
    ob.matched++;
    ob.kinds.add(rec.kind);
    this.#byToken.add(rec.id, key);
    if (ob.findingId !== undefined) this.#book.update(ob.findingId, this.#attrs(ob), [seq]);
    else if (ob.evidence.length < this.#opts.limits.maxEvidenceSeqs) ob.evidence.push(seq);
    return [];
  }

  /** A token was written: it may belong to a reused family, or be an awaited successor. */
  onTokenWritten(rec: TokenRecord, seq: number | undefined, now: number): Finding[] {
    const out: Finding[] = [];
    // Nothing watches for any token (the usual case): no set of watchers per write.
    if (this.#byWatchId.size === 0) return out;
    for (const key of this.#watchersOf(rec)) {
      const ob = this.#obligations.get(key);
      if (!ob) continue;
      if (ob.kind === 'refresh_reuse' && !ob.pending.has(rec.id)) {
        ob.pending.set(rec.id, { kind: rec.kind, fingerprint: rec.fingerprint });
        ob.matched++;
        ob.kinds.add(rec.kind);
        this.#byToken.add(rec.id, key);
        if (ob.findingId !== undefined) this.#book.update(ob.findingId, this.#attrs(ob), [seq]);
      } else if (ob.kind === 'rotation' && !ob.successorSeen) {
        ob.successorSeen = true;
        if (ob.findingId !== undefined)
          this.#book.update(ob.findingId, { successorWritten: true }, [seq]);
        out.push(...this.#advance(ob, now));
      }
    }
    return out;
  }

  /** A token left Redis (`lost`: dropped from the bounded view, fate unknown). */
  onTokenLeft(
    rec: Pick<TokenRecord, 'id' | 'endedAt' | 'endSeq'>,
    now: number,
    lost: boolean,
  ): Finding[] {
    const out: Finding[] = [];
    for (const key of this.#byToken.members(rec.id)) {
      this.#byToken.delete(rec.id, key);
      const ob = this.#obligations.get(key);
      if (!ob) continue;
      ob.pending.delete(rec.id);
      if (lost) ob.lost++;
      else ob.lastLeftAt = Math.max(ob.lastLeftAt ?? -Infinity, rec.endedAt ?? now);
      if (ob.findingId !== undefined)
        this.#book.update(ob.findingId, this.#attrs(ob), [rec.endSeq]);
      else if (ob.evidence.length < this.#opts.limits.maxEvidenceSeqs) ob.evidence.push(rec.endSeq);
      out.push(...this.#advance(ob, now));
    }
    return out;
  }

  /** A tracked key was renamed: the token still lives under its new identity. */
  move(from: string, to: string): void {
    for (const key of this.#byToken.members(from)) {
      this.#byToken.delete(from, key);
      const ob = this.#obligations.get(key);
      const info = ob?.pending.get(from);
      if (!ob || !info) continue;
      ob.pending.delete(from);
      ob.pending.set(to, info);
      this.#byToken.add(to, key);
    }
  }

  tick(now: number): Finding[] {
    const out: Finding[] = [];
    for (const key of [...this.#awaitingDeadline]) {
      const ob = this.#obligations.get(key);
      if (!ob) this.#awaitingDeadline.delete(key);
      else if (now >= ob.deadline) out.push(...this.#advance(ob, now));
    }
    return out;
  }

  /** Moves an obligation on: past its deadline it is missed; once done it completes. */
  #advance(ob: Obligation, now: number): Finding[] {
    const out: Finding[] = [];
    if (!ob.deadlinePassed && now >= ob.deadline) {
      ob.deadlinePassed = true;
      this.#awaitingDeadline.delete(ob.key);
      if (!this.#done(ob)) out.push(...this.#missed(ob, now));
      else if (this.#leftLate(ob)) {
        // The last token left after the deadline, before any turn saw the deadline pass
        // (deadlines are checked once a second): missed all the same. Opened as of the deadline,
        // so whether the finding exists does not depend on when the check happened to run.
        out.push(...this.#missed(ob, ob.deadline));
      }
    }
    if (this.#done(ob))
      out.push(...this.#complete(ob, now, ob.lost > 0 ? 'tracking_lost' : 'propagated'));
    return out;
  }

  /** Every token has left, the last of them after the deadline (revocation, rotation). */
  #leftLate(ob: Obligation): boolean {
    return ob.kind !== 'refresh_reuse' && (ob.lastLeftAt ?? -Infinity) > ob.deadline;
  }

  #done(ob: Obligation): boolean {
    if (ob.pending.size > 0) return false;
    // Reuse stays open for the whole SLA so the auditor sees it even when nothing was cached.
    if (ob.kind === 'refresh_reuse') return ob.deadlinePassed;
    if (ob.kind === 'rotation') return !ob.successorExpected || ob.successorSeen;
    return true;
  }

  #missed(ob: Obligation, now: number): Finding[] {
    const n = ob.pending.size;
    const { provider, type } = ob.ev;
    // All gone by now, the last after the deadline (#leftLate): say how late, not "0 tokens".
    const late =
      n === 0 && this.#leftLate(ob)
        ? `; the last left Redis ${secs((ob.lastLeftAt ?? 0) - ob.deadline)} s after the deadline`
        : '';
    const forSubject = ob.ev.subject === undefined ? '' : ` for subject ${ob.ev.subject}`;
    if (ob.kind === 'refresh_reuse') {
      if (ob.findingId !== undefined)
        this.#book.update(ob.findingId, { ...this.#attrs(ob), slaMet: false });
      return [];
    }
    const f =
      ob.kind === 'revocation'
        ? this.#book.open(
            {
              ...this.#fields(ob),
              rule: 'revocation_not_propagated',
              key: ob.eventKey,
              summary:
                late === ''
                  ? `${plural(n, 'token')} of ${ob.matched} still in Redis ${ob.slaSeconds} s after ${provider} ${type}${forSubject}.`
                  : `Revoked tokens were still in Redis ${ob.slaSeconds} s after ${provider} ${type}${forSubject}${late}.`,
              attributes: this.#attrs(ob),
            },
            now,
          )
        : this.#book.open(
            {
              ...this.#fields(ob),
              rule: 'rotation_incomplete',
              key: ob.eventKey,
              summary:
                late !== ''
                  ? `Rotated-out tokens were still in Redis ${ob.slaSeconds} s after ${provider} token_refreshed${late}.`
                  : n > 0
                    ? `${plural(n, 'rotated-out token')} still in Redis ${ob.slaSeconds} s after ${provider} token_refreshed (dangling session).`
                    : `The successor of a rotated token was not written to Redis within ${ob.slaSeconds} s of ${provider} token_refreshed.`,
              attributes: { ...this.#attrs(ob), successorWritten: ob.successorSeen },
            },
            now,
          );
    ob.findingId = f?.id;
    return f ? [f] : [];
  }

  #complete(ob: Obligation, now: number, resolution: 'propagated' | 'tracking_lost'): Finding[] {
    this.#forget(ob);
    const known = ob.lost === 0 && ob.lastLeftAt !== undefined;
    const latencyMs = known ? Math.max(0, (ob.lastLeftAt ?? 0) - ob.revokedAt) : undefined;
    const metSla = known ? (ob.lastLeftAt ?? 0) <= ob.deadline : null;
    if (ob.kind !== 'rotation' && ob.matched > 0) {
      this.#observe({
        provider: ob.ev.provider,
        providerEventId: ob.ev.id,
        eventType: ob.ev.type,
        latencySeconds: latencyMs === undefined ? null : latencyMs / 1000,
        metSla,
        slaSeconds: ob.slaSeconds,
        tokens: ob.matched,
        tokensGoneBeforeEvent: ob.goneBeforeEvent,
      });
    }
    const latency = latencyMs === undefined ? null : secs(latencyMs);
    const lostNote =
      resolution === 'tracking_lost'
        ? ' (some tokens left unobserved: dropped from the bounded view or gone while tokenwatch was down; latency unknown)'
        : '';
    const summary =
      ob.kind === 'revocation'
        ? `All ${plural(ob.matched, 'token')} revoked by ${ob.ev.provider} ${ob.ev.type} left Redis after ${latency ?? '?'} s (SLA ${ob.slaSeconds} s)${lostNote}.`
        : ob.kind === 'refresh_reuse'
          ? ob.matched === 0
            ? `Refresh token reuse reported by ${ob.ev.provider}: no token of the family was in Redis during the ${ob.slaSeconds} s SLA.`
            : `No token of the reused refresh-token family remains in Redis (last left after ${latency ?? '?'} s, SLA ${ob.slaSeconds} s)${lostNote}.`
          : `Rotation completed: no rotated-out token remains in Redis${ob.successorExpected ? ' and the successor was written' : ''}${lostNote}.`;
    const f = this.#book.resolve(ob.findingId, now, summary, {
      ...this.#attrs(ob),
      resolution: ob.kind === 'refresh_reuse' && ob.matched === 0 ? 'no_live_tokens' : resolution,
      latencySeconds: latency,
      slaMet: metSla,
    });
    return f ? [f] : [];
  }

  #evicted(ob: Obligation): void {
    // Capacity eviction: the remaining tokens can no longer be followed. Their index entries go
    // first: #forget (through #complete) unlinks only the tokens still pending.
    ob.lost += ob.pending.size;
    for (const id of ob.pending.keys()) this.#byToken.delete(id, ob.key);
    ob.pending.clear();
    this.#spill.push(...this.#complete(ob, this.#now, 'tracking_lost'));
  }

  #forget(ob: Obligation): void {
    this.#obligations.delete(ob.key);
    this.#awaitingDeadline.delete(ob.key);
    for (const id of ob.pending.keys()) this.#byToken.delete(id, ob.key);
    for (const id of ob.watchIds) this.#byWatchId.delete(id, ob.key);
  }

  #drainSpill(): Finding[] {
    const out = this.#spill;
    this.#spill = [];
    return out;
  }

  #watchersOf(rec: TokenRecord): Set<string> {
    const keys = new Set<string>();
    for (const t of rec.joins.tokenIds) this.#byWatchId.members(t).forEach((k) => keys.add(k));
    return keys;
  }

  #fields(ob: Obligation) {
    const infos = [...ob.pending.values()];
    const kinds = new Set(infos.map((i) => i.kind));
    return {
      kind: kinds.size === 1 ? infos[0]?.kind : undefined,
      fingerprint: infos.length === 1 ? infos[0]?.fingerprint : undefined,
      subject: ob.ev.subject,
      sessionId: ob.ev.sessionId,
      evidence: ob.evidence,
    };
  }

  #attrs(ob: Obligation): Finding['attributes'] {
    return {
      provider: ob.ev.provider,
      providerEventId: ob.ev.id,
      eventType: ob.ev.type,
      revokedAt: ob.revokedAt,
      deadline: ob.deadline,
      slaSeconds: ob.slaSeconds,
      tokensMatched: ob.matched,
      tokensStillLive: ob.pending.size,
      tokensGoneBeforeEvent: ob.goneBeforeEvent,
      kinds: [...ob.kinds].sort().join(',') || null,
    };
  }
}
