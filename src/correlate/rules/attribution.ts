import type { Finding } from '../../domain/finding.js';
import type { ProviderEvent, ProviderEventType } from '../../domain/provider-event.js';
import { BoundedMap } from '../bounded-map.js';
import type { FindingBook } from '../finding-book.js';
import { tokenFields } from '../format.js';
import { subjectClientKey } from '../join-keys.js';
import type { ResolvedCorrelatorOptions } from '../options.js';
import { SetIndex } from '../set-index.js';
import { newest } from '../snapshot.js';
import { arr, num, obj, optNum, optStr, str } from '../snapshot-read.js';
import { clearOpen, setOpen } from '../token-store.js';
import type { TokenRecord } from '../token-store.js';
import type { TokenView } from '../token-view.js';

/** Provider events that explain a token appearing in the cache. */
export const ISSUANCE_TYPES: ReadonlySet<ProviderEventType> = new Set([
  'token_issued',
  'token_refreshed',
  'session_started',
]);

interface Issuance {
  key: string;
  provider: ProviderEvent['provider'];
  eventId: string;
  occurredAt: number;
  tokenIds: string[];
  sessionId: string | undefined;
  subject: string | undefined;
  clientId: string | undefined;
  seq: number | undefined;
}

interface Pending {
  id: string;
  writtenAt: number;
  deadline: number;
  seq: number | undefined;
}

/**
 * `unattributed_token` (CC6.2, CC7.2): for kinds with `requireProviderEvent`, each new token
 * must be explained by an issuance within ±window of its write. Judged at write + window, since
 * provider events (webhooks, polled logs) routinely arrive after the Redis write; one arriving
 * even later still resolves the finding.
 */
export class AttributionRule {
  readonly #opts: ResolvedCorrelatorOptions;
  readonly #book: FindingBook;
  readonly #view: TokenView;
  readonly #issuances: BoundedMap<string, Issuance>;
  readonly #byTokenId = new SetIndex();
  readonly #bySession = new SetIndex();
  readonly #bySubject = new SetIndex();
  readonly #bySubjectClient = new SetIndex();
  readonly #pending: BoundedMap<string, Pending>;

  constructor(opts: ResolvedCorrelatorOptions, book: FindingBook, view: TokenView) {
    this.#opts = opts;
    this.#book = book;
    this.#view = view;
    this.#issuances = new BoundedMap(opts.limits.maxRecentIssuances, (_k, i) => this.#unindex(i));
    this.#pending = new BoundedMap(opts.limits.maxPendingAttributions);
  }

  get sizes(): { issuances: number; pending: number } {
    return { issuances: this.#issuances.size, pending: this.#pending.size };
  }

  get evictions(): { issuances: number; pending: number } {
    return { issuances: this.#issuances.evictions, pending: this.#pending.evictions };
  }

  /** Issuances still inside the matching horizon and pending judgements, newest `max` each. */
  snapshot(
    max: number,
    truncated: Record<string, number>,
  ): { issuances: unknown[]; pending: unknown[]; tokenIds: string[] } {
    const pending = newest([...this.#pending.values()], max, 'pendingAttributions', truncated);
    return {
      issuances: newest([...this.#issuances.values()], max, 'issuances', truncated).map((i) => ({
        ...i,
        tokenIds: [...i.tokenIds],
      })),
      pending: pending.map((p) => ({ ...p })),
      tokenIds: pending.map((p) => p.id),
    };
  }

  /** @throws TokenwatchError ERR_SNAPSHOT_INVALID */
  restore(raw: unknown, path: string): void {
    const o = obj(raw, path);
    const issuances = arr(o.issuances, `${path}.issuances`, this.#issuances.capacity);
    for (const [n, v] of issuances.entries()) {
      const p = `${path}.issuances[${n}]`;
      const i = obj(v, p);
      const provider = str(i.provider, `${p}.provider`) as Issuance['provider'];
      const eventId = str(i.eventId, `${p}.eventId`);
      const iss: Issuance = {
        key: `${provider}:${eventId}`,
        provider,
        eventId,
        occurredAt: num(i.occurredAt, `${p}.occurredAt`),
        tokenIds: arr(i.tokenIds, `${p}.tokenIds`, 256).map((t, j) =>
          str(t, `${p}.tokenIds[${j}]`),
        ),
        sessionId: optStr(i.sessionId, `${p}.sessionId`),
        subject: optStr(i.subject, `${p}.subject`),
        clientId: optStr(i.clientId, `${p}.clientId`),
        seq: optNum(i.seq, `${p}.seq`),
      };
      this.#issuances.set(iss.key, iss);
      this.#each(iss, (index, key) => index.add(key, iss.key));
    }
    for (const [n, v] of arr(o.pending, `${path}.pending`, this.#pending.capacity).entries()) {
      const p = `${path}.pending[${n}]`;
      const x = obj(v, p);
      const id = str(x.id, `${p}.id`, 2048);
      this.#pending.set(id, {
        id,
        writtenAt: num(x.writtenAt, `${p}.writtenAt`),
        deadline: num(x.deadline, `${p}.deadline`),
        seq: optNum(x.seq, `${p}.seq`),
      });
    }
  }

  /** A token newly written: attributed now, or judged at write + window. */
  onWrite(rec: TokenRecord, seq: number | undefined): void {
    if (!this.#requires(rec) || this.#attributed(rec)) return;
    this.#pending.delete(rec.id);
    const deadline = rec.firstSeenAt + this.#windowMs();
    this.#pending.set(rec.id, { id: rec.id, writtenAt: rec.firstSeenAt, deadline, seq });
  }

  onIssuance(ev: ProviderEvent, seq: number | undefined, now: number): Finding[] {
    const iss: Issuance = {
      key: `${ev.provider}:${ev.id}`,
      provider: ev.provider,
      eventId: ev.id,
      occurredAt: ev.occurredAt,
      tokenIds: [...new Set([...ev.tokenIds, ...(ev.rotation?.next ?? [])])],
      sessionId: ev.sessionId,
      subject: ev.subject,
      clientId: ev.clientId,
      seq,
    };
    this.#issuances.set(iss.key, iss);
    this.#each(iss, (index, key) => index.add(key, iss.key));

    const out: Finding[] = [];
    const query = {
      tokenIds: iss.tokenIds,
      sessionId: iss.sessionId,
      subject: iss.subject,
      clientId: iss.clientId,
      anyClient: iss.clientId === undefined,
      includeClientless: true,
    };
    for (const rec of this.#view.live.find(query)) {
      if (!this.#requires(rec) || !this.#within(iss, rec)) continue;
      if (this.#pending.get(rec.id)?.writtenAt === rec.firstSeenAt) this.#pending.delete(rec.id);
      const f = this.#book.resolve(
        rec.open.unattributed_token,
        now,
        `The ${rec.kind} token was attributed late to ${ev.provider} ${ev.type}.`,
        { resolution: 'attributed_late', provider: ev.provider, providerEventId: ev.id },
        [seq],
      );
      if (f) {
        clearOpen(rec, 'unattributed_token');
        out.push(f);
      }
    }
    // Tokens already gone whose judgement is still pending.
    for (const rec of this.#view.ended.find(query)) {
      if (this.#within(iss, rec) && this.#pending.get(rec.id)?.writtenAt === rec.firstSeenAt) {
        this.#pending.delete(rec.id);
      }
    }
    return out;
  }

  move(from: string, to: string): void {
    const p = this.#pending.get(from);
    if (!p) return;
    this.#pending.delete(from);
    this.#pending.set(to, { ...p, id: to });
  }

  tick(now: number): Finding[] {
    const out: Finding[] = [];
    this.#pending.dropOldestWhile(
      (p) => p.deadline <= now,
      (p) => out.push(...this.#judge(p, now)),
    );
    const horizon = now - 2 * this.#windowMs();
    this.#issuances.dropOldestWhile(
      (i) => i.occurredAt < horizon,
      (i) => this.#unindex(i),
    );
    return out;
  }

  #judge(p: Pending, now: number): Finding[] {
    const live = this.#view.live.get(p.id);
    const rec = live?.firstSeenAt === p.writtenAt ? live : this.#view.ended.get(p.id);
    if (!rec || rec.firstSeenAt !== p.writtenAt) return [];
    const windowS = this.#opts.attributionWindowSeconds;
    const opened = this.#book.open(
      {
        rule: 'unattributed_token',
        key: rec.fingerprint,
        summary: `A ${rec.kind} token was written to Redis with no token_issued, token_refreshed or session_started provider event within ±${windowS} s.`,
        ...tokenFields(rec),
        evidence: [p.seq],
        attributes: { writtenAt: p.writtenAt, windowSeconds: windowS, deadline: p.deadline },
      },
      now,
    );
    if (!opened) return [];
    if (rec === live) {
      setOpen(rec, 'unattributed_token', opened.id);
      return [opened];
    }
    // Already gone: the auditor still sees the unexplained write, opened and closed together.
    const resolved = this.#book.resolve(
      opened.id,
      now,
      `An unattributed ${rec.kind} token had already left Redis (${rec.endType ?? 'ended'}).`,
      { resolution: 'left_redis', endType: rec.endType ?? null },
      [rec.endSeq],
    );
    return resolved ? [opened, resolved] : [opened];
  }

  #requires(rec: TokenRecord): boolean {
    return this.#opts.kinds.get(rec.kind)?.requireProviderEvent ?? false;
  }

  #windowMs(): number {
    return this.#opts.attributionWindowSeconds * 1000;
  }

  #within(iss: Issuance, rec: TokenRecord): boolean {
    return Math.abs(iss.occurredAt - rec.firstSeenAt) <= this.#windowMs();
  }

  #attributed(rec: TokenRecord): boolean {
    const keys = new Set<string>();
    const add = (members: readonly string[]) => members.forEach((k) => keys.add(k));
    for (const t of rec.joins.tokenIds) add(this.#byTokenId.members(t));
    if (rec.joins.sessionId !== undefined) add(this.#bySession.members(rec.joins.sessionId));
    const subject = rec.joins.subject;
    if (subject !== undefined) {
      // Lenient on purpose: an issuance without client explains any of the subject's tokens,
      // and a token whose kind carries no client is explained by any of the subject's issuances.
      if (rec.joins.clientId === undefined) add(this.#bySubject.members(subject));
      else {
        add(this.#bySubjectClient.members(subjectClientKey(subject, rec.joins.clientId)));
        add(this.#bySubjectClient.members(subjectClientKey(subject, undefined)));
      }
    }
    for (const k of keys) {
      const iss = this.#issuances.get(k);
      if (iss && this.#within(iss, rec)) return true;
    }
    return false;
  }

  #each(iss: Issuance, fn: (index: SetIndex, key: string) => void): void {
    for (const t of iss.tokenIds) fn(this.#byTokenId, t);
    if (iss.sessionId !== undefined) fn(this.#bySession, iss.sessionId);
    if (iss.subject !== undefined) {
      fn(this.#bySubject, iss.subject);
      fn(this.#bySubjectClient, subjectClientKey(iss.subject, iss.clientId));
    }
  }

  #unindex(iss: Issuance): void {
    this.#each(iss, (index, key) => index.delete(key, iss.key));
  }
}
