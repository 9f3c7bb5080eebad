import type { Ledger } from '../audit/ledger.js';
import { tokenInput } from '../audit/token-record.js';
import { TOKEN_EVENT_TYPES, type TokenEvent, type TokenEventType } from '../domain/token-event.js';
import type { Metrics } from '../metrics/registry.js';
import type { BaselineReport, GapReport, NodeStatus, WatcherSink } from './node-watcher.js';
import { FALLBACK_REASON_CODES, type FallbackReason } from './pmessage-fast-path.js';

/** Longest a watcher waits for room in the ledger's queue (WatcherSink.room) before it gives up. */
export const ROOM_WAIT_MAX_MS = 10_000;

/** `token.<type>`, the record type of each token event, made once (not a string per event). */
const RECORD_TYPES = Object.fromEntries(TOKEN_EVENT_TYPES.map((t) => [t, `token.${t}`])) as Record<
  TokenEventType,
  string
>;

/**
 * Turns what the node watchers observe into audit records and metrics. Each record carries its
 * TokenEvent in memory, so commit listeners (the correlator) get it with its seq. The hot path:
 * one object, one counter increment and one queued ledger append per event.
 */
export class KeyspaceRecorder implements WatcherSink {
  readonly #ledger: Ledger;
  readonly #metrics: Metrics;
  readonly #db: number;
  /** Queued records above which drain() waits (a quarter of the ledger's bounded queue). */
  #drainAbove = 50_000;
  /** Queued records above which room() waits (a twentieth of the ledger's bounded queue). */
  #roomAbove = 10_000;
  /** A wait for room outlasted ROOM_WAIT_MAX_MS: no more waits until the queue is under the bound. */
  #roomGaveUp = false;

  constructor(ledger: Ledger, metrics: Metrics, db: number) {
    this.#ledger = ledger;
    this.#metrics = metrics;
    this.#db = db;
  }

  /**
   * The ledger's `maxPending`: drain() keeps the queue under a quarter of it, room() under a
   * twentieth (plus the chunk a watcher applies after it, at most 5 000 notifications).
   */
  setQueueLimit(maxPending: number): void {
    this.#drainAbove = Math.max(100, Math.floor(maxPending / 4));
    this.#roomAbove = Math.max(100, Math.floor(maxPending / 20));
  }

  /** The queue limit room() waits under (for tests and the docs' figures). */
  get roomAbove(): number {
    return this.#roomAbove;
  }

  /**
   * Waits while the ledger holds more than a quarter of its queue: the baseline's
   * `token.present` records then never make it drop records (nor starve live events of room).
   */
  async drain(): Promise<void> {
    while (this.#over(this.#drainAbove)) await pause(5);
  }

  /**
   * WatcherSink.room: undefined while the ledger holds at most #roomAbove records (or cannot
   * write: a degraded or closed ledger, where waiting would only move the backlog); else polls
   * every 2 ms until it does, or `stop()`, for at most ROOM_WAIT_MAX_MS. Each watcher applies a
   * chunk (up to 5 000 notifications) after its wait, so N nodes may add up to N chunks past
   * the bound. A drain of 300 000 SET EX: the event loop's largest heap ~250 -> ~190 MB,
   * records/s within the machine's noise.
   */
  room(_node: string, stop: () => boolean): Promise<void> | undefined {
    if (!this.#over(this.#roomAbove)) {
      this.#roomGaveUp = false;
      return undefined;
    }
    if (this.#roomGaveUp || stop()) return undefined;
    return (async () => {
      const until = performance.now() + ROOM_WAIT_MAX_MS;
      while (this.#over(this.#roomAbove) && !stop()) {
        if (performance.now() > until) {
          // A writer that neither commits nor fails (a hung disk): waiting on would stop the
          // inventory and the overflow's reconciliation too. The ledger's own bound applies
          // until its queue is back under the limit.
          this.#roomGaveUp = true;
          return;
        }
        await pause(2);
      }
    })();
  }

  /**
   * More than `limit` records wait to commit in a ledger that can write them (drain() and room()
   * wait on it; waiting on a degraded or closed ledger would only move its backlog).
   */
  #over(limit: number): boolean {
    const l = this.#ledger;
    return !l.closed && !l.degraded && l.state().pending > limit;
  }

  /**
   * `owner`: with several instances (docs/ha.md), the fencing epoch under which the owner
   * records and the event's stream position (`e.n.k.i`, when known).
   */
  token(ev: TokenEvent, owner?: { epoch: number; pos?: string }): void {
    const m = this.#metrics;
    m.tokenEventCounts.add({ kind: ev.kind, event: ev.type });
    if (ev.type === 'written' && typeof ev.ttlMs === 'number')
      m.tokenTtl.observe({ kind: ev.kind }, ev.ttlMs / 1000);
    if (
      ev.lifetimeMs !== undefined &&
      (ev.type === 'expired' || ev.type === 'deleted' || ev.type === 'evicted')
    ) {
      m.tokenLifetime.observe({ kind: ev.kind, end: ev.type }, ev.lifetimeMs / 1000);
    }
    if (ev.expiryLagMs !== undefined)
      m.expiryLag.observe({ kind: ev.kind }, Math.max(0, ev.expiryLagMs) / 1000);
    if (ev.backlog) m.expiryBacklog.inc({ kind: ev.kind });
    // The token record's fields (token-record.ts): a batch of them goes to the writer thread as
    // columns, the writer making the same record of them (recorder-plain.test.ts).
    this.#ledger.appendToken(
      tokenInput({
        time: ev.observedAt,
        type: RECORD_TYPES[ev.type],
        kind: ev.kind,
        fingerprint: ev.fingerprint,
        backlog: ev.backlog,
        db: ev.db,
        dueAt: ev.dueAt,
        epoch: owner?.epoch,
        expiryLagMs: ev.expiryLagMs,
        key: ev.keyAttrs,
        lifetimeMs: ev.lifetimeMs,
        node: ev.node,
        pos: owner?.pos,
        redisEvent: ev.redisEvent,
        renamedFrom: ev.renamedFrom,
        rewrite: ev.rewrite,
        ttlMs: ev.ttlMs,
        ttlUnknown: ev.type === 'written' && ev.dueAt === undefined ? true : undefined,
      }),
      { type: 'token', event: ev },
    );
  }

  unmatched(count: number): void {
    this.#metrics.keysUnmatched.inc(count);
  }

  baseline(r: BaselineReport): void {
    this.#ledger.append({
      time: r.at,
      source: 'redis',
      type: 'keyspace.baseline',
      attrs: {
        node: r.node,
        counts: r.counts,
        noTtl: r.noTtl,
        pastDue: r.pastDue,
        present: r.present,
        scanned: r.scanned,
        unmatched: r.unmatched,
        durationMs: r.durationMs,
      },
    });
  }

  gap(r: GapReport): void {
    const m = this.#metrics;
    const durationMs = Math.max(0, r.end - r.start);
    const summary: Record<string, Record<string, number>> = {
      appeared: {},
      vanished: {},
      ttl_changed: {},
    };
    for (const c of r.changes) {
      const bucket = summary[c.change] as Record<string, number>;
      bucket[c.kind] = (bucket[c.kind] ?? 0) + 1;
      m.reconcileChanges.inc({ kind: c.kind, change: c.change });
    }
    // A flush is seen (INFO commandstats), not a blind spot: a mass invalidation record.
    const flush = r.reason === 'flush';
    if (!flush) {
      m.keyspaceGaps.inc({ node: r.node });
      m.keyspaceGapSeconds.inc({ node: r.node }, durationMs / 1000);
    }
    this.#ledger.append({
      time: r.end,
      source: 'redis',
      type: flush ? 'keyspace.flush' : 'keyspace.gap',
      attrs: {
        node: r.node,
        start: r.start,
        end: r.end,
        durationMs,
        reason: r.reason,
        ...summary,
        present: r.present,
        scanned: r.scanned,
        reconcileMs: r.durationMs,
        unreconciled: r.unreconciled,
      },
    });
    const offset = r.offsetMs ?? 0;
    for (const c of r.changes) {
      const ev: TokenEvent = {
        type: c.change,
        kind: c.kind,
        fingerprint: c.fingerprint,
        keyAttrs: c.keyAttrs ?? {},
        node: r.node,
        db: this.#db,
        observedAt: r.end,
        redisEvent: 'reconcile',
      };
      if (c.change !== 'vanished') {
        // What SCAN read (PEXPIRETIME), so the TTL rules judge tokens written while blind too.
        ev.dueAt = c.due === null ? null : Number.isNaN(c.due) ? undefined : c.due - offset;
        ev.ttlMs = ev.dueAt == null ? ev.dueAt : Math.max(0, ev.dueAt - r.end);
      } else if (c.backlog) {
        ev.backlog = true;
        m.expiryBacklog.inc({ kind: c.kind });
      }
      m.tokenEvents.inc({ kind: ev.kind, event: ev.type });
      this.#ledger.append(
        {
          time: r.end,
          source: 'redis',
          type: RECORD_TYPES[ev.type],
          kind: c.kind,
          fingerprint: c.fingerprint,
          // Keys in canonical (sorted) order, as token() writes them.
          attrs: {
            backlog: ev.backlog,
            dueAt: ev.dueAt,
            gapEnd: r.end,
            gapStart: r.start,
            key: c.keyAttrs,
            node: r.node,
            ttlMs: ev.ttlMs,
            via: 'reconcile',
          },
        },
        { type: 'token', event: ev },
      );
    }
  }

  status(s: NodeStatus): void {
    this.#metrics.redisUp.set({ node: s.node }, s.subscribed ? 1 : 0);
    // Each node's fallback series exist from its first status on: increase() needs a sample
    // before the first fallback, or the first one would never alert.
    for (const reason of FALLBACK_REASON_CODES)
      this.#metrics.fastPathFallbacks.inc({ node: s.node, reason }, 0);
    this.#metrics.notificationsDropped.inc({ node: s.node }, 0);
    if (s.notifications)
      this.#metrics.notificationsEnabled.set({ node: s.node }, s.notifications.enabled ? 1 : 0);
  }

  hitMiss(node: string, hits: number, misses: number): void {
    this.#metrics.redisHits.inc({ node }, hits);
    this.#metrics.redisMisses.inc({ node }, misses);
  }

  fastPathFallback(node: string, reason: FallbackReason): void {
    this.#metrics.fastPathFallbacks.inc({ node, reason });
  }

  notificationsDropped(node: string, count: number): void {
    this.#metrics.notificationsDropped.inc({ node }, count);
  }
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
