import type { TokenJoins } from './join-keys.js';
import { LiveColumns, NIL, OWN } from './live-columns.js';
import { LiveTokenRecord, NO_OPEN } from './token-record.js';
import type { OpenFindings, OpenSink, TokenRecord } from './token-record.js';
import { SlotIndex } from './slot-index.js';

export { NO_OPEN, clearOpen, setOpen } from './token-record.js';
export type { OpenFindings, TokenFindingRule, TokenRecord } from './token-record.js';

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
 * (subject, client) codes as one index key; clientless is 0. Exact while codes stay below 2^26:
 * codes are reused once freed, so they stay below the interned values held (at most four per
 * tracked token), and `correlate.limits` entries are capped at 10 000 000 by the config schema.
 */
const pairKey = (subject: number, client: number): number => subject * 0x4000000 + client + 1;

/**
 * The live view's token records with their join-key indices, capped (LRU by last touch), kept as
 * slot columns (see LiveColumns) rather than one object graph per token. Records are
 * materialised on read (LiveTokenRecord); the view changes a token through the slot methods,
 * rules change only its `open` (setOpen / clearOpen write it back). Join values are interned;
 * the indices map a value's code to slots, and a token id or session that is the token's own
 * fingerprint is found through the digest table instead of an index entry.
 */
export class TokenStore implements OpenSink {
  readonly capacity: number;
  readonly #cols: LiveColumns;
  readonly #onEvict: ((rec: TokenRecord) => void) | undefined;
  readonly #sink: OpenSink | undefined;
  readonly #evictedMatter: () => boolean;
  /** Open findings by slot: only tokens that have some (a handful among millions). */
  readonly #open = new Map<number, OpenFindings>();
  /** End fields of live records (only ever set by a restored snapshot carrying them). */
  readonly #ends = new Map<number, Pick<TokenRecord, 'endedAt' | 'endType' | 'endSeq'>>();
  /** Token ids other than the token's own fingerprint, encoded (LiveColumns.encodeFp). */
  readonly #extraIds = new Map<number, readonly string[]>();
  readonly #byExtraId = new SlotIndex<string>();
  readonly #bySession = new SlotIndex<number>();
  readonly #bySubjectClient = new SlotIndex<number>();
  readonly #bySubject = new SlotIndex<number>();
  readonly #byFamily = new SlotIndex<number>();
  #evictions = 0;

  /**
   * `opts.ends`: keep end time, type and seq in columns (the ended-token store; otherwise they
   * are rare and kept aside). `opts.detached`: records read are copies that write nothing back.
   * `onEvict`: told the record of each token the cap evicts; undefined: nobody is, and evicted
   * tokens are freed unread. `opts.evictedMatter`: asked before the cap evicts a token without
   * open findings; false frees it unread too: rebuilding its record (id, hex fingerprint, joins)
   * cost ~1 µs per eviction, and a store at its cap evicts once per new token (issue #19).
   * Absent: always told.
   */
  constructor(
    capacity: number,
    onEvict: ((rec: TokenRecord) => void) | undefined,
    opts: { ends?: boolean; detached?: boolean; evictedMatter?: () => boolean } = {},
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
    this.#onEvict = onEvict;
    this.#cols = new LiveColumns(opts.ends ?? false);
    this.#sink = opts.detached ? undefined : this;
    this.#evictedMatter = opts.evictedMatter ?? (() => true);
  }

  get size(): number {
    return this.#cols.size;
  }

  get evictions(): number {
    return this.#evictions;
  }

  /** Bytes of the typed-array columns (outside the V8 heap). */
  get columnBytes(): number {
    return this.#cols.bytes;
  }

  get(id: string): TokenRecord | undefined {
    const slot = this.#cols.slotOf(id);
    return slot < 0 ? undefined : this.record(slot);
  }

  /** The slot of `id`, -1 when not live; `digest`: TokenEvent.digest of its fingerprint. */
  slotOf(id: string, digest?: string): number {
    return this.#cols.slotOf(id, digest);
  }

  /** slotOf(id) for `id === scope + fingerprint` (tokenScope, tokenIdentity): see LiveColumns. */
  slotOfParts(id: string, scope: string, fingerprint: string, digest?: string): number {
    return this.#cols.slotOfParts(id, scope, fingerprint, digest);
  }

  /**
   * The record in `slot`. `id` / `fingerprint`: its texts when the caller has them already (an
   * event), which saves rebuilding them from the columns.
   */
  record(slot: number, id?: string, fingerprint?: string): LiveTokenRecord {
    const known = this.#cols.isStandard(slot);
    const fields = this.#fields(slot, known ? id : undefined, known ? fingerprint : undefined);
    return new LiveTokenRecord(fields, this.#sink, slot, this.#cols.gen(slot));
  }

  /** `rec` as the live record of `slot`, which `put(rec)` just filled (nothing is decoded). */
  bind(rec: TokenRecord, slot: number): LiveTokenRecord {
    return new LiveTokenRecord(rec, this.#sink, slot, this.#cols.gen(slot));
  }

  /**
   * Inserts a record at the newest end, replacing (and un-indexing) any with the same id.
   * `absent`: the caller has just found `rec.id` not live (slotOf -1), so it is not looked up again.
   */
  put(rec: TokenRecord, absent = false): number {
    const old = absent ? -1 : this.#cols.slotOf(rec.id);
    if (old >= 0) this.#detach(old, false);
    while (this.#cols.size >= this.capacity) {
      const oldest = this.#cols.oldest;
      if (oldest < 0) break;
      this.#evictions++;
      if (this.#onEvict && (this.#open.has(oldest) || this.#evictedMatter()))
        this.#onEvict(this.#detach(oldest, true) as TokenRecord);
      else this.#detach(oldest, false);
    }
    const c = this.#cols;
    const slot = c.add(rec.id, rec.fingerprint, rec.kind);
    c.setTimes(slot, rec.firstSeenAt, rec.writtenAt, rec.writeSeen, rec.seq);
    c.setDue(slot, rec.dueAt);
    if (rec.open !== NO_OPEN) this.#open.set(slot, rec.open);
    const end = { endedAt: rec.endedAt, endType: rec.endType, endSeq: rec.endSeq };
    if (c.keepsEnds) c.setEnd(slot, end);
    else if (end.endedAt !== undefined || end.endType !== undefined || end.endSeq !== undefined)
      this.#ends.set(slot, end);
    this.#join(slot, rec.fingerprint, rec.joins);
    return slot;
  }

  /** Replaces a record's join keys, keeping the indices in step. */
  rejoin(rec: TokenRecord, joins: TokenJoins): void {
    const slot = this.#cols.slotOf(rec.id);
    if (slot >= 0) this.rejoinSlot(slot, rec.fingerprint, joins);
    rec.joins = joins;
  }

  rejoinSlot(slot: number, fingerprint: string, joins: TokenJoins): void {
    this.#unjoin(slot);
    this.#join(slot, fingerprint, joins);
  }

  /** A write observed: its time, and its seq when given. */
  markWritten(slot: number, at: number, seq: number | undefined): void {
    this.#cols.markWritten(slot, at, seq);
  }

  setDue(slot: number, dueAt: number | null | undefined): void {
    this.#cols.setDue(slot, dueAt);
  }

  touch(id: string): void {
    const slot = this.#cols.slotOf(id);
    if (slot >= 0) this.#cols.touch(slot);
  }

  touchSlot(slot: number): void {
    this.#cols.touch(slot);
  }

  /** Removes the token; returns it as a detached record (with its open findings). */
  remove(id: string): TokenRecord | undefined {
    const slot = this.#cols.slotOf(id);
    return slot < 0 ? undefined : this.#detach(slot, true);
  }

  /** Oldest (least recently touched) first. */
  *values(): IterableIterator<TokenRecord> {
    for (let s = this.#cols.oldest; s >= 0; s = this.#cols.newer(s)) yield this.record(s);
  }

  /** Slots, oldest first. Do not change the store while iterating. */
  *slots(): IterableIterator<number> {
    for (let s = this.#cols.oldest; s >= 0; s = this.#cols.newer(s)) yield s;
  }

  /** End time of the token in `slot` (0 when unknown); only for a store that keeps ends. */
  endedAt(slot: number): number {
    return this.#cols.endedAt(slot);
  }

  /** Removes tokens from the oldest end while `stale(slot)` holds (not counted as evictions). */
  dropOldestWhile(stale: (slot: number) => boolean): number {
    let dropped = 0;
    for (let s = this.#cols.oldest; s >= 0 && stale(s); s = this.#cols.oldest) {
      this.#detach(s, false);
      dropped++;
    }
    return dropped;
  }

  /** Oldest first: the tokens with an open finding or whose id is in `keep` (for snapshots). */
  retained(keep: ReadonlySet<string>): TokenRecord[] {
    const kept = new Set<number>();
    for (const id of keep) {
      const slot = this.#cols.slotOf(id);
      if (slot >= 0) kept.add(slot);
    }
    const out: TokenRecord[] = [];
    for (let s = this.#cols.oldest; s >= 0; s = this.#cols.newer(s)) {
      const open = this.#open.get(s);
      if (kept.has(s) || (open !== undefined && Object.keys(open).length > 0))
        out.push(this.record(s));
    }
    return out;
  }

  /** Live tokens whose fingerprint is `fingerprint` (any kind, node or db). */
  withFingerprint(fingerprint: string): TokenRecord[] {
    return this.#cols.withFingerprint(fingerprint, 0).map((s) => this.record(s));
  }

  find(q: TokenQuery): TokenRecord[] {
    const slots = queryMatches(q, {
      tokenId: (t) => [
        ...this.#cols.withFingerprint(t, LiveColumns.OWN_TOKEN_ID),
        ...this.#byExtraId.members(this.#cols.encodeFp(t, false)),
      ],
      session: (id) => [
        ...this.#cols.withFingerprint(id, LiveColumns.OWN_SESSION),
        ...this.#members(this.#bySession, id),
      ],
      family: (id) => this.#members(this.#byFamily, id),
      subject: (sub) => this.#members(this.#bySubject, sub),
      subjectClient: (sub, client) => {
        const s = this.#cols.strings.lookup(sub);
        const c = client === undefined || client === '' ? NIL : this.#cols.strings.lookup(client);
        return s === undefined || c === undefined
          ? []
          : this.#bySubjectClient.members(pairKey(s, c));
      },
    });
    return [...slots].map((s) => this.record(s));
  }

  sizes(): TokenStoreSizes {
    return {
      tokens: this.#cols.size,
      tokenIdIndex: this.#cols.distinct(LiveColumns.OWN_TOKEN_ID) + this.#byExtraId.size,
      sessionIndex: this.#cols.distinct(LiveColumns.OWN_SESSION) + this.#bySession.size,
      subjectClientIndex: this.#bySubjectClient.size,
      subjectIndex: this.#bySubject.size,
      familyIndex: this.#byFamily.size,
    };
  }

  storeOpen(slot: number, gen: number, open: OpenFindings): void {
    if (this.#cols.gen(slot) !== gen || !this.#cols.used(slot)) return;
    if (open === NO_OPEN) this.#open.delete(slot);
    else this.#open.set(slot, open);
  }

  #members(index: SlotIndex<number>, text: string): Iterable<number> {
    const code = this.#cols.strings.lookup(text);
    return code === undefined ? [] : index.members(code);
  }

  /** Frees the slot; `read`: returns its record first (detached: it writes nothing back). */
  #detach(slot: number, read: boolean): TokenRecord | undefined {
    const rec = read ? this.#fields(slot, undefined, undefined) : undefined;
    this.#unjoin(slot);
    this.#open.delete(slot);
    this.#ends.delete(slot);
    this.#cols.free(slot);
    return rec && new LiveTokenRecord(rec, undefined, -1, 0);
  }

  #fields(slot: number, id: string | undefined, fingerprint: string | undefined): TokenRecord {
    const c = this.#cols;
    const fp = fingerprint ?? c.fingerprint(slot);
    const extra = (this.#extraIds.get(slot) ?? []).map((e) => c.decodeFp(e));
    const j = c.joinCodes(slot);
    const text = (code: number): string | undefined =>
      code === NIL ? undefined : code === OWN ? fp : c.strings.text(code);
    const end = c.keepsEnds ? c.end(slot) : this.#ends.get(slot);
    return {
      id: id ?? c.id(slot),
      kind: c.kind(slot),
      fingerprint: fp,
      joins: {
        tokenIds: c.has(slot, LiveColumns.OWN_TOKEN_ID) ? [fp, ...extra] : [...extra],
        sessionId: text(j[0]),
        subject: text(j[1]),
        clientId: text(j[2]),
        familyId: text(j[3]),
      },
      firstSeenAt: c.firstSeenAt(slot),
      writtenAt: c.writtenAt(slot),
      writeSeen: c.has(slot, LiveColumns.WRITE_SEEN),
      dueAt: c.dueAt(slot),
      seq: c.seq(slot),
      endedAt: end?.endedAt,
      endType: end?.endType,
      endSeq: end?.endSeq,
      open: this.#open.get(slot) ?? NO_OPEN,
    };
  }

  #join(slot: number, fingerprint: string, j: TokenJoins): void {
    const c = this.#cols;
    // The token's own fingerprint as its first token id / its session is found by digest.
    const ownId = j.tokenIds[0] === fingerprint && c.setFlag(slot, LiveColumns.OWN_TOKEN_ID);
    const extra = ownId ? j.tokenIds.slice(1) : j.tokenIds;
    if (extra.length > 0) {
      const encoded = extra.map((t) => c.encodeFp(t, true));
      this.#extraIds.set(slot, encoded);
      for (const e of encoded) this.#byExtraId.add(e, slot);
    }
    const ownSession = j.sessionId === fingerprint && c.setFlag(slot, LiveColumns.OWN_SESSION);
    const code = (v: string | undefined) => (v === undefined ? NIL : c.strings.acquire(v));
    const session = ownSession ? OWN : code(j.sessionId);
    const subject = code(j.subject);
    const client = code(j.clientId);
    const family = code(j.familyId);
    c.setJoinCodes(slot, session, subject, client, family);
    if (session >= 0) this.#bySession.add(session, slot);
    if (family >= 0) this.#byFamily.add(family, slot);
    if (subject >= 0) {
      this.#bySubject.add(subject, slot);
      this.#bySubjectClient.add(pairKey(subject, this.#pairClient(client)), slot);
    }
  }

  /** As subjectClientKey: an empty client is no client. */
  #pairClient(client: number): number {
    return client >= 0 && this.#cols.strings.text(client) === '' ? NIL : client;
  }

  #unjoin(slot: number): void {
    const c = this.#cols;
    c.clearFlag(slot, LiveColumns.OWN_TOKEN_ID);
    c.clearFlag(slot, LiveColumns.OWN_SESSION);
    const extra = this.#extraIds.get(slot);
    if (extra) {
      for (const t of extra) this.#byExtraId.delete(t, slot);
      this.#extraIds.delete(slot);
    }
    const [session, subject, client, family] = c.joinCodes(slot);
    if (session >= 0) this.#bySession.delete(session, slot);
    if (family >= 0) this.#byFamily.delete(family, slot);
    if (subject >= 0) {
      this.#bySubject.delete(subject, slot);
      this.#bySubjectClient.delete(pairKey(subject, this.#pairClient(client)), slot);
    }
    for (const code of [session, subject, client, family]) if (code >= 0) c.strings.release(code);
    c.setJoinCodes(slot, NIL, NIL, NIL, NIL);
  }
}

/** The join indexes a store answers a TokenQuery from, each giving its members for a value. */
export interface QueryIndexes<M> {
  tokenId(tokenId: string): Iterable<M>;
  session(sessionId: string): Iterable<M>;
  family(familyId: string): Iterable<M>;
  subject(subject: string): Iterable<M>;
  /** Tokens of `subject` with `clientId` (undefined or '': tokens whose kind has no client). */
  subjectClient(subject: string, clientId: string | undefined): Iterable<M>;
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
      add(ix.subjectClient(q.subject, q.clientId));
      if (q.includeClientless) add(ix.subjectClient(q.subject, undefined));
    }
  }
  return out;
}
