import type { Finding } from '../../domain/finding.js';
import type { ProviderEvent } from '../../domain/provider-event.js';
import { BoundedMap } from '../bounded-map.js';
import type { FindingBook } from '../finding-book.js';
import { secs, tokenFields } from '../format.js';
import type { ResolvedCorrelatorOptions } from '../options.js';
import type { RevokedKeys } from '../revocation-scope.js';
import { newest } from '../snapshot.js';
import { arr, num, obj, oneOf, optNum, str } from '../snapshot-read.js';
import { PROVIDER_EVENT_TYPES } from '../../domain/provider-event.js';
import type { ProviderName } from '../../domain/provider-event.js';
import { setOpen } from '../token-store.js';
import type { TokenRecord, TokenStore } from '../token-store.js';

interface Revoked {
  provider: ProviderEvent['provider'];
  eventId: string;
  type: ProviderEvent['type'];
  revokedAt: number;
  seq: number | undefined;
}

type Via = 'token_id' | 'session' | 'subject';

/**
 * `write_after_revocation` (CC7.2): a token written for a token id, session or (disabled)
 * subject after the provider revoked it. Checked both ways round, because the provider event
 * may reach us after the write: on each write against remembered revocations, and on each
 * revocation against live tokens written after it.
 */
export class WriteAfterRevocationRule {
  readonly #opts: ResolvedCorrelatorOptions;
  readonly #book: FindingBook;
  readonly #byTokenId: BoundedMap<string, Revoked>;
  readonly #bySession: BoundedMap<string, Revoked>;
  readonly #bySubject: BoundedMap<string, Revoked>;

  constructor(opts: ResolvedCorrelatorOptions, book: FindingBook) {
    this.#opts = opts;
    this.#book = book;
    const cap = opts.limits.maxRevocationMemory;
    this.#byTokenId = new BoundedMap(cap);
    this.#bySession = new BoundedMap(cap);
    this.#bySubject = new BoundedMap(cap);
  }

  get sizes(): { tokenIds: number; sessions: number; subjects: number } {
    return {
      tokenIds: this.#byTokenId.size,
      sessions: this.#bySession.size,
      subjects: this.#bySubject.size,
    };
  }

  get evictions(): number {
    return this.#byTokenId.evictions + this.#bySession.evictions + this.#bySubject.evictions;
  }

  /** Remembered revocations still within `revocationMemorySeconds`, newest `max` per key type. */
  snapshot(
    now: number,
    max: number,
    truncated: Record<string, number>,
  ): { tokenIds: unknown[]; sessions: unknown[]; subjects: unknown[] } {
    const horizon = now - this.#opts.revocationMemorySeconds * 1000;
    const take = (m: BoundedMap<string, Revoked>, section: string) =>
      newest(
        [...m.entries()].filter(([, r]) => r.revokedAt >= horizon),
        max,
        section,
        truncated,
      ).map(([k, r]) => [k, { ...r }]);
    return {
      tokenIds: take(this.#byTokenId, 'revokedTokenIds'),
      sessions: take(this.#bySession, 'revokedSessions'),
      subjects: take(this.#bySubject, 'revokedSubjects'),
    };
  }

  /** @throws TokenwatchError ERR_SNAPSHOT_INVALID */
  restore(raw: unknown, path: string): void {
    const o = obj(raw, path);
    const fill = (m: BoundedMap<string, Revoked>, v: unknown, p: string) => {
      for (const [i, e] of arr(v, p, m.capacity).entries()) {
        const pair = arr(e, `${p}[${i}]`, 2);
        const r = obj(pair[1], `${p}[${i}][1]`);
        m.set(str(pair[0], `${p}[${i}][0]`), {
          provider: str(r.provider, `${p}[${i}][1].provider`) as ProviderName,
          eventId: str(r.eventId, `${p}[${i}][1].eventId`),
          type: oneOf(r.type, `${p}[${i}][1].type`, PROVIDER_EVENT_TYPES),
          revokedAt: num(r.revokedAt, `${p}[${i}][1].revokedAt`),
          seq: optNum(r.seq, `${p}[${i}][1].seq`),
        });
      }
    };
    fill(this.#byTokenId, o.tokenIds, `${path}.tokenIds`);
    fill(this.#bySession, o.sessions, `${path}.sessions`);
    fill(this.#bySubject, o.subjects, `${path}.subjects`);
  }

  onRevocation(
    ev: ProviderEvent,
    keys: RevokedKeys,
    revokedAt: number,
    seq: number | undefined,
    now: number,
    live: TokenStore,
  ): Finding[] {
    const entry: Revoked = { provider: ev.provider, eventId: ev.id, type: ev.type, revokedAt, seq };
    const remember = (map: BoundedMap<string, Revoked>, key: string) => {
      const old = map.get(key);
      if (old === undefined || old.revokedAt > revokedAt) map.set(key, entry);
    };
    for (const id of keys.tokenIds) remember(this.#byTokenId, id);
    if (keys.sessionId !== undefined) remember(this.#bySession, keys.sessionId);
    if (keys.subject !== undefined) remember(this.#bySubject, keys.subject);

    const out: Finding[] = [];
    const query = {
      tokenIds: keys.tokenIds,
      sessionId: keys.sessionId,
      subject: keys.subject,
      anyClient: true,
    };
    for (const rec of live.find(query)) {
      if (!this.#isAfter(rec, revokedAt)) continue;
      const via: Via = rec.joins.tokenIds.some((t) => keys.tokenIds.includes(t))
        ? 'token_id'
        : rec.joins.sessionId !== undefined && rec.joins.sessionId === keys.sessionId
          ? 'session'
          : 'subject';
      const f = this.#flag(rec, entry, via, rec.seq, now);
      if (f) out.push(f);
    }
    return out;
  }

  onWrite(rec: TokenRecord, seq: number | undefined, now: number): Finding[] {
    const hit = this.#lookup(rec);
    if (!hit || !this.#isAfter(rec, hit.entry.revokedAt)) return [];
    const f = this.#flag(rec, hit.entry, hit.via, seq, now);
    return f ? [f] : [];
  }

  expire(now: number): void {
    const horizon = now - this.#opts.revocationMemorySeconds * 1000;
    const stale = (r: Revoked) => r.revokedAt < horizon;
    this.#byTokenId.dropOldestWhile(stale);
    this.#bySession.dropOldestWhile(stale);
    this.#bySubject.dropOldestWhile(stale);
  }

  #isAfter(rec: TokenRecord, revokedAt: number): boolean {
    const since = rec.writtenAt - revokedAt;
    return (
      rec.writeSeen &&
      since > this.#opts.revocationGraceSeconds * 1000 &&
      since <= this.#opts.revocationMemorySeconds * 1000
    );
  }

  #lookup(rec: TokenRecord): { entry: Revoked; via: Via } | undefined {
    for (const t of rec.joins.tokenIds) {
      const entry = this.#byTokenId.get(t);
      if (entry) return { entry, via: 'token_id' };
    }
    const s =
      rec.joins.sessionId === undefined ? undefined : this.#bySession.get(rec.joins.sessionId);
    if (s) return { entry: s, via: 'session' };
    const u = rec.joins.subject === undefined ? undefined : this.#bySubject.get(rec.joins.subject);
    if (u) return { entry: u, via: 'subject' };
    return undefined;
  }

  #flag(
    rec: TokenRecord,
    r: Revoked,
    via: Via,
    seq: number | undefined,
    now: number,
  ): Finding | undefined {
    if (this.#book.isOpen(rec.open.write_after_revocation)) {
      this.#book.update(rec.open.write_after_revocation, { lastWrittenAt: rec.writtenAt }, [seq]);
      return undefined;
    }
    const after = secs(rec.writtenAt - r.revokedAt);
    const f = this.#book.open(
      {
        rule: 'write_after_revocation',
        key: rec.fingerprint,
        summary: `A ${rec.kind} token was written to Redis ${after} s after ${r.provider} ${r.type} revoked its ${via.replace('_', ' ')}.`,
        ...tokenFields(rec),
        evidence: [r.seq, seq],
        attributes: {
          matchedBy: via,
          provider: r.provider,
          providerEventId: r.eventId,
          revocationType: r.type,
          revokedAt: r.revokedAt,
          writtenAt: rec.writtenAt,
          secondsAfterRevocation: after,
        },
      },
      now,
    );
    if (f) setOpen(rec, 'write_after_revocation', f.id);
    return f;
  }
}
