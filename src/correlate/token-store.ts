import type { TokenEventType } from '../domain/token-event.js';
import { BoundedMap } from './bounded-map.js';
import { subjectClientKey } from './join-keys.js';
import type { TokenJoins } from './join-keys.js';
import { SetIndex } from './set-index.js';

/** Rules whose findings are tied to one token and resolve when it leaves Redis. */
export type TokenFindingRule =
  'token_without_expiry' | 'ttl_exceeds_policy' | 'unattributed_token' | 'write_after_revocation';

/** What the correlator knows about one Redis token key. Holds no keyAttrs, only join keys. */
export interface TokenRecord {
  readonly id: string;
  readonly kind: string;
  readonly fingerprint: string;
  joins: TokenJoins;
  /** First sighting while live (write, or first event seen for a key written before we looked). */
  firstSeenAt: number;
  /** Last observed write (`written`); equals firstSeenAt when never written under our eyes. */
  writtenAt: number;
  /** A `written` event was observed (false: known only from appeared / ttl / rename). */
  writeSeen: boolean;
  dueAt: number | null | undefined;
  /** Evidence seq of the last write. */
  seq: number | undefined;
  endedAt: number | undefined;
  endType: TokenEventType | undefined;
  endSeq: number | undefined;
  /** Ids of this token's open per-token findings (NO_OPEN when none; see setOpen). */
  open: OpenFindings;
}

/** Ids of a token's open per-token findings. */
export type OpenFindings = Partial<Record<TokenFindingRule, string>>;

/**
 * The `open` of every record without an open finding (nearly all of them): one shared frozen
 * object rather than an empty one per token (56 bytes each). Change `open` only through
 * setOpen / clearOpen, which copy on the first write.
 */
export const NO_OPEN: OpenFindings = Object.freeze({});

/** Ties an open finding of `rule` to the token. */
export function setOpen(rec: TokenRecord, rule: TokenFindingRule, id: string): void {
  if (rec.open === NO_OPEN) rec.open = {};
  rec.open[rule] = id;
}

/** Unties the token's finding of `rule`; back to the shared NO_OPEN when none is left. */
export function clearOpen(rec: TokenRecord, rule: TokenFindingRule): void {
  if (rec.open[rule] === undefined) return;
  delete rec.open[rule];
  if (Object.keys(rec.open).length === 0) rec.open = NO_OPEN;
}

/** Which tokens a provider event names. The result is the union over the keys given. */
export interface TokenQuery {
  tokenIds?: readonly string[];
  sessionId?: string | undefined;
  familyId?: string | undefined;
  subject?: string | undefined;
  clientId?: string | undefined;
  /** Match `subject` whatever the client (account-wide events). */
  anyClient?: boolean;
  /** With subject + clientId, also match tokens whose kind carries no client. */
  includeClientless?: boolean;
}

export interface TokenStoreSizes {
  tokens: number;
  tokenIdIndex: number;
  sessionIndex: number;
  subjectClientIndex: number;
  subjectIndex: number;
  familyIndex: number;
}

/**
 * Token records with their join-key indices, capped (LRU by last touch). Every index entry
 * belongs to a record, so the indices are bounded by the record cap.
 */
export class TokenStore {
  readonly #records: BoundedMap<string, TokenRecord>;
  readonly #byTokenId = new SetIndex();
  readonly #bySession = new SetIndex();
  readonly #bySubjectClient = new SetIndex();
  readonly #bySubject = new SetIndex();
  readonly #byFamily = new SetIndex();

  constructor(capacity: number, onEvict: (rec: TokenRecord) => void) {
    this.#records = new BoundedMap(capacity, (_id, rec) => {
      this.#unindex(rec);
      onEvict(rec);
    });
  }

  get size(): number {
    return this.#records.size;
  }

  get evictions(): number {
    return this.#records.evictions;
  }

  get(id: string): TokenRecord | undefined {
    return this.#records.get(id);
  }

  /** Inserts a record at the newest end, replacing (and un-indexing) any with the same id. */
  put(rec: TokenRecord): void {
    const old = this.#records.get(rec.id);
    if (old) this.remove(rec.id);
    this.#records.set(rec.id, rec);
    this.#index(rec);
  }

  /** Replaces a record's join keys, keeping the indices in step. */
  rejoin(rec: TokenRecord, joins: TokenJoins): void {
    this.#unindex(rec);
    rec.joins = joins;
    this.#index(rec);
  }

  touch(id: string): void {
    this.#records.touch(id);
  }

  remove(id: string): TokenRecord | undefined {
    const rec = this.#records.get(id);
    if (!rec) return undefined;
    this.#records.delete(id);
    this.#unindex(rec);
    return rec;
  }

  /** Oldest (least recently touched) first. */
  values(): IterableIterator<TokenRecord> {
    return this.#records.values();
  }

  find(q: TokenQuery): TokenRecord[] {
    const ids = queryMatches(q, {
      tokenId: (t) => this.#byTokenId.members(t),
      session: (id) => this.#bySession.members(id),
      family: (id) => this.#byFamily.members(id),
      subject: (sub) => this.#bySubject.members(sub),
      subjectClient: (key) => this.#bySubjectClient.members(key),
    });
    const out: TokenRecord[] = [];
    for (const id of ids) {
      const rec = this.#records.get(id);
      if (rec) out.push(rec);
    }
    return out;
  }

  sizes(): TokenStoreSizes {
    return {
      tokens: this.#records.size,
      tokenIdIndex: this.#byTokenId.size,
      sessionIndex: this.#bySession.size,
      subjectClientIndex: this.#bySubjectClient.size,
      subjectIndex: this.#bySubject.size,
      familyIndex: this.#byFamily.size,
    };
  }

  #index(rec: TokenRecord): void {
    this.#each(rec, (index, key) => index.add(key, rec.id));
  }

  #unindex(rec: TokenRecord): void {
    this.#each(rec, (index, key) => index.delete(key, rec.id));
  }

  #each(rec: TokenRecord, fn: (index: SetIndex, key: string) => void): void {
    const j = rec.joins;
    for (const t of j.tokenIds) fn(this.#byTokenId, t);
    if (j.sessionId !== undefined) fn(this.#bySession, j.sessionId);
    if (j.familyId !== undefined) fn(this.#byFamily, j.familyId);
    if (j.subject !== undefined) {
      fn(this.#bySubject, j.subject);
      fn(this.#bySubjectClient, subjectClientKey(j.subject, j.clientId));
    }
  }
}

/** The join indexes a store answers a TokenQuery from, each giving its members for a value. */
export interface QueryIndexes<M> {
  tokenId(tokenId: string): Iterable<M>;
  session(sessionId: string): Iterable<M>;
  family(familyId: string): Iterable<M>;
  subject(subject: string): Iterable<M>;
  subjectClient(key: string): Iterable<M>;
}

/** Members of every index `q` names (the live store and the ended-token store share it). */
export function queryMatches<M>(q: TokenQuery, ix: QueryIndexes<M>): Set<M> {
  const out = new Set<M>();
  const add = (members: Iterable<M>) => {
    for (const m of members) out.add(m);
  };
  for (const t of q.tokenIds ?? []) add(ix.tokenId(t));
  if (q.sessionId !== undefined) add(ix.session(q.sessionId));
  if (q.familyId !== undefined) add(ix.family(q.familyId));
  if (q.subject !== undefined) {
    if (q.anyClient) add(ix.subject(q.subject));
    else if (q.clientId !== undefined) {
      add(ix.subjectClient(subjectClientKey(q.subject, q.clientId)));
      if (q.includeClientless) add(ix.subjectClient(subjectClientKey(q.subject, undefined)));
    }
  }
  return out;
}
