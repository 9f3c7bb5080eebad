import { TOKEN_EVENT_TYPES } from '../domain/token-event.js';
import { Codes } from './interned.js';
import { subjectClientKey } from './join-keys.js';
import type { TokenJoins } from './join-keys.js';
import { NO_OPEN } from './token-store.js';
import { queryMatches, type TokenQuery, type TokenRecord } from './token-store.js';

/** A standard fingerprint: its key-id prefix (interned) and 32 digest bytes. */
const FP = /^(hmac-sha256:[A-Za-z0-9_.-]{1,32}:)([0-9a-f]{64})$/;
/** Marks a value kept whole (never the first char of a code, whose chars are < 256). */
const WHOLE = '\u0100';
const NONE = 255;
const NO_JOINS: readonly (string | undefined)[] = [];
// Flags per slot.
const WRITE_SEEN = 1;
const DUE_NULL = 2;
const DUE_UNDEFINED = 4;
const SEQ_UNDEFINED = 8;
const END_SEQ_UNDEFINED = 16;
const ENDED_UNDEFINED = 32;

/** Join key -> slots, a single slot stored bare (most keys name one token). */
class SlotIndex {
  readonly #map = new Map<string, number | Set<number>>();

  add(key: string, slot: number): void {
    const cur = this.#map.get(key);
    if (cur === undefined) this.#map.set(key, slot);
    else if (typeof cur === 'number') {
      if (cur !== slot) this.#map.set(key, new Set([cur, slot]));
    } else cur.add(slot);
  }

  delete(key: string, slot: number): void {
    const cur = this.#map.get(key);
    if (cur === undefined) return;
    if (typeof cur === 'number') {
      if (cur === slot) this.#map.delete(key);
      return;
    }
    cur.delete(slot);
    if (cur.size === 1) this.#map.set(key, cur.values().next().value as number);
  }

  members(key: string): Iterable<number> {
    const cur = this.#map.get(key);
    if (cur === undefined) return [];
    return typeof cur === 'number' ? [cur] : cur;
  }
}

/**
 * The correlator's memory of tokens that left Redis (for provider events that arrive after the
 * delete), in columns rather than one TokenRecord object graph per token: under churn it holds
 * every token that ended within the revocation lookback, as many as the live view or more.
 * Fingerprints are kept as their 32 digest bytes behind an interned key-id prefix, ids as an
 * interned `node, db, kind` scope plus that digest, times in a Float64Array; records are rebuilt
 * only when a provider event or a snapshot reads them. Same contract as the TokenStore it
 * replaces: oldest first, `put` of a known id moves it to the newest end, capped (evictions
 * counted).
 */
export class EndedTokens {
  readonly capacity: number;
  readonly #scopes = new Codes();
  readonly #prefixes = new Codes();
  readonly #kinds = new Codes();
  readonly #slots = new Map<string, number>();
  /** Slot -> id key ('' when free), joins ([sessionId, subject, clientId, familyId, ...tokenIds]). */
  readonly #keys: string[] = [];
  readonly #joins: (readonly (string | undefined)[])[] = [];
  /** Fingerprints that do not follow from their id (kept whole; restored oddities only). */
  readonly #oddFingerprints = new Map<number, string>();
  #times = new Float64Array(0);
  #flags = new Uint8Array(0);
  #endType = new Uint8Array(0);
  #kind = new Uint16Array(0);
  #gen = new Uint32Array(0);
  readonly #free: number[] = [];
  /** Insertion order: (slot, generation) pairs; stale pairs (slot freed since) are skipped. */
  #queue: number[] = [];
  #head = 0;
  #evictions = 0;
  readonly #byTokenId = new SlotIndex();
  readonly #bySession = new SlotIndex();
  readonly #bySubjectClient = new SlotIndex();
  readonly #bySubject = new SlotIndex();
  readonly #byFamily = new SlotIndex();
  readonly #scratch = Buffer.alloc(36);

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    }
    this.capacity = capacity;
  }

  get size(): number {
    return this.#slots.size;
  }

  /** Tokens dropped because the memory was full (not expiry). */
  get evictions(): number {
    return this.#evictions;
  }

  get(id: string): TokenRecord | undefined {
    const key = this.#idKey(id, false);
    const slot = key === undefined ? undefined : this.#slots.get(key);
    return slot === undefined ? undefined : this.#record(slot);
  }

  /** Stores a copy of `rec` at the newest end (its `open` is not kept: it ended). */
  put(rec: TokenRecord): void {
    const key = this.#idKey(rec.id, true) as string;
    // A standard key ends with the encoding of its id's fingerprint, normally rec.fingerprint.
    const cut = rec.id.length - rec.fingerprint.length;
    const own =
      !key.startsWith(WHOLE) &&
      rec.id.charCodeAt(cut - 1) === 0 &&
      rec.id.endsWith(rec.fingerprint);
    const old = this.#slots.get(key);
    if (old !== undefined) this.#remove(old);
    const slot = this.#free.pop() ?? this.#grow();
    this.#slots.set(key, slot);
    this.#keys[slot] = key;
    if (!own) this.#oddFingerprints.set(slot, rec.fingerprint);
    const t = slot * 6;
    const times = this.#times;
    times[t] = rec.firstSeenAt;
    times[t + 1] = rec.writtenAt;
    times[t + 2] = typeof rec.dueAt === 'number' ? rec.dueAt : 0;
    times[t + 3] = rec.seq ?? 0;
    times[t + 4] = rec.endedAt ?? 0;
    times[t + 5] = rec.endSeq ?? 0;
    this.#flags[slot] =
      (rec.writeSeen ? WRITE_SEEN : 0) |
      (rec.dueAt === null ? DUE_NULL : 0) |
      (rec.dueAt === undefined ? DUE_UNDEFINED : 0) |
      (rec.seq === undefined ? SEQ_UNDEFINED : 0) |
      (rec.endSeq === undefined ? END_SEQ_UNDEFINED : 0) |
      (rec.endedAt === undefined ? ENDED_UNDEFINED : 0);
    const endType = rec.endType === undefined ? -1 : TOKEN_EVENT_TYPES.indexOf(rec.endType);
    this.#endType[slot] = endType < 0 ? NONE : endType;
    this.#kind[slot] = this.#kinds.code(rec.kind, true) ?? 0;
    const j = rec.joins;
    this.#joins[slot] = [
      j.sessionId,
      j.subject,
      j.clientId,
      j.familyId,
      // The id's own fingerprint is usually a token id too: encode it once.
      ...j.tokenIds.map((t) =>
        own && t === rec.fingerprint ? key.slice(2) : this.#encodeFp(t, true),
      ),
    ];
    this.#index(slot, true);
    this.#queue.push(slot, this.#gen[slot] as number);
    // Ids ended again leave stale pairs behind: rebuild once they are most of the queue.
    if (this.#queue.length - this.#head > 4 * this.#slots.size + 8192) {
      const q = this.#queue;
      const kept: number[] = [];
      for (let i = this.#head; i < q.length; i += 2)
        if (this.#gen[q[i] as number] === q[i + 1]) kept.push(q[i] as number, q[i + 1] as number);
      this.#queue = kept;
      this.#head = 0;
    }
    while (this.#slots.size > this.capacity) {
      const oldest = this.#oldest();
      if (oldest === undefined) break;
      this.#remove(oldest);
      this.#evictions++;
    }
  }

  /**
   * The newest `max` tokens that ended at or after `horizon` (oldest first), and how many more
   * there were: only those are rebuilt as records (a snapshot keeps the newest few).
   */
  newestSince(horizon: number, max: number): { records: TokenRecord[]; dropped: number } {
    const slots: number[] = [];
    for (let q = this.#head; q < this.#queue.length; q += 2) {
      const slot = this.#queue[q] as number;
      if (this.#gen[slot] === this.#queue[q + 1] && this.#endedAt(slot) >= horizon)
        slots.push(slot);
    }
    const keep = slots.slice(Math.max(0, slots.length - max));
    return { records: keep.map((s) => this.#record(s)), dropped: slots.length - keep.length };
  }

  /** Oldest first. */
  *values(): IterableIterator<TokenRecord> {
    for (let q = this.#head; q < this.#queue.length; q += 2) {
      const slot = this.#queue[q] as number;
      if (this.#gen[slot] === this.#queue[q + 1]) yield this.#record(slot);
    }
  }

  /** Forgets tokens (oldest first) that ended before `horizon`: no late event can match them. */
  dropEndedBefore(horizon: number): void {
    for (let slot = this.#oldest(); slot !== undefined; slot = this.#oldest()) {
      if (this.#endedAt(slot) >= horizon) break;
      this.#remove(slot);
    }
  }

  find(q: TokenQuery): TokenRecord[] {
    const slots = queryMatches(q, {
      tokenId: (t) => this.#byTokenId.members(this.#encodeFp(t, false)),
      session: (id) => this.#bySession.members(id),
      family: (id) => this.#byFamily.members(id),
      subject: (sub) => this.#bySubject.members(sub),
      subjectClient: (sub, client) => this.#bySubjectClient.members(subjectClientKey(sub, client)),
    });
    return [...slots].map((s) => this.#record(s));
  }

  /** As TokenView judged it: a token without an end time ended at 0. */
  #endedAt(slot: number): number {
    return (this.#flags[slot] as number) & ENDED_UNDEFINED
      ? 0
      : (this.#times[slot * 6 + 4] as number);
  }

  #oldest(): number | undefined {
    const q = this.#queue;
    while (this.#head < q.length && this.#gen[q[this.#head] as number] !== q[this.#head + 1])
      this.#head += 2;
    if (this.#head >= q.length) {
      this.#queue = [];
      this.#head = 0;
      return undefined;
    }
    // Drop the consumed front once it is most of the array (amortised O(1) per token).
    if (this.#head > 4096 && this.#head * 2 > q.length) {
      this.#queue = q.slice(this.#head);
      this.#head = 0;
    }
    return this.#queue[this.#head];
  }

  #remove(slot: number): void {
    this.#index(slot, false);
    this.#slots.delete(this.#keys[slot] as string);
    this.#keys[slot] = '';
    this.#joins[slot] = NO_JOINS;
    this.#oddFingerprints.delete(slot);
    this.#gen[slot] = (this.#gen[slot] as number) + 1;
    this.#free.push(slot);
    if (this.#slots.size === 0) {
      this.#queue = [];
      this.#head = 0;
    }
  }

  #index(slot: number, add: boolean): void {
    const j = this.#joins[slot] ?? [];
    const [sessionId, subject, clientId, familyId] = j;
    const op = (index: SlotIndex, key: string) =>
      add ? index.add(key, slot) : index.delete(key, slot);
    for (let i = 4; i < j.length; i++) op(this.#byTokenId, j[i] as string);
    if (sessionId !== undefined) op(this.#bySession, sessionId);
    if (familyId !== undefined) op(this.#byFamily, familyId);
    if (subject !== undefined) {
      op(this.#bySubject, subject);
      op(this.#bySubjectClient, subjectClientKey(subject, clientId));
    }
  }

  #record(slot: number): TokenRecord {
    const key = this.#keys[slot] as string;
    const f = this.#flags[slot] as number;
    const t = slot * 6;
    const times = this.#times;
    const j = this.#joins[slot] ?? [];
    const own = this.#fingerprintOf(slot);
    const ownEnc = key.startsWith(WHOLE) ? undefined : key.slice(2);
    const joins: TokenJoins = {
      tokenIds: j.slice(4).map((e) => (e === ownEnc ? own : this.#decodeFp(e as string))),
      sessionId: j[0],
      subject: j[1],
      clientId: j[2],
      familyId: j[3],
    };
    const endType = this.#endType[slot] as number;
    return {
      id: key.startsWith(WHOLE)
        ? key.slice(1)
        : this.#scopes.text((key.charCodeAt(0) << 8) | key.charCodeAt(1)) + own,
      kind: this.#kinds.text(this.#kind[slot] as number),
      fingerprint: this.#oddFingerprints.get(slot) ?? own,
      joins,
      firstSeenAt: times[t] as number,
      writtenAt: times[t + 1] as number,
      writeSeen: (f & WRITE_SEEN) !== 0,
      dueAt: f & DUE_NULL ? null : f & DUE_UNDEFINED ? undefined : times[t + 2],
      seq: f & SEQ_UNDEFINED ? undefined : times[t + 3],
      endedAt: f & ENDED_UNDEFINED ? undefined : times[t + 4],
      endType: endType === NONE ? undefined : TOKEN_EVENT_TYPES[endType],
      endSeq: f & END_SEQ_UNDEFINED ? undefined : times[t + 5],
      open: NO_OPEN,
    };
  }

  /** The fingerprint a standard id key carries (its last 34 chars: prefix code + digest). */
  #fingerprintOf(slot: number): string {
    const key = this.#keys[slot] as string;
    return key.startsWith(WHOLE) ? '' : this.#decodeFp(key.slice(2));
  }

  /**
   * An id (`node\0db\0kind\0fingerprint`, see tokenIdentity) as 36 latin1 chars: scope code,
   * prefix code, digest; anything else whole. `add` false: undefined when it cannot be stored.
   */
  #idKey(id: string, add: boolean): string | undefined {
    const cut = id.lastIndexOf('\u0000') + 1;
    const m = cut > 0 ? FP.exec(id.slice(cut)) : null;
    const scope = m ? this.#scopes.code(id.slice(0, cut), add) : undefined;
    const prefix = m ? this.#prefixes.code(m[1] as string, add) : undefined;
    if (!m || scope === undefined || prefix === undefined) return WHOLE + id;
    const b = this.#scratch;
    b.writeUInt16BE(scope, 0);
    b.writeUInt16BE(prefix, 2);
    b.write(m[2] as string, 4, 'hex');
    return b.toString('latin1', 0, 36);
  }

  /** A token id as its prefix code + 32 digest bytes (34 latin1 chars), or whole. */
  #encodeFp(fp: string, add: boolean): string {
    const m = FP.exec(fp);
    const prefix = m ? this.#prefixes.code(m[1] as string, add) : undefined;
    if (!m || prefix === undefined) return WHOLE + fp;
    const b = this.#scratch;
    b.writeUInt16BE(prefix, 0);
    b.write(m[2] as string, 2, 'hex');
    return b.toString('latin1', 0, 34);
  }

  #decodeFp(enc: string): string {
    if (enc.startsWith(WHOLE)) return enc.slice(1);
    const prefix = this.#prefixes.text((enc.charCodeAt(0) << 8) | enc.charCodeAt(1));
    const b = this.#scratch;
    b.write(enc, 0, 'latin1');
    return prefix + b.toString('hex', 2, 34);
  }

  #grow(): number {
    const slot = this.#keys.length;
    this.#keys.push('');
    this.#joins.push(NO_JOINS);
    if (slot >= this.#flags.length) {
      const cap = Math.max(1024, this.#flags.length * 2);
      const times = new Float64Array(cap * 6);
      times.set(this.#times);
      this.#times = times;
      for (const name of ['flags', 'endType'] as const) {
        const a = new Uint8Array(cap);
        a.set(name === 'flags' ? this.#flags : this.#endType);
        if (name === 'flags') this.#flags = a;
        else this.#endType = a;
      }
      const kind = new Uint16Array(cap);
      kind.set(this.#kind);
      this.#kind = kind;
      const gen = new Uint32Array(cap);
      gen.set(this.#gen);
      this.#gen = gen;
    }
    return slot;
  }
}
