import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { TokenEvent, TokenEventType } from '../domain/token-event.js';
import type { Inventory, InventoryEntry } from './inventory.js';
import type { WatcherSink } from './node-watcher.js';
import type { ClassifiedKey, TokenRules } from './token-rules.js';

export interface Item {
  event: string;
  key: Buffer;
  at: number;
  /** Cluster slot migration: the token only moved between nodes. */
  migrated?: boolean;
  /** The key as a latin1 string, once converted (lookup() may convert pending items early). */
  k?: string;
}

export interface Prepared extends Item {
  c: ClassifiedKey;
  /** The key as a latin1 string. */
  k: string;
  /**
   * PEXPIRETIME reply: -2 gone, -1 no TTL, else unix ms (Redis clock). NaN when unknown: not
   * looked up because a later event in the same batch changed the key again, or the look-up
   * failed. The look-up runs after the events, so it only describes the key's LAST state.
   */
  expireAt?: number;
  /** A write immediately followed by an `expire` of the same key (SET EX, HSET+EXPIRE in MULTI). */
  withTtl?: boolean;
  /** That `expire`: already covered by the write record. */
  absorbed?: boolean;
  /** An `expired` delivered as part of a lazy-expiry flush (see markExpiryFlush): backlog. */
  flush?: boolean;
}

/** Pending notifications lookup() checks for a later change of a looked-up key. */
const MAX_PENDING_CHECK = 20_000;

const NOT_A_TOKEN: ClassifiedKey = { kind: '', fingerprint: '', keyAttrs: {} };

/**
 * PEXPIRETIME of many keys in one command: a batch of 10 000 notifications costs one command to
 * parse, not 10 000. Keys travel as ARGV, and `allow-cross-slot-keys` lets a Cluster node answer
 * for all of its own keys. Read-only.
 */
/** Keys per EVALSHA of the expiry script. */
const EXPIRY_CHUNK = 1000;

const EXPIRY_SCRIPT = `#!lua flags=no-writes,allow-cross-slot-keys
local r = {}
for i, k in ipairs(ARGV) do r[i] = redis.call('PEXPIRETIME', k) end
return r`;

/** Events whose handling needs the key's expiry. */
const NEEDS_EXPIRY = new Set(['set', 'expire', 'hset', 'rename_to', 'restore', 'copy_to']);
/** Events that write a token. */
const WRITES = new Set(['set', 'restore', 'copy_to']);
/** Events after which a key's expiry may differ (so an earlier look-up would be stale). */
const CHANGES_KEY = new Set([
  ...NEEDS_EXPIRY,
  'persist',
  'del',
  'expired',
  'evicted',
  'rename_from',
]);
const ENDS: Record<string, TokenEventType> = {
  del: 'deleted',
  expired: 'expired',
  evicted: 'evicted',
};

export interface KeyEventApplierOptions {
  nodeIndex: number;
  label: string;
  db: number;
  commands: Redis;
  rules: TokenRules;
  inventory: Inventory;
  sink: WatcherSink;
  maxKeyBytes: number;
  /** An `expired` this long after its due time is expiry backlog, not churn (ms). */
  expiryBacklogToleranceMs: number;
  logger: Logger;
}

/**
 * Turns one node's keyevent notifications into token lifecycle events: classification against
 * the token rules, pairing of SET EX's two notifications, one batched expiry look-up per batch,
 * and the inventory update. The watcher owns connections and blind spots; this owns semantics.
 */
export class KeyEventApplier {
  /** Redis clock minus ours (ms), kept current by the watcher (TIME). */
  offsetMs = 0;
  readonly #o: KeyEventApplierOptions;
  #pendingRename: { c: ClassifiedKey; entry: InventoryEntry | undefined } | undefined;
  #scriptSha = createHash('sha1').update(EXPIRY_SCRIPT).digest('hex');
  #scriptOk: boolean | undefined;
  /** Our own reconciliation SCAN: since when (local ms), and when it ended (undefined: running). */
  #ownScan: { start: number; end: number | undefined } | undefined;

  constructor(options: KeyEventApplierOptions) {
    this.#o = options;
  }

  /** Cluster slot migration: the token RESTOREd here is held for another node; move it. */
  claim(key: Buffer): boolean {
    if (key.length > this.#o.maxKeyBytes) return false;
    const c = this.#o.rules.classify(key.toString('latin1'));
    return c ? this.#o.inventory.claim(c.kind, c.fingerprint, this.#o.nodeIndex) : false;
  }

  /** Classify a batch (keys matching no rule are counted, not kept). */
  classify(items: Item[]): Prepared[] {
    const out: Prepared[] = [];
    let unmatched = 0;
    for (const it of items) {
      if (it.key.length > this.#o.maxKeyBytes) {
        unmatched += 1;
        continue;
      }
      const k = it.k ?? it.key.toString('latin1');
      const c = this.#o.rules.classify(k);
      if (c) out.push(Object.assign(it, { c, k }));
      else if (it.event !== 'rename_to') unmatched += 1;
      else out.push(Object.assign(it, { c: NOT_A_TOKEN, k }));
    }
    if (unmatched > 0) this.#o.sink.unmatched(unmatched);
    this.#pairWrites(out);
    return out;
  }

  /**
   * SET EX emits `set` then `expire` back to back in one command, and Redis runs one command at a
   * time, so the two are adjacent in the notification stream whatever the socket or event loop
   * did to their arrival times (the soak saw 3-8 ms between them under load). An `expire` right
   * after a write of the same key in the batch is folded into the write: its TTL is what the
   * write's PEXPIRETIME look-up says (that look-up runs after the command, so it sees the TTL).
   * A pair split between batches needs no pairing: the write's own look-up saw the TTL, and the
   * `expire` then finds the inventory already holding that exact due (see apply()). A separate
   * EXPIRE folded in this way only makes the write's record carry the TTL the key had a moment
   * later: no finding rests on arrival timing.
   */
  #pairWrites(items: Prepared[]): void {
    let prev: string | undefined;
    for (let i = 0; i < items.length; i++) {
      const p = items[i] as Prepared;
      if (p.event === 'expire' && prev === p.k) {
        p.absorbed = true;
        const w = items[i - 1];
        if (w && w.k === p.k) w.withTtl = true;
        prev = undefined;
        continue;
      }
      prev = WRITES.has(p.event) || p.event === 'hset' ? p.k : undefined;
    }
  }

  /**
   * One pipelined PEXPIRETIME round trip for the whole batch, never one per event. Only the last
   * event of each key in the batch is looked up: earlier ones were superseded before the reply.
   *
   * The reply describes the key when the look-up ran, which may be after a later command changed
   * it again. Redis publishes a command's notifications before it answers any later command, so
   * once the reply is in (and the sockets were read once more) such a later change shows as a
   * notification of the same key in `pending()` (received after this batch was cut). Then the
   * look-up is not this event's: its expiry is unknown (NaN), and the later event records what it
   * did. The one exception is the `expire` a write's own SET EX emits right after it (the pair
   * split between batches): that TTL is the write's.
   */
  async lookup(prepared: Prepared[], pending?: () => readonly Item[]): Promise<void> {
    const last = new Map<string, number>();
    prepared.forEach((p, i) => {
      if (CHANGES_KEY.has(p.event) && !p.absorbed) last.set(p.k, i);
    });
    const need: Prepared[] = [];
    prepared.forEach((p, i) => {
      if (p.c.kind === '' || p.absorbed || !NEEDS_EXPIRY.has(p.event)) return;
      if (last.get(p.k) === i) need.push(p);
      else p.expireAt = Number.NaN;
    });
    if (need.length === 0) return;
    const keys = need.map((p) => p.key);
    let replies: number[] | undefined;
    try {
      replies = await this.expiries(keys);
    } catch {
      replies = undefined;
    }
    need.forEach((p, i) => {
      const r = replies?.[i];
      p.expireAt = typeof r === 'number' ? r : Number.NaN;
    });
    if (!pending || !replies) return;
    // One turn of the event loop: notifications already on the subscriber socket get read.
    await new Promise((r) => setImmediate(r));
    const later = pending();
    if (later.length === 0) return;
    const looked = new Map<string, Prepared>();
    for (const p of need) looked.set(p.k, p);
    const tail = prepared.at(-1);
    // Bounded: behind a backlog this runs once per chunk. Past the bound a later change goes
    // unnoticed, and the event records the key's later state: never a TTL Redis did not state.
    const n = Math.min(later.length, MAX_PENDING_CHECK);
    for (let i = 0; i < n; i++) {
      const it = later[i] as Item;
      if (!CHANGES_KEY.has(it.event) || it.key.length > this.#o.maxKeyBytes) continue;
      const k = (it.k ??= it.key.toString('latin1'));
      const p = looked.get(k);
      if (!p || Number.isNaN(p.expireAt)) continue;
      // SET EX split between batches: its `expire` opens the next batch. Same command, same TTL.
      const ownExpire =
        i === 0 &&
        it.event === 'expire' &&
        p === tail &&
        (WRITES.has(p.event) || p.event === 'hset');
      if (!ownExpire) p.expireAt = Number.NaN;
    }
  }

  /**
   * PEXPIRETIME of every key, one EVALSHA per EXPIRY_CHUNK keys (also the reconciliation's SCAN
   * pages); falls back to a PEXPIRETIME pipeline where scripts are not allowed, with NaN for a
   * key whose reply failed. Chunks keep each script call short (a script blocks Redis while it
   * runs) and its argument list far from V8's limits; ioredis pipelines them on one connection.
   */
  async expiries(keys: Buffer[]): Promise<number[]> {
    if (keys.length <= EXPIRY_CHUNK) return this.#expiryChunk(keys);
    const parts: Promise<number[]>[] = [];
    for (let i = 0; i < keys.length; i += EXPIRY_CHUNK) {
      parts.push(this.#expiryChunk(keys.slice(i, i + EXPIRY_CHUNK)));
    }
    return (await Promise.all(parts)).flat();
  }

  async #expiryChunk(keys: Buffer[]): Promise<number[]> {
    const c = this.#o.commands;
    if (this.#scriptOk !== false) {
      try {
        const r = (await c.call('EVALSHA', this.#scriptSha, '0', ...keys)) as number[];
        this.#scriptOk = true;
        return r;
      } catch (err) {
        const msg = (err as Error).message;
        if (msg.startsWith('NOSCRIPT')) {
          this.#scriptSha = (await c.call('SCRIPT', 'LOAD', EXPIRY_SCRIPT)) as string;
          return (await c.call('EVALSHA', this.#scriptSha, '0', ...keys)) as number[];
        }
        if (/NOPERM|unknown command|ERR.*flags/i.test(msg)) {
          this.#o.logger.info(
            { node: this.#o.label, err: msg },
            'expiry script not allowed; using PEXPIRETIME pipelines',
          );
          this.#scriptOk = false;
        } else {
          throw err;
        }
      }
    }
    const pipe = c.pipeline();
    for (const k of keys) pipe.call('PEXPIRETIME', k);
    const replies = (await pipe.exec()) ?? [];
    return replies.map((r) => (r[0] ? Number.NaN : Number(r[1])));
  }

  /**
   * Our reconciliation SCAN starts (`end` undefined) or ends. Redis deletes every past-due key a
   * SCAN touches, so the `expired` notifications received meanwhile are that SCAN flushing the
   * lazy-expiry backlog, whatever their lag: all backlog, none churn. Counting those whose due
   * passed less than the tolerance ago is what made each reconnect open churn_spike (issue #16.3).
   * Judged by each notification's arrival time, so those applied after the SCAN are covered too.
   */
  beginOwnScan(at: number): void {
    this.#ownScan = { start: at, end: undefined };
  }

  endOwnScan(at: number): void {
    if (this.#ownScan) this.#ownScan.end = at;
  }

  /**
   * A lazy-expiry flush (anyone's SCAN, KEYS, a burst of reads) makes Redis delete at once every
   * past-due key it touches: those due long ago (backlog by their lag) and, mixed in with them,
   * those due less than the tolerance ago, which their lag alone cannot tell from an expiration
   * on time. They would add expiry rate x tolerance events to one second, which is what opened
   * churn_spike at every outside SCAN (issue #16.3). So an `expired` is judged with its batch:
   * when at least as many of the batch's expirations are backlog as on time, Redis is catching
   * up lazily rather than expiring on time, and all of them are backlog. A Redis that expires on
   * time delivers batches with no backlog, whose expirations stay churn.
   */
  markExpiryFlush(prepared: readonly Prepared[]): void {
    let late = 0;
    let onTime = 0;
    const node = this.#o.nodeIndex;
    for (const p of prepared) {
      if (p.event !== 'expired' || p.migrated) continue;
      const e = this.#o.inventory.get(p.c.kind, p.c.fingerprint);
      if (!e || e.node !== node || e.due === null || Number.isNaN(e.due)) continue;
      if (p.at - (e.due - this.offsetMs) > this.#o.expiryBacklogToleranceMs) late += 1;
      else onTime += 1;
    }
    if (late === 0 || late < onTime) return;
    for (const p of prepared) if (p.event === 'expired') p.flush = true;
  }

  #duringOwnScan(at: number): boolean {
    const s = this.#ownScan;
    return s !== undefined && at >= s.start && (s.end === undefined || at <= s.end);
  }

  /** Apply one notification to the inventory and report its token event, if any. */
  apply(p: Prepared): void {
    const { event, c } = p;
    if (p.absorbed) return;
    const inv = this.#o.inventory;
    const node = this.#o.nodeIndex;
    if (event === 'rename_from') {
      this.#pendingRename = { c, entry: inv.delete(c.kind, c.fingerprint, node) };
      return;
    }
    if (event === 'rename_to') {
      const from = this.#pendingRename;
      this.#pendingRename = undefined;
      if (c.kind === '') {
        // Renamed to a key that is not a token: for us the token left.
        if (from) this.#end(p, from.c, 'deleted', from.entry);
        return;
      }
      // RENAME keeps the TTL: the old entry knows it, the look-up is only a fallback.
      const due = from?.entry ? from.entry.due : this.#due(p.expireAt);
      inv.set(c.kind, c.fingerprint, { due, written: from?.entry?.written ?? p.at, node });
      this.#emit(p, c, from ? 'renamed' : 'written', {
        dueAt: this.#localDue(due),
        ttlMs: this.#ttl(due, p.at),
        renamedFrom: from ? { kind: from.c.kind, fingerprint: from.c.fingerprint } : undefined,
      });
      return;
    }
    if (p.migrated) return;
    const end = ENDS[event];
    if (end) {
      const held = inv.get(c.kind, c.fingerprint);
      // The source side of a slot migration: the token lives on another node now.
      if (held && held.node !== node) return;
      this.#end(p, c, end, inv.delete(c.kind, c.fingerprint, node));
      return;
    }
    const known = inv.get(c.kind, c.fingerprint);
    if (WRITES.has(event) || (event === 'hset' && !known)) {
      // The TTL is what Redis says after the command (SET EX, SET KEEPTTL, a plain SET or a new
      // hash alike), never inferred from which notifications arrived: NaN (unknown) when a later
      // event of the key in this batch superseded the look-up or the key is already gone.
      let due = this.#due(p.expireAt);
      if (p.withTtl && due === null) due = Number.NaN; // the TTL was removed again before the look-up
      inv.set(c.kind, c.fingerprint, { due, written: p.at, node });
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
      const due = this.#due(p.expireAt);
      if (due === null || Number.isNaN(due) || due === known.due) return;
      inv.set(c.kind, c.fingerprint, { due, written: known.written, node });
      this.#emit(p, c, 'ttl_changed', { dueAt: this.#localDue(due), ttlMs: this.#ttl(due, p.at) });
      return;
    }
    if (event === 'persist') {
      inv.set(c.kind, c.fingerprint, { due: null, written: known?.written ?? 0, node });
      this.#emit(p, c, 'persisted', { dueAt: null, ttlMs: null });
      return;
    }
    if (event === 'expire') {
      let due = this.#due(p.expireAt);
      // The inventory holds exactly this expiry already: the second half of a SET EX whose write
      // (in an earlier batch) looked it up. PEXPIRETIME is exact to the ms, so a real TTL change
      // never compares equal (short of a PEXPIREAT to the same ms, which changes nothing).
      if (typeof due === 'number' && !Number.isNaN(due) && known?.due === due) return;
      if (due === null) due = Number.NaN; // superseded by a later PERSIST before the look-up
      inv.set(c.kind, c.fingerprint, { due, written: known?.written ?? 0, node });
      this.#emit(p, c, 'ttl_changed', { dueAt: this.#localDue(due), ttlMs: this.#ttl(due, p.at) });
    }
    // hset on a live hash, hdel, new, append, ...: not a lifecycle change.
  }

  /**
   * A baseline SCAN found the token (its write not observed): `token.present` with its expiry.
   * `due` is PEXPIRETIME on the Redis clock (null: no TTL).
   */
  present(c: ClassifiedKey, due: number | null, at: number): void {
    const o = this.#o;
    o.sink.token({
      type: 'present',
      kind: c.kind,
      fingerprint: c.fingerprint,
      keyAttrs: c.keyAttrs,
      node: o.label,
      db: o.db,
      observedAt: at,
      redisEvent: 'scan',
      dueAt: this.#localDue(due),
      ttlMs: this.#ttl(due, at),
    });
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
      extra.expiryLagMs = p.at - (entry.due - this.offsetMs);
      // Redis deletes expired keys lazily (on access, or when its expire cycle samples them): a
      // SCAN touching a backlog of long-due keys makes them all "expire" at once. Not churn.
      if (extra.expiryLagMs > this.#o.expiryBacklogToleranceMs) extra.backlog = true;
    }
    if (type === 'expired' && (p.flush === true || this.#duringOwnScan(p.at))) extra.backlog = true;
    this.#emit(p, c, type, extra);
  }

  #emit(p: Prepared, c: ClassifiedKey, type: TokenEventType, extra: Partial<TokenEvent>): void {
    this.#o.sink.token({
      type,
      kind: c.kind,
      fingerprint: c.fingerprint,
      keyAttrs: c.keyAttrs,
      node: this.#o.label,
      db: this.#o.db,
      observedAt: p.at,
      redisEvent: p.event,
      ...extra,
    });
  }

  /** PEXPIRETIME reply -> inventory due: null no TTL, NaN unknown (or gone), else Redis-clock ms. */
  #due(expireAt: number | undefined): number | null {
    if (expireAt === undefined || Number.isNaN(expireAt) || expireAt === -2) return Number.NaN;
    if (expireAt === -1) return null;
    return expireAt;
  }

  #localDue(due: number | null): number | null | undefined {
    if (due === null) return null;
    if (Number.isNaN(due)) return undefined;
    return due - this.offsetMs;
  }

  #ttl(due: number | null, at: number): number | null | undefined {
    if (due === null) return null;
    if (Number.isNaN(due)) return undefined;
    return Math.max(0, due - this.offsetMs - at);
  }
}
