import type { TokenEventType } from '../domain/token-event.js';
import type { TokenJoins } from './join-keys.js';

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

/** Where a live record read from the slot store writes its `open` back (see LiveTokenRecord). */
export interface OpenSink {
  storeOpen(slot: number, gen: number, open: OpenFindings): void;
}

/**
 * A record of the live view, materialised from its slot on read. Its fields are a copy: only
 * `open` is written back (by setOpen / clearOpen), since that is all the rules change in place;
 * the view itself changes the slot's columns. A record whose slot was freed since writes nothing.
 */
export class LiveTokenRecord implements TokenRecord {
  readonly id: string;
  readonly kind: string;
  readonly fingerprint: string;
  joins: TokenJoins;
  firstSeenAt: number;
  writtenAt: number;
  writeSeen: boolean;
  dueAt: number | null | undefined;
  seq: number | undefined;
  endedAt: number | undefined;
  endType: TokenEventType | undefined;
  endSeq: number | undefined;
  open: OpenFindings;
  readonly #sink: OpenSink | undefined;
  readonly #slot: number;
  readonly #gen: number;

  constructor(fields: TokenRecord, sink: OpenSink | undefined, slot: number, gen: number) {
    this.id = fields.id;
    this.kind = fields.kind;
    this.fingerprint = fields.fingerprint;
    this.joins = fields.joins;
    this.firstSeenAt = fields.firstSeenAt;
    this.writtenAt = fields.writtenAt;
    this.writeSeen = fields.writeSeen;
    this.dueAt = fields.dueAt;
    this.seq = fields.seq;
    this.endedAt = fields.endedAt;
    this.endType = fields.endType;
    this.endSeq = fields.endSeq;
    this.open = fields.open;
    this.#sink = sink;
    this.#slot = slot;
    this.#gen = gen;
  }

  /** Writes `open` back to the slot (no-op for a detached record). */
  syncOpen(): void {
    this.#sink?.storeOpen(this.#slot, this.#gen, this.open);
  }
}

/** Ties an open finding of `rule` to the token. */
export function setOpen(rec: TokenRecord, rule: TokenFindingRule, id: string): void {
  if (rec.open === NO_OPEN) rec.open = {};
  rec.open[rule] = id;
  if (rec instanceof LiveTokenRecord) rec.syncOpen();
}

/** Unties the token's finding of `rule`; back to the shared NO_OPEN when none is left. */
export function clearOpen(rec: TokenRecord, rule: TokenFindingRule): void {
  if (rec.open[rule] === undefined) return;
  delete rec.open[rule];
  if (Object.keys(rec.open).length === 0) rec.open = NO_OPEN;
  if (rec instanceof LiveTokenRecord) rec.syncOpen();
}
