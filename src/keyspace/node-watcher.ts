import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { TokenEvent, TokenEventType } from '../domain/token-event.js';
import type { Inventory, InventoryEntry, ReconcileChange } from './inventory.js';
import { ensureNotifications, type NotificationStatus } from './notifications.js';
import { clockOffset, readFlushCount, readHitMiss, scanSnapshot } from './reconcile.js';
import type { ClassifiedKey, TokenRules } from './token-rules.js';

/** What a node watcher reports to the service that owns it. */
export interface WatcherSink {
  token(ev: TokenEvent): void;
  unmatched(count: number): void;
  baseline(report: BaselineReport): void;
  gap(report: GapReport): void;
  status(status: NodeStatus): void;
  hitMiss(node: string, hits: number, misses: number): void;
}

export interface NodeStatus {
  node: string;
  subscribed: boolean;
  notifications: NotificationStatus | undefined;
}

export interface BaselineReport {
  node: string;
  at: number;
  counts: Record<string, number>;
  scanned: number;
  unmatched: number;
  durationMs: number;
}

export interface GapReport {
  node: string;
  start: number;
  end: number;
  reason: string;
  changes: ReconcileChange[];
  scanned: number;
  durationMs: number;
}

export interface NodeWatcherOptions {
  nodeIndex: number;
  /** `host:port`, used as metric label and in records. */
  label: string;
  db: number;
  subscriber: Redis;
  commands: Redis;
  rules: TokenRules;
  inventory: Inventory;
  sink: WatcherSink;
  maxKeyBytes: number;
  scanCount: number;
  configureNotifications: boolean;
  recheckIntervalMs: number;
  infoIntervalMs: number;
  /** How often INFO commandstats is read to detect FLUSHDB/FLUSHALL (they emit no per-key events). */
  flushCheckIntervalMs: number;
  now: () => number;
  logger: Logger;
  /**
   * Start blind: the first reconciliation is a gap (a master promoted or added after start),
   * not a baseline.
   */
  startBlind?: { since: number; reason: string };
  /** Cluster mode: RESTORE of a token held by another node is a slot migration. */
  cluster?: boolean;
}

interface Item {
  event: string;
  key: Buffer;
  at: number;
  /** Cluster slot migration: the token only moved between nodes. */
  migrated?: boolean;
}

interface Prepared extends Item {
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
}

/** Notifications of one command arrive together; a separate EXPIRE comes a round trip later. */
const PAIR_WINDOW_MS = 2;

/** Most notifications handled per look-up round trip. */
const MAX_CHUNK = 5000;

const NOT_A_TOKEN: ClassifiedKey = { kind: '', fingerprint: '', keyAttrs: {} };

/**
 * PEXPIRETIME of many keys in one command: a batch of 10 000 notifications costs one command to
 * parse, not 10 000. Keys travel as ARGV, and `allow-cross-slot-keys` lets a Cluster node answer
 * for all of its own keys. Read-only.
 */
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

/**
 * Watches one Redis node: a subscriber connection on `__keyevent@<db>__:*` and a command
 * connection for PEXPIRETIME look-ups, SCAN reconciliation, CONFIG and INFO.
 *
 * Pub/sub is fire-and-forget (nothing is buffered for a disconnected client), so every
 * disconnect opens a blind spot: on reconnect the watcher resubscribes FIRST, then reconciles
 * the inventory against SCAN and reports a gap with what changed while it was blind.
 */
export class NodeWatcher {
  readonly label: string;
  readonly #o: NodeWatcherOptions;
  readonly #prefix: string;
  #batch: Item[] = [];
  #processing = false;
  #subscribed = false;
  #baselined = false;
  #blindSince: number | undefined;
  #blindReason = 'startup';
  #reconciling: Promise<void> | undefined;
  #offsetMs = 0;
  #notifications: NotificationStatus | undefined;
  #recheckTimer: NodeJS.Timeout | undefined;
  #infoTimer: NodeJS.Timeout | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #flushes: { count: number; at: number } | undefined;
  #pendingRename: { c: ClassifiedKey; entry: InventoryEntry | undefined } | undefined;
  #scriptSha = createHash('sha1').update(EXPIRY_SCRIPT).digest('hex');
  #scriptOk: boolean | undefined;
  /** Last write of the previous batch, to pair it with an `expire` that opens the next one. */
  #lastWrite: { k: string; at: number } | undefined;
  #lastHits: { hits: number; misses: number } | undefined;
  #closed = false;
  #idle: (() => void)[] = [];
  #lastReconcileStart = 0;

  constructor(options: NodeWatcherOptions) {
    this.#o = options;
    this.label = options.label;
    this.#prefix = `__keyevent@${options.db}__:`;
    if (options.startBlind) {
      this.#baselined = true;
      this.#blindSince = options.startBlind.since;
      this.#blindReason = options.startBlind.reason;
    }
  }

  get subscribed(): boolean {
    return this.#subscribed;
  }

  get baselined(): boolean {
    return this.#baselined;
  }

  get notifications(): NotificationStatus | undefined {
    return this.#notifications;
  }

  start(): void {
    const { subscriber, commands } = this.#o;
    subscriber.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => {
      const item: Item = {
        event: channel.toString('latin1', this.#prefix.length),
        key: message,
        at: this.#o.now(),
      };
      // MIGRATE runs RESTORE on the target before it deletes on the source, so the target's
      // `restore` arrives first: claim the token at once so the source's `del` is not taken
      // for a deletion (slot migration is not a lifecycle event).
      if (this.#o.cluster && item.event === 'restore') item.migrated = this.#claim(message);
      this.#batch.push(item);
      if (!this.#processing) this.#kick();
    });
    subscriber.on('ready', () => void this.#onReady());
    subscriber.on('close', () => this.#onDown('subscriber connection closed'));
    subscriber.on('error', (err: Error) => {
      this.#o.logger.warn({ node: this.label, err: err.message }, 'keyspace subscriber error');
    });
    commands.on('error', (err: Error) => {
      this.#o.logger.warn({ node: this.label, err: err.message }, 'redis command connection error');
    });
    this.#recheckTimer = setInterval(() => void this.#recheck(), this.#o.recheckIntervalMs);
    this.#recheckTimer.unref();
    this.#infoTimer = setInterval(() => void this.#pollInfo(), this.#o.infoIntervalMs);
    this.#infoTimer.unref();
    this.#flushTimer = setInterval(() => void this.#checkFlush(), this.#o.flushCheckIntervalMs);
    this.#flushTimer.unref();
    subscriber.connect().catch(() => undefined);
    commands.connect().catch(() => undefined);
  }

  /** Resolves once every notification received so far has been applied. */
  async idle(): Promise<void> {
    if (!this.#processing && this.#batch.length === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /** Resolves once a reconciliation in progress (if any) finished. */
  async settled(): Promise<void> {
    await this.#reconciling;
    await this.idle();
  }

  /** Declare a blind spot from outside (e.g. dropped audit records) and reconcile now. */
  markBlind(reason: string, since: number): Promise<void> {
    this.#blindSince = Math.min(this.#blindSince ?? since, since);
    this.#blindReason = reason;
    return this.#reconcile();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#recheckTimer);
    clearInterval(this.#infoTimer);
    clearInterval(this.#flushTimer);
    clearTimeout(this.#retryTimer);
    this.#o.subscriber.disconnect();
    // Apply what already arrived, but never hang on a look-up to a node that is gone.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    this.#o.commands.disconnect();
  }

  #claim(key: Buffer): boolean {
    if (key.length > this.#o.maxKeyBytes) return false;
    const c = this.#o.rules.classify(key.toString('latin1'));
    return c ? this.#o.inventory.claim(c.kind, c.fingerprint, this.#o.nodeIndex) : false;
  }

  /** When the last successful reconciliation started (0: never). */
  get lastReconcileStart(): number {
    return this.#lastReconcileStart;
  }

  get reconciling(): boolean {
    return this.#reconciling !== undefined;
  }

  #onDown(reason: string): void {
    if (this.#closed) return;
    if (this.#subscribed) {
      this.#subscribed = false;
      this.#blindSince ??= this.#o.now();
      this.#blindReason = reason;
      this.#o.logger.warn(
        { node: this.label },
        'keyspace subscriber disconnected: blind spot opened',
      );
      this.#emitStatus();
    }
  }

  async #onReady(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#waitCommandsReady();
      this.#notifications = await ensureNotifications(
        this.#o.commands,
        this.#o.configureNotifications,
      );
      if (this.#notifications.problem) {
        this.#o.logger.warn(
          { node: this.label, problem: this.#notifications.problem },
          'keyspace notifications not fully enabled',
        );
      } else if (this.#notifications.added) {
        this.#o.logger.info(
          { node: this.label, added: this.#notifications.added },
          'enabled keyspace notification flags',
        );
      }
      this.#offsetMs = await clockOffset(this.#o.commands, this.#o.now);
      // Subscribe before reconciling so nothing that happens during the SCAN is missed.
      await this.#o.subscriber.psubscribe(`${this.#prefix}*`);
      this.#subscribed = true;
      this.#emitStatus();
      // The flush counter as of subscribing: any later FLUSHDB/FLUSHALL shows as an increase.
      this.#flushes = {
        count: await readFlushCount(this.#o.commands).catch(() => 0),
        at: this.#o.now(),
      };
      await this.#pollInfo();
      await this.#reconcile();
    } catch (err) {
      this.#o.logger.warn(
        { node: this.label, err: (err as Error).message },
        'keyspace subscribe/reconcile failed; retrying in 5 s',
      );
      // The connection may well stay up (e.g. NOPERM, CLUSTERDOWN): retry, do not wait for a reconnect.
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => {
        if (!this.#closed && this.#o.subscriber.status === 'ready') void this.#onReady();
      }, 5000);
      this.#retryTimer.unref();
    }
  }

  async #waitCommandsReady(): Promise<void> {
    const c = this.#o.commands;
    if (c.status === 'ready') return;
    await new Promise<void>((resolve) => c.once('ready', () => resolve()));
  }

  #reconcile(): Promise<void> {
    this.#reconciling ??= this.#doReconcile().finally(() => {
      this.#reconciling = undefined;
    });
    return this.#reconciling;
  }

  async #doReconcile(): Promise<void> {
    const o = this.#o;
    if (this.#baselined && this.#blindSince === undefined) return;
    const start = this.#blindSince ?? o.now();
    const reason = this.#blindReason;
    const scanStarted = o.now();
    o.inventory.beginReconcile(o.nodeIndex);
    let result;
    try {
      result = await scanSnapshot(o.commands, o.rules, {
        count: o.scanCount,
        maxKeyBytes: o.maxKeyBytes,
      });
    } catch (err) {
      o.inventory.abortReconcile(o.nodeIndex);
      throw err;
    }
    // Apply every notification that arrived during the SCAN before comparing.
    await this.idle();
    const changes = o.inventory.applySnapshot(o.nodeIndex, result.snapshot);
    const end = o.now();
    this.#lastReconcileStart = scanStarted;
    if (!this.#baselined) {
      this.#baselined = true;
      this.#blindSince = undefined;
      const counts: Record<string, number> = {};
      for (const [kind, m] of result.snapshot) counts[kind] = m.size;
      o.sink.baseline({
        node: this.label,
        at: end,
        counts,
        scanned: result.scanned,
        unmatched: result.unmatched,
        durationMs: Math.round(result.durationMs),
      });
      return;
    }
    this.#blindSince = undefined;
    o.sink.gap({
      node: this.label,
      start,
      end,
      reason,
      changes,
      scanned: result.scanned,
      durationMs: Math.round(result.durationMs),
    });
  }

  async #recheck(): Promise<void> {
    if (this.#closed || this.#o.commands.status !== 'ready') return;
    const before = this.#notifications;
    try {
      const status = await ensureNotifications(this.#o.commands, this.#o.configureNotifications);
      this.#notifications = status;
      this.#offsetMs = await clockOffset(this.#o.commands, this.#o.now);
      const flagsWereWiped = status.added !== '' || !status.enabled;
      if (flagsWereWiped && (before?.enabled ?? false)) {
        // Events published while the flags were off are lost: that was a blind spot.
        this.#o.logger.warn(
          { node: this.label, added: status.added, problem: status.problem },
          'keyspace notification flags were removed on the server',
        );
        this.#blindSince ??= this.#o.now() - this.#o.recheckIntervalMs;
        this.#blindReason = 'notifications_disabled';
      }
      if (status.enabled && this.#blindSince !== undefined && this.#subscribed)
        await this.#reconcile();
    } catch (err) {
      this.#o.logger.warn(
        { node: this.label, err: (err as Error).message },
        'notification re-check failed',
      );
    }
    this.#emitStatus();
  }

  /**
   * FLUSHDB / FLUSHALL remove every key without a per-key notification: the mass invalidation
   * is only visible in INFO commandstats. A new flush since the last reading triggers an
   * immediate reconciliation that records what vanished.
   */
  async #checkFlush(): Promise<void> {
    if (this.#closed || this.#o.commands.status !== 'ready' || !this.#subscribed) return;
    try {
      const count = await readFlushCount(this.#o.commands);
      const last = this.#flushes;
      const now = this.#o.now();
      this.#flushes = { count, at: now };
      if (last && count > last.count && this.#baselined) {
        this.#o.logger.warn(
          { node: this.label, flushes: count - last.count },
          'FLUSHDB/FLUSHALL detected: reconciling',
        );
        await this.markBlind('flush', last.at);
      }
    } catch (err) {
      this.#o.logger.debug({ node: this.label, err: (err as Error).message }, 'flush check failed');
    }
  }

  async #pollInfo(): Promise<void> {
    if (this.#closed || this.#o.commands.status !== 'ready') return;
    try {
      const now = await readHitMiss(this.#o.commands);
      const last = this.#lastHits;
      // A restarted Redis resets its counters: count from zero again rather than going negative.
      const dh = last && now.hits >= last.hits ? now.hits - last.hits : now.hits;
      const dm = last && now.misses >= last.misses ? now.misses - last.misses : now.misses;
      this.#lastHits = now;
      this.#o.sink.hitMiss(this.label, dh, dm);
    } catch {
      // the status gauge reports the node down through the subscriber state
    }
  }

  #emitStatus(): void {
    this.#o.sink.status({
      node: this.label,
      subscribed: this.#subscribed,
      notifications: this.#notifications,
    });
  }

  #kick(): void {
    this.#processing = true;
    setImmediate(() => void this.#process());
  }

  async #process(): Promise<void> {
    try {
      while (this.#batch.length > 0) {
        // Bounded chunks keep the event loop reading the subscriber socket between them: a
        // subscriber that stops reading is cut off by Redis (client-output-buffer-limit pubsub).
        const items =
          this.#batch.length <= MAX_CHUNK ? this.#batch : this.#batch.slice(0, MAX_CHUNK);
        this.#batch = items === this.#batch ? [] : this.#batch.slice(MAX_CHUNK);
        const prepared = this.#classify(items);
        await this.#lookup(prepared);
        for (const p of prepared) this.#apply(p);
      }
    } catch (err) {
      this.#o.logger.error(
        { node: this.label, err: (err as Error).message },
        'keyspace batch failed',
      );
    } finally {
      this.#processing = false;
      const waiters = this.#idle;
      this.#idle = [];
      for (const w of waiters) w();
    }
  }

  #classify(items: Item[]): Prepared[] {
    const out: Prepared[] = [];
    let unmatched = 0;
    for (const it of items) {
      if (it.key.length > this.#o.maxKeyBytes) {
        unmatched += 1;
        continue;
      }
      const k = it.key.toString('latin1');
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
   * SET EX emits `set` then `expire` back to back, in one command: one write with a TTL, not two
   * events. Adjacent in the stream AND received within PAIR_WINDOW_MS of each other (one command
   * publishes both at once), so a later EXPIRE by another command stays a TTL change.
   */
  #pairWrites(items: Prepared[]): void {
    let prev = this.#lastWrite;
    for (let i = 0; i < items.length; i++) {
      const p = items[i] as Prepared;
      if (p.event === 'expire' && prev && prev.k === p.k && p.at - prev.at <= PAIR_WINDOW_MS) {
        p.absorbed = true;
        const w = items[i - 1];
        if (w && w.k === p.k) w.withTtl = true;
        else this.#o.logger.debug({ node: this.label }, 'SET EX pair split across batches');
        prev = undefined;
        continue;
      }
      prev = WRITES.has(p.event) || p.event === 'hset' ? { k: p.k, at: p.at } : undefined;
    }
    this.#lastWrite = prev;
  }

  /**
   * One pipelined PEXPIRETIME round trip for the whole batch, never one per event. Only the last
   * event of each key in the batch is looked up: earlier ones were superseded before the reply.
   */
  async #lookup(prepared: Prepared[]): Promise<void> {
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
      replies = await this.#expiryOf(keys);
    } catch {
      replies = undefined;
    }
    need.forEach((p, i) => {
      const r = replies?.[i];
      p.expireAt = typeof r === 'number' ? r : Number.NaN;
    });
  }

  /** One EVALSHA for the whole batch; falls back to a PEXPIRETIME pipeline where scripts are not allowed. */
  async #expiryOf(keys: Buffer[]): Promise<number[]> {
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
            { node: this.label, err: msg },
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

  #apply(p: Prepared): void {
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
      let due: number | null;
      if (p.withTtl) {
        due = this.#due(p.expireAt);
        if (due === null) due = Number.NaN; // the TTL was removed again before the look-up
      } else if (
        event === 'set' &&
        known &&
        typeof known.due === 'number' &&
        p.expireAt === known.due
      ) {
        due = known.due; // SET ... KEEPTTL
      } else {
        due = null; // SET without EX/KEEPTTL and a new hash carry no TTL
      }
      inv.set(c.kind, c.fingerprint, { due, written: p.at, node });
      this.#emit(p, c, 'written', { dueAt: this.#localDue(due), ttlMs: this.#ttl(due, p.at) });
      return;
    }
    if (event === 'persist') {
      inv.set(c.kind, c.fingerprint, { due: null, written: known?.written ?? 0, node });
      this.#emit(p, c, 'persisted', { dueAt: null, ttlMs: null });
      return;
    }
    if (event === 'expire') {
      let due = this.#due(p.expireAt);
      if (due === null) due = Number.NaN; // superseded by a later PERSIST before the look-up
      inv.set(c.kind, c.fingerprint, { due, written: known?.written ?? 0, node });
      this.#emit(p, c, 'ttl_changed', { dueAt: this.#localDue(due), ttlMs: this.#ttl(due, p.at) });
    }
    // hset on a live hash, hdel, new, append, ...: not a lifecycle change.
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
      extra.expiryLagMs = p.at - (entry.due - this.#offsetMs);
    }
    this.#emit(p, c, type, extra);
  }

  #emit(p: Prepared, c: ClassifiedKey, type: TokenEventType, extra: Partial<TokenEvent>): void {
    this.#o.sink.token({
      type,
      kind: c.kind,
      fingerprint: c.fingerprint,
      keyAttrs: c.keyAttrs,
      node: this.label,
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
    return due - this.#offsetMs;
  }

  #ttl(due: number | null, at: number): number | null | undefined {
    if (due === null) return null;
    if (Number.isNaN(due)) return undefined;
    return Math.max(0, due - this.#offsetMs - at);
  }
}
