import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { TokenEvent } from '../domain/token-event.js';
import { KeyEventApplier, type Prepared } from './event-applier.js';
import { EventNames } from './event-names.js';
import { InFlightKeys, discardDropped } from './notification-batch.js';
import { NotificationQueue } from './notification-queue.js';
import type { Inventory, ReconcileChange } from './inventory.js';
import { REQUIRED_FLAGS, ensureNotifications, type NotificationStatus } from './notifications.js';
import {
  installPmessageFastPath,
  type FallbackReason,
  type RawPmessageHandler,
  type PmessageFastPathStats,
} from './pmessage-fast-path.js';
import { clockOffset, readFlushCount, readHitMiss } from './reconcile.js';
import { baselineCounts, reconcileNode } from './reconciliation.js';
import type { StreamPositionTracker } from './stream-position.js';
import type { StreamPosition } from '../domain/position.js';
import type { TokenRules } from './token-rules.js';

/** What a node watcher reports to the service that owns it. */
export interface WatcherSink {
  token(ev: TokenEvent): void;
  unmatched(count: number): void;
  baseline(report: BaselineReport): void;
  gap(report: GapReport): void;
  status(status: NodeStatus): void;
  hitMiss(node: string, hits: number, misses: number): void;
  /** The subscriber's fast path gave a connection up (pmessage-fast-path.ts). */
  fastPathFallback?(node: string, reason: FallbackReason): void;
  /** The node's backlog reached maxPendingNotifications: `count` notifications were dropped. */
  notificationsDropped?(node: string, count: number): void;
  /**
   * Resolves when the records queued so far leave room for more: the baseline records one
   * `token.present` per token and waits here between SCAN pages rather than overflow the
   * ledger's bounded queue.
   */
  drain?(): Promise<void>;
  /**
   * Backpressure on the live path of `node`: undefined while the records queued leave room for
   * another chunk of notifications; else resolves once they do (or the ledger is degraded, or
   * `stop()` says the watcher closed). Meanwhile the backlog waits in the node's notification
   * queue, a few dozen bytes per notification, not as records of a few hundred bytes each in
   * the ledger's bounded queue, which would drop them past audit.maxPending.
   */
  room?(node: string, stop: () => boolean): Promise<void> | undefined;
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
  /** Of `counts`, tokens without TTL, per kind. */
  noTtl: Record<string, number>;
  /** Of `counts`, tokens whose due time had already passed (not yet deleted by Redis). */
  pastDue: Record<string, number>;
  /** `token.present` records written (tokens live events had not recorded first). */
  present: number;
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
  /** Redis clock minus ours (ms) when reconciled: turns the changes' dues into local times. */
  offsetMs?: number;
  /** A restart's reconciliation: `token.present` records written for the unchanged tokens. */
  present?: number;
  /** Why the blind spot could not be reconciled (its changes are unknown), when it could not. */
  unreconciled?: string;
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
  /**
   * redis.maxPendingNotifications: most notifications received and not yet applied; past it
   * they are dropped and reconciled as a blind spot (#overflow).
   */
  maxPendingNotifications: number;
  /** An expiry noticed this long after its due time is expiry backlog, not churn (ms). */
  expiryBacklogToleranceMs: number;
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
  startBlind?: {
    since: number;
    reason: string;
    /**
     * The inventory holds this node's tokens as the previous run's ledger left them (dues in
     * local time): the first reconciliation records `token.present` for the unchanged ones and
     * appeared / vanished / ttl_changed for the rest, as for any gap.
     */
    restored?: boolean;
  };
  /** Cluster mode: RESTORE of a token held by another node is a slot migration. */
  cluster?: boolean;
  /** metrics.keyMisses: flags managed on top of REQUIRED_FLAGS (`m`) and where `keymiss` goes. */
  keyMisses?: { flags: string; onMiss: (node: string, key: Buffer, at: number) => void };
  /**
   * Coordination on (issue #20): every notification received goes through this tracker first
   * (keymiss included), and the token events made from it carry its `position` and
   * `positionIndex`. Reset at every subscriber disconnect (a hole in the stream). Absent
   * (coordination off): no positions, no cost.
   */
  streamPositions?: StreamPositionTracker;
  /** A reconciliation SCANned this many keys (the service releases the memory of large ones). */
  onScanned?: ((scanned: number) => void) | undefined;
}

/** Most notifications handled per look-up round trip. */
const MAX_CHUNK = 5000;

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
  readonly #events: KeyEventApplier;
  /** Received, not yet applied (arrival order). */
  readonly #queue = new NotificationQueue();
  #processing = false;
  /**
   * An overflow dropped notifications: #afterOverflow is due before the next chunk. Resolved
   * there; a reconciliation asked for meanwhile waits for it.
   */
  #overflowDone: { promise: Promise<void>; resolve: () => void } | undefined;
  /** The batch taken and not applied yet: an overflow notes which of its tokens it dropped. */
  #inFlight: InFlightKeys | undefined;
  #subscribed = false;
  #baselined = false;
  #blindSince: number | undefined;
  #blindReason = 'startup';
  #reconciling: Promise<void> | undefined;
  /**
   * A blind spot that opened while a reconciliation ran. That SCAN may already have passed what
   * the new blind spot lost, so it is reconciled again after (#reconcileAll).
   */
  #blindAgain: { since: number; reason: string } | undefined;
  /** Ends the look-up in flight without its answer (close(): a node that stopped answering). */
  #escapeLookup: (() => void) | undefined;
  /** close() gave up on look-ups: what is left is applied with its expiry unknown. */
  #lookupsAbandoned = false;
  /** close() resolved: what the half-closed subscriber still delivers is dropped. */
  #ended = false;
  #notifications: NotificationStatus | undefined;
  #recheckTimer: NodeJS.Timeout | undefined;
  #infoTimer: NodeJS.Timeout | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #flushes: { count: number; at: number } | undefined;
  #lastHits: { hits: number; misses: number } | undefined;
  #closed = false;
  #idle: (() => void)[] = [];
  #lastReconcileStart = 0;
  #fastPath: PmessageFastPathStats | undefined;
  /** Restored from the ledger, not yet reconciled (see startBlind.restored). */
  #restoring = false;
  /** The restored dues were moved onto the Redis clock. */
  #restoreShifted = false;

  constructor(options: NodeWatcherOptions) {
    this.#o = options;
    this.label = options.label;
    this.#prefix = `__keyevent@${options.db}__:`;
    this.#events = new KeyEventApplier({
      ...options,
      quietLookups: options.keyMisses !== undefined,
    });
    if (options.startBlind) {
      this.#baselined = true;
      this.#blindSince = options.startBlind.since;
      this.#blindReason = options.startBlind.reason;
      this.#restoring = options.startBlind.restored === true;
    }
  }

  get subscribed(): boolean {
    return this.#subscribed;
  }

  get baselined(): boolean {
    return this.#baselined;
  }

  /** Notifications received and not yet applied (a backlog, src/runtime/backlog-heap-growth.ts). */
  get waiting(): number {
    return this.#queue.length;
  }

  /** How the subscriber's messages were read (issue #19): by the fast path or by ioredis. */
  get fastPath(): PmessageFastPathStats | undefined {
    return this.#fastPath;
  }

  get notifications(): NotificationStatus | undefined {
    return this.#notifications;
  }

  /** The node's command connection (index reconciliation, sampling markers). */
  get commands(): Redis {
    return this.#o.commands;
  }

  start(): void {
    const { subscriber, commands } = this.#o;
    const positions = this.#o.streamPositions;
    const names = new EventNames(this.#prefix.length);
    const onMessage: RawPmessageHandler = (channel, cs, ce, message, ms, me): void => {
      if (this.#ended) return;
      const event = names.of(channel, cs, ce);
      const at = this.#o.now();
      // Views of the key only where one is kept or handed on at once; the queue keeps ranges.
      let pos: StreamPosition | undefined;
      if (positions) pos = positions.observe(event, message.subarray(ms, me));
      // A read of a missing key, not a lifecycle event: counted by CacheHealth (issue #21).
      if (event === 'keymiss') {
        this.#o.keyMisses?.onMiss(this.label, message.subarray(ms, me), at);
        return;
      }
      // MIGRATE runs RESTORE on the target before it deletes on the source, so the target's
      // `restore` arrives first: claim the token at once so the source's `del` is not taken
      // for a deletion (slot migration is not a lifecycle event).
      const migrated =
        this.#o.cluster && event === 'restore'
          ? this.#events.claim(message.subarray(ms, me))
          : undefined;
      if (this.#queue.length >= this.#o.maxPendingNotifications) {
        this.#overflow(at, event, message, ms, me);
        return;
      }
      this.#queue.push(event, message, ms, me, at, pos, migrated);
      if (!this.#processing) this.#kick();
    };
    // Messages are read in front of ioredis' decoder; after a fallback they come from ioredis.
    this.#fastPath = installPmessageFastPath(subscriber, onMessage, (text, reason) => {
      this.#o.logger.warn(
        { node: this.label, reason: text },
        reason === 'read_fault'
          ? 'keyspace subscriber: the fast path failed reading; reconnecting'
          : 'keyspace subscriber: messages decoded by ioredis for this connection',
      );
      this.#o.sink.fastPathFallback?.(this.label, reason);
    });
    subscriber.on('pmessageBuffer', (_pattern: string, channel: Buffer, message: Buffer) =>
      onMessage(channel, 0, channel.length, message, 0, message.length),
    );
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
    if (!this.#processing && this.#queue.length === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /** Resolves once a reconciliation in progress (if any) finished. */
  async settled(): Promise<void> {
    await this.#reconciling;
    await this.idle();
  }

  /**
   * Runs the baseline again (SCAN, `token.present` for what live events did not record first)
   * and reports it to the sink, unless a blind spot is pending, whose reconciliation then runs
   * as a gap as usual. For a sink that withheld the first baseline (docs/ha.md: the first owner
   * of a node baselined while it was a standby).
   */
  async rebaseline(): Promise<void> {
    await this.#reconciling;
    if (this.#blindSince === undefined) this.#baselined = false;
    await this.#reconcile();
  }

  /** Declare a blind spot from outside (e.g. dropped audit records) and reconcile now. */
  markBlind(reason: string, since: number): Promise<void> {
    this.#openBlind(since, reason);
    return this.#reconcile();
  }

  /**
   * The backlog reached maxPendingNotifications: Redis has been delivering faster than this
   * node's notifications are applied. Holding more would grow memory without bound (Redis never
   * sees it: the socket is read), so what waits is dropped with the notification that found the
   * queue full, counted and logged: a blind spot from the oldest dropped arrival, reconciled by
   * SCAN like a disconnect's (the subscriber stays subscribed, so nothing after it is missed).
   * The reconciliation starts once the chunk in flight (received before the drop) is applied
   * (#afterOverflow): started now, it would take that chunk's tokens for changes made during
   * its SCAN and keep them as the chunk left them, whatever the dropped notifications did.
   */
  #overflow(at: number, event: string, message: Buffer, ms: number, me: number): void {
    // The batch in flight's look-up may answer after these (see discardDropped).
    const flight = this.#inFlight;
    const { dropped, oldestAt } = this.#queue.clear(
      flight && ((ev, chunk, start, end, bits) => flight.dropped(ev, chunk, start, end, bits)),
    );
    flight?.dropped(event, message, ms, me);
    const since = Number.isNaN(oldestAt) ? at : oldestAt;
    // A blind spot open already (not reconciling yet) started earlier: it keeps its reason.
    if (this.#blindSince !== undefined && this.#reconciling === undefined)
      this.#blindSince = Math.min(this.#blindSince, since);
    else this.#openBlind(since, 'backlog_overflow');
    if (!this.#overflowDone) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#overflowDone = { promise, resolve };
    }
    this.#o.sink.notificationsDropped?.(this.label, dropped + 1);
    this.#o.logger.warn(
      {
        node: this.label,
        dropped: dropped + 1,
        maxPendingNotifications: this.#o.maxPendingNotifications,
      },
      'keyspace backlog full: dropped what waited, blind spot opened, reconciling',
    );
    if (!this.#processing) this.#kick();
  }

  /**
   * After an overflow, once everything received before the drop is applied: the stream has a
   * hole there. Positions restart at the next marker (a standby's buffer must not join what it
   * holds before the hole with what follows), a RENAME whose `rename_to` was dropped gives its
   * token back to the inventory (the reconciliation then finds where it went: vanished, and the
   * new key appeared), and the node is reconciled.
   */
  #afterOverflow(): void {
    const done = this.#overflowDone;
    if (!done) return;
    this.#overflowDone = undefined;
    this.#o.streamPositions?.reset();
    this.#events.discontinuity();
    done.resolve();
    this.#reconcile().catch((err: unknown) => {
      // The blind spot stays open: the next re-check reconciles it.
      if (this.#closed) return;
      this.#o.logger.warn(
        { node: this.label, err: (err as Error).message },
        'reconciliation after a backlog overflow failed; retrying at the next re-check',
      );
    });
  }

  /**
   * Notes a blind spot from `since`. During a reconciliation it is kept apart: the running one
   * took its start before, and ending it must not close this one too.
   */
  #openBlind(since: number, reason: string): void {
    if (this.#reconciling !== undefined) {
      this.#blindAgain = { since: Math.min(this.#blindAgain?.since ?? since, since), reason };
      return;
    }
    this.#blindSince = Math.min(this.#blindSince ?? since, since);
    this.#blindReason = reason;
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
    // A node that stopped answering (failed, SIGSTOPped) may never answer, or answer much later:
    // what still waits is applied now with its expiry unknown, so that once close() resolves
    // nothing of this node reaches the inventory any more (a removed master is retired then).
    // ioredis 6 never settles a command queued while it reconnects if disconnect() comes then.
    this.#lookupsAbandoned = true;
    this.#escapeLookup?.();
    this.#o.commands.disconnect();
    await this.idle();
    this.#ended = true;
  }

  /** This node's Redis clock now (ms), from the last TIME offset. */
  redisNow(): number {
    return this.#o.now() + this.#events.offsetMs;
  }

  /** When the last successful reconciliation started (0: never). */
  get lastReconcileStart(): number {
    return this.#lastReconcileStart;
  }

  get reconciling(): boolean {
    return this.#reconciling !== undefined;
  }

  #onDown(reason: string): void {
    // Whatever the state: notifications published while the connection is down are lost, so the
    // stream no longer joins up with the positions counted so far.
    this.#o.streamPositions?.reset();
    if (this.#closed) return;
    if (this.#subscribed) {
      this.#subscribed = false;
      this.#openBlind(this.#o.now(), reason);
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
        this.#flags,
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
      this.#events.offsetMs = await clockOffset(this.#o.commands, this.#o.now);
      if (this.#restoring && !this.#restoreShifted) {
        this.#o.inventory.shiftDue(this.#o.nodeIndex, this.#events.offsetMs);
        this.#restoreShifted = true;
      }
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
      if (this.#closed) return; // closed meanwhile (a master that left the topology)
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
    // A SCAN taken while not subscribed misses what is written between the SCAN and the
    // subscription: the blind spot stays open and #onReady reconciles after subscribing.
    if (!this.#subscribed) return Promise.resolve();
    // Not while what was received before an overflow's drop is still being applied: a SCAN begun
    // now would take that chunk's tokens for changes made during it (#overflow). It begins
    // right after (#afterOverflow), for every blind spot open by then.
    if (this.#overflowDone) return this.#overflowDone.promise.then(() => this.#reconcile());
    this.#reconciling ??= this.#reconcileAll();
    return this.#reconciling;
  }

  /**
   * Reconciles, then again for a blind spot that opened meanwhile (e.g. the subscriber dropped
   * mid-SCAN): its own gap, from when it opened. Not subscribed (any more): #onReady does it.
   * #reconciling ends in the same step as the last look at #blindAgain, so no blind spot can be
   * noted in between and left there.
   */
  async #reconcileAll(): Promise<void> {
    try {
      for (;;) {
        await this.#doReconcile();
        const again = this.#blindAgain;
        this.#blindAgain = undefined;
        if (!again) return;
        this.#blindSince = again.since;
        this.#blindReason = again.reason;
        if (!this.#subscribed || this.#closed) return;
      }
    } catch (err) {
      // The failed pass leaves its blind spot open; the one that opened meanwhile joins it.
      const again = this.#blindAgain;
      this.#blindAgain = undefined;
      if (again) this.#blindSince = Math.min(this.#blindSince ?? again.since, again.since);
      throw err;
    } finally {
      this.#reconciling = undefined;
    }
  }

  async #doReconcile(): Promise<void> {
    const o = this.#o;
    if (this.#baselined && this.#blindSince === undefined) return;
    const start = this.#blindSince ?? o.now();
    const reason = this.#blindReason;
    const scanStarted = o.now();
    const mode = !this.#baselined ? 'baseline' : this.#restoring ? 'restore' : 'gap';
    const r = await reconcileNode(
      { ...o, events: this.#events, idle: () => this.idle(), closed: () => this.#closed },
      mode,
    );
    o.onScanned?.(r.scan.scanned);
    this.#restoring = false;
    this.#lastReconcileStart = scanStarted;
    this.#blindSince = undefined;
    const scan = { scanned: r.scan.scanned, durationMs: Math.round(r.scan.durationMs) };
    if (mode === 'baseline') {
      this.#baselined = true;
      o.sink.baseline({
        node: this.label,
        at: r.end,
        ...baselineCounts(r.scan.snapshot, r.end + this.#events.offsetMs),
        present: r.present,
        unmatched: r.scan.unmatched,
        ...scan,
      });
      return;
    }
    o.sink.gap({
      node: this.label,
      start,
      end: r.end,
      reason,
      changes: r.changes,
      ...scan,
      offsetMs: this.#events.offsetMs,
      present: mode === 'restore' ? r.present : undefined,
    });
  }

  async #recheck(): Promise<void> {
    if (this.#closed || this.#o.commands.status !== 'ready') return;
    const before = this.#notifications;
    try {
      const status = await ensureNotifications(
        this.#o.commands,
        this.#o.configureNotifications,
        this.#flags,
      );
      this.#notifications = status;
      this.#events.offsetMs = await clockOffset(this.#o.commands, this.#o.now);
      const flagsWereWiped = status.added !== '' || !status.enabled;
      if (flagsWereWiped && (before?.enabled ?? false)) {
        // Events published while the flags were off are lost: that was a blind spot.
        this.#o.logger.warn(
          { node: this.label, added: status.added, problem: status.problem },
          'keyspace notification flags were removed on the server',
        );
        this.#openBlind(this.#o.now() - this.#o.recheckIntervalMs, 'notifications_disabled');
      }
      if (status.enabled && this.#blindSince !== undefined && this.#subscribed)
        await this.#reconcile();
    } catch (err) {
      if (this.#closed) return; // the connection closed under a re-check in flight: shutting down
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

  get #flags(): string {
    return REQUIRED_FLAGS + (this.#o.keyMisses?.flags ?? '');
  }

  #emitStatus(): void {
    this.#o.sink.status({
      node: this.label,
      subscribed: this.#subscribed,
      notifications: this.#notifications,
    });
  }

  /** The batch's expiries, unless close() gives up on them (then unknown, NaN). */
  async #lookup(prepared: Prepared[], flight: InFlightKeys): Promise<void> {
    if (this.#lookupsAbandoned) return this.#events.unknownExpiries(prepared);
    const escape = new Promise<void>((resolve) => (this.#escapeLookup = resolve));
    try {
      await this.#events.lookup(
        prepared,
        () => this.#queue,
        escape,
        () => flight.ownExpireOf(),
      );
    } finally {
      this.#escapeLookup = undefined;
    }
  }

  #kick(): void {
    this.#processing = true;
    setImmediate(() => void this.#process());
  }

  async #process(): Promise<void> {
    try {
      for (;;) {
        this.#afterOverflow();
        if (this.#queue.length === 0) break;
        // Bounded chunks keep the event loop reading the subscriber socket between them: a
        // subscriber that stops reading is cut off by Redis (client-output-buffer-limit pubsub).
        // What waits behind them stays compact in the queue (notification-queue.ts), also while
        // the ledger's queue is full enough (WatcherSink.room): the socket is read meanwhile.
        // Closing ends the wait: what arrived is applied, as close() says. After a wait the loop
        // starts again: an overflow may have dropped the queue meanwhile, and what arrived after
        // the drop must not be applied before #afterOverflow.
        const room = this.#o.sink.room?.(this.label, () => this.#closed);
        if (room) {
          await room;
          continue;
        }
        const items = this.#queue.take(MAX_CHUNK);
        const prepared = this.#events.classify(items);
        // The last notification taken, when it is a token's: its own expire may follow.
        const last = prepared.at(-1);
        const flight = new InFlightKeys(prepared, last === items.at(-1) ? last : undefined);
        this.#inFlight = flight;
        try {
          await this.#lookup(prepared, flight);
        } finally {
          this.#inFlight = undefined;
        }
        // Dropped while the look-up ran: a reply may show what a dropped notification did to its
        // key (Redis ran the look-up after it), which discardSuperseded can no longer see.
        if (flight.hit.size > 0) discardDropped(prepared, flight.hit);
        this.#events.markExpiryFlush(prepared);
        this.#events.applyBatch(prepared);
      }
    } catch (err) {
      this.#o.logger.error(
        { node: this.label, err: (err as Error).message },
        'keyspace batch failed',
      );
    } finally {
      this.#processing = false;
      // A chunk that failed: the hole still comes after it.
      this.#afterOverflow();
      const waiters = this.#idle;
      this.#idle = [];
      for (const w of waiters) w();
    }
  }
}
