import type { TokenEvent, TokenEventType } from '../domain/token-event.js';
import type { InventoryEntry } from './inventory.js';
import { WRITES, type InventoryView, type Prepared } from './notification-batch.js';
import type { ClassifiedKey } from './token-rules.js';

/**
 * The pure half of the keyspace watcher: a batch of classified notifications (with their looked-up
 * expiries), a read-only view of the inventory and the node's context in, token events and
 * inventory changes out. No Redis, no clock: time comes in as each notification's arrival time
 * and the node's clock offset.
 */

/** One write to the inventory, to be applied in order. */
/** `digest`: ClassifiedKey.digest, when known (Inventory.set / delete). */
export type InventoryChange =
  | { op: 'set'; kind: string; fingerprint: string; digest?: string; entry: InventoryEntry }
  | { op: 'delete'; kind: string; fingerprint: string; digest?: string; node: number };

/** The `rename_from` half of a RENAME, waiting for its `rename_to` (which may open the next batch). */
export interface PendingRename {
  c: ClassifiedKey;
  entry: InventoryEntry | undefined;
}

/** The node the batch came from, and the time facts the rules need. */
export interface TranslateContext {
  nodeIndex: number;
  /** Redis node label (`host:port`) for the events. */
  label: string;
  db: number;
  /** Redis clock minus ours (ms). */
  offsetMs: number;
  /** An `expired` this long after its due time is expiry backlog, not churn (ms). */
  expiryBacklogToleranceMs: number;
  /** Our own reconciliation SCAN: since when (our ms), and when it ended (undefined: running). */
  ownScan?: { start: number; end: number | undefined } | undefined;
}

export interface Translation {
  /** Token events in notification order. */
  events: TokenEvent[];
  /** Inventory writes in notification order; later notifications of the batch already saw them. */
  changes: InventoryChange[];
  /** A `rename_from` at the end of the batch: hand it to the next translate(). */
  pendingRename: PendingRename | undefined;
}

const ENDS: Readonly<Record<string, TokenEventType>> = {
  del: 'deleted',
  expired: 'expired',
  evicted: 'evicted',
};

/** PEXPIRETIME reply -> inventory due: null no TTL, NaN unknown (or gone), else Redis-clock ms. */
export function dueOf(expireAt: number | undefined): number | null {
  if (expireAt === undefined || Number.isNaN(expireAt) || expireAt === -2) return Number.NaN;
  if (expireAt === -1) return null;
  return expireAt;
}

/** Inventory due (Redis clock) -> event `dueAt` (our clock): null no TTL, undefined unknown. */
export function localDue(due: number | null, offsetMs: number): number | null | undefined {
  if (due === null) return null;
  if (Number.isNaN(due)) return undefined;
  return due - offsetMs;
}

/** TTL left at `at` (our clock), never negative: null no TTL, undefined unknown. */
export function ttlAt(due: number | null, at: number, offsetMs: number): number | null | undefined {
  if (due === null) return null;
  if (Number.isNaN(due)) return undefined;
  return Math.max(0, due - offsetMs - at);
}

/**
 * Translate one batch. Each notification sees the inventory as the earlier ones of the batch
 * left it (through an overlay of `changes` on `inventory`), exactly as if they were applied one
 * by one. Mutates nothing but the returned arrays.
 */
export function translate(
  batch: readonly Prepared[],
  inventory: InventoryView,
  ctx: TranslateContext,
  pendingRename?: PendingRename,
): Translation {
  const t = new Translator(inventory, ctx, pendingRename);
  for (const p of batch) t.apply(p);
  return { events: t.events, changes: t.changes, pendingRename: t.pendingRename };
}

class Translator {
  readonly events: TokenEvent[] = [];
  readonly changes: InventoryChange[] = [];
  pendingRename: PendingRename | undefined;
  readonly #view: InventoryView;
  readonly #ctx: TranslateContext;
  /** kind -> fingerprint -> entry written by this batch (null: deleted). */
  readonly #overlay = new Map<string, Map<string, InventoryEntry | null>>();
  /** The notification that made the last positioned event, and that event's index. */
  #posOf: Prepared | undefined;
  #posIndex = 0;

  constructor(view: InventoryView, ctx: TranslateContext, pendingRename?: PendingRename) {
    this.#view = view;
    this.#ctx = ctx;
    this.pendingRename = pendingRename;
  }

  #get(c: ClassifiedKey): InventoryEntry | undefined {
    const o = this.#overlay.get(c.kind)?.get(c.fingerprint);
    if (o !== undefined) return o ?? undefined;
    return this.#view.get(c.kind, c.fingerprint, c.digest);
  }

  #put(kind: string, fp: string, entry: InventoryEntry | null): void {
    let m = this.#overlay.get(kind);
    if (!m) {
      m = new Map();
      this.#overlay.set(kind, m);
    }
    m.set(fp, entry);
  }

  #set(c: ClassifiedKey, entry: InventoryEntry): void {
    this.#put(c.kind, c.fingerprint, entry);
    const { kind, fingerprint, digest } = c;
    this.changes.push({ op: 'set', kind, fingerprint, digest, entry });
  }

  /** Removes the token from the inventory; returns what it held. */
  #delete(c: ClassifiedKey): InventoryEntry | undefined {
    const held = this.#get(c);
    this.#put(c.kind, c.fingerprint, null);
    const node = this.#ctx.nodeIndex;
    const { kind, fingerprint, digest } = c;
    this.changes.push({ op: 'delete', kind, fingerprint, digest, node });
    return held;
  }

  apply(p: Prepared): void {
    const { event, c } = p;
    if (p.absorbed) return;
    const node = this.#ctx.nodeIndex;
    if (event === 'rename_from') {
      this.pendingRename = { c, entry: this.#delete(c) };
      return;
    }
    if (event === 'rename_to') {
      const from = this.pendingRename;
      this.pendingRename = undefined;
      if (c.kind === '') {
        // Renamed to a key that is not a token: for us the token left.
        if (from) this.#end(p, from.c, 'deleted', from.entry);
        return;
      }
      // RENAME over a live token replaces it, and Redis publishes no `del` for the key it
      // overwrote: that token ends here (`deleted`, Redis event `rename_to`), before the moved
      // one takes its key. A non-token renamed onto a live token is a rewrite, as a SET is.
      const replaced = this.#get(c);
      if (from && replaced) this.#end(p, c, 'deleted', this.#delete(c));
      // RENAME keeps the TTL: the old entry knows it, the look-up is only a fallback.
      const due = from?.entry ? from.entry.due : dueOf(p.expireAt);
      this.#set(c, { due, written: from?.entry?.written ?? p.at, node });
      this.#emit(p, c, from ? 'renamed' : 'written', {
        dueAt: this.#localDue(due),
        ttlMs: this.#ttl(due, p.at),
        renamedFrom: from ? { kind: from.c.kind, fingerprint: from.c.fingerprint } : undefined,
        rewrite: !from && replaced ? true : undefined,
      });
      return;
    }
    if (p.migrated) return;
    const end = ENDS[event];
    if (end) {
      const held = this.#get(c);
      // The source side of a slot migration: the token lives on another node now.
      if (held && held.node !== node) return;
      this.#end(p, c, end, this.#delete(c));
      return;
    }
    const known = this.#get(c);
    if (WRITES.has(event) || (event === 'hset' && !known)) {
      // The TTL is what Redis says after the command (SET EX, SET KEEPTTL, a plain SET or a new
      // hash alike), never inferred from which notifications arrived: NaN (unknown) when a later
      // event of the key in this batch superseded the look-up or the key is already gone.
      let due = dueOf(p.expireAt);
      if (p.withTtl && due === null) due = Number.NaN; // the TTL was removed again before the look-up
      this.#set(c, { due, written: p.at, node });
      this.#emit(p, c, 'written', {
        dueAt: this.#localDue(due),
        ttlMs: this.#ttl(due, p.at),
        // The key was live already (e.g. found by the baseline): a rewrite, not a new token.
        rewrite: known ? true : undefined,
      });
      return;
    }
    if (event === 'hset' && known && p.withTtl) {
      // HSET + EXPIRE on a live hash: the EXPIRE folded into the (non-)write is a TTL change.
      const due = dueOf(p.expireAt);
      if (due === null || Number.isNaN(due) || due === known.due) return;
      this.#set(c, { due, written: known.written, node });
      this.#emit(p, c, 'ttl_changed', { dueAt: this.#localDue(due), ttlMs: this.#ttl(due, p.at) });
      return;
    }
    if (event === 'persist') {
      this.#set(c, { due: null, written: known?.written ?? 0, node });
      this.#emit(p, c, 'persisted', { dueAt: null, ttlMs: null });
      return;
    }
    if (event === 'expire') {
      let due = dueOf(p.expireAt);
      // The inventory holds exactly this expiry already: the second half of a SET EX whose write
      // (in an earlier batch) looked it up. PEXPIRETIME is exact to the ms, so a real TTL change
      // never compares equal (short of a PEXPIREAT to the same ms, which changes nothing). NaN
      // (unknown) equals nothing.
      if (typeof due === 'number' && known?.due === due) return;
      if (due === null) due = Number.NaN; // superseded by a later PERSIST before the look-up
      this.#set(c, { due, written: known?.written ?? 0, node });
      this.#emit(p, c, 'ttl_changed', { dueAt: this.#localDue(due), ttlMs: this.#ttl(due, p.at) });
    }
    // hset on a live hash, hdel, new, append, ...: not a lifecycle change.
  }

  #duringOwnScan(at: number): boolean {
    const s = this.#ctx.ownScan;
    return s !== undefined && at >= s.start && (s.end === undefined || at <= s.end);
  }

  #end(
    p: Prepared,
    c: ClassifiedKey,
    type: TokenEventType,
    entry: InventoryEntry | undefined,
  ): void {
    const extra: Partial<TokenEvent> = {};
    if (entry && entry.written > 0) extra.lifetimeMs = Math.max(0, p.at - entry.written);
    if (type === 'expired' && entry && entry.due !== null && !Number.isNaN(entry.due)) {
      extra.expiryLagMs = p.at - (entry.due - this.#ctx.offsetMs);
      // Redis deletes expired keys lazily (on access, or when its expire cycle samples them): a
      // SCAN touching a backlog of long-due keys makes them all "expire" at once. Not churn.
      if (extra.expiryLagMs > this.#ctx.expiryBacklogToleranceMs) extra.backlog = true;
    }
    if (type === 'expired' && (p.flush === true || this.#duringOwnScan(p.at))) extra.backlog = true;
    this.#emit(p, c, type, extra);
  }

  #emit(p: Prepared, c: ClassifiedKey, type: TokenEventType, extra: Partial<TokenEvent>): void {
    const ev: TokenEvent = {
      type,
      kind: c.kind,
      fingerprint: c.fingerprint,
      keyAttrs: c.keyAttrs,
      node: this.#ctx.label,
      db: this.#ctx.db,
      observedAt: p.at,
      redisEvent: p.event,
      digest: c.digest,
      ...extra,
    };
    // Coordination (issue #20): one notification may make two events (a RENAME over a live
    // token: `deleted` then `renamed`); the index tells them apart under one position.
    if (p.pos !== undefined) {
      this.#posIndex = this.#posOf === p ? this.#posIndex + 1 : 0;
      this.#posOf = p;
      ev.position = p.pos;
      ev.positionIndex = this.#posIndex;
    }
    this.events.push(ev);
  }

  #localDue(due: number | null): number | null | undefined {
    return localDue(due, this.#ctx.offsetMs);
  }

  #ttl(due: number | null, at: number): number | null | undefined {
    return ttlAt(due, at, this.#ctx.offsetMs);
  }
}
