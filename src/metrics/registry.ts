import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { TOKEN_EVENT_TYPES } from '../domain/token-event.js';
import { HotHistogram } from './hot-histogram.js';
import { PendingCounts } from './pending-counts.js';

/**
 * Every tokenwatch metric, on its own Registry (no prom-client global state). Labels are
 * bounded: kinds come from config, events and ends are fixed sets, node labels come from the
 * configured/discovered Redis nodes. Never a key, token, subject or other unbounded value.
 */
export interface Metrics {
  registry: Registry;
  tokenEvents: Counter<'kind' | 'event'>;
  /** The keyspace recorder's increments of tokenEvents, added to it when it is read. */
  tokenEventCounts: PendingCounts<'kind' | 'event'>;
  tokensLive: Gauge<'kind'>;
  tokensPastDue: Gauge<'kind'>;
  expiryBacklog: Counter<'kind'>;
  tokenTtl: HotHistogram<'kind'>;
  tokenLifetime: HotHistogram<'kind' | 'end'>;
  expiryLag: HotHistogram<'kind'>;
  keysUnmatched: Counter;
  keyspaceGaps: Counter<'node'>;
  fastPathFallbacks: Counter<'node' | 'reason'>;
  notificationsDropped: Counter<'node'>;
  keyspaceGapSeconds: Counter<'node'>;
  reconcileChanges: Counter<'kind' | 'change'>;
  redisUp: Gauge<'node'>;
  notificationsEnabled: Gauge<'node'>;
  redisHits: Counter<'node'>;
  redisMisses: Counter<'node'>;
  auditRecords: Counter<'type'>;
  auditDegraded: Gauge;
  auditDropped: Counter;
  auditEncodeMismatches: Counter;
  auditPending: Gauge;
  notificationsWaiting: Gauge<'node'>;
  heapGrowthLifted: Gauge;
  auditLastSeq: Gauge;
  eventToAudit: HotHistogram;
}

const TTL_BUCKETS = [
  1,
  10,
  30,
  60,
  300,
  900,
  1800,
  3600,
  4 * 3600,
  12 * 3600,
  86400,
  7 * 86400,
  30 * 86400,
  90 * 86400,
];
const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300];
const AUDIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Lifetime ends that are observed as histograms. */
export const LIFETIME_ENDS = ['expired', 'deleted', 'evicted'] as const;

/** Audit record types that exist from the start (pre-initialised to 0). */
const KNOWN_AUDIT_TYPES = [
  'token.written',
  'token.ttl_changed',
  'token.persisted',
  'token.expired',
  'token.deleted',
  'token.evicted',
  'token.renamed',
  'token.appeared',
  'token.vanished',
  'token.present',
  'keyspace.baseline',
  'keyspace.gap',
  'keyspace.flush',
  'system.started',
  'config.policy',
  'system.stopped',
  'audit.degraded',
];

export interface MetricsOptions {
  /** Process metrics (CPU, memory, event loop) under tokenwatch_process_*. Default true. */
  defaultMetrics?: boolean;
  /**
   * Read at scrape time, per kind: `live` tokens (due in the future, no TTL, or expiry unknown)
   * and `pastDue` ones (due passed, not yet deleted by Redis).
   */
  liveTokens?: () => Record<string, { live: number; pastDue: number }>;
  /** Read at scrape time: each node's keyspace notifications received and not yet applied. */
  notificationsWaiting?: () => Iterable<readonly [node: string, waiting: number]>;
}

export function createMetrics(kinds: readonly string[], options: MetricsOptions = {}): Metrics {
  const liveTokens = options.liveTokens;
  const notificationsWaiting = options.notificationsWaiting;
  // One inventory pass per scrape serves both gauges: live's collect() reads it, past-due's
  // collect() (registered right after, collected right after) reuses it.
  let lastCounts: { at: number; counts: Record<string, { live: number; pastDue: number }> } = {
    at: 0,
    counts: {},
  };
  const registry = new Registry();
  const tokenEventCounts = new PendingCounts<'kind' | 'event'>(['kind', 'event']);
  if (options.defaultMetrics ?? true)
    collectDefaultMetrics({ register: registry, prefix: 'tokenwatch_process_' });
  const m: Metrics = {
    registry,
    tokenEvents: new Counter({
      name: 'tokenwatch_token_events_total',
      help: 'Token lifecycle events observed in Redis, by token kind and event.',
      labelNames: ['kind', 'event'],
      registers: [registry],
      collect() {
        tokenEventCounts.flushInto(this);
      },
    }),
    tokenEventCounts,
    tokensLive: new Gauge({
      name: 'tokenwatch_tokens_live',
      help: 'Valid tokens in Redis according to the inventory, by kind: due time in the future, no TTL, or expiry unknown (past-due keys Redis has not deleted yet are tokenwatch_tokens_past_due).',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        if (!liveTokens) return;
        lastCounts = { at: Date.now(), counts: liveTokens() };
        for (const [kind, n] of Object.entries(lastCounts.counts)) this.set({ kind }, n.live);
      },
    }),
    tokensPastDue: new Gauge({
      name: 'tokenwatch_tokens_past_due',
      help: 'Tokens whose due time passed but that Redis has not deleted yet (it expires keys lazily), by kind.',
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        if (!liveTokens) return;
        const fresh = Date.now() - lastCounts.at < 1000;
        const counts = fresh ? lastCounts.counts : liveTokens();
        lastCounts.at = 0;
        for (const [kind, n] of Object.entries(counts)) this.set({ kind }, n.pastDue);
      },
    }),
    expiryBacklog: new Counter({
      name: 'tokenwatch_expiry_backlog_total',
      help: 'Expirations noticed more than redis.expiryBacklogToleranceSeconds after their due time (Redis deleting long-expired keys lazily, e.g. after a SCAN), by kind; counted apart from churn.',
      labelNames: ['kind'],
      registers: [registry],
    }),
    tokenTtl: new HotHistogram({
      name: 'tokenwatch_token_ttl_seconds',
      help: 'TTL of tokens at write time, by kind (tokens written without TTL are not observed here; see token_events_total{event="written"} and findings).',
      labelNames: ['kind'],
      buckets: TTL_BUCKETS,
      registers: [registry],
    }),
    tokenLifetime: new HotHistogram({
      name: 'tokenwatch_token_lifetime_seconds',
      help: 'Observed lifetime of tokens from write to end, by kind and how they ended.',
      labelNames: ['kind', 'end'],
      buckets: TTL_BUCKETS,
      registers: [registry],
    }),
    expiryLag: new HotHistogram({
      name: 'tokenwatch_expiry_lag_seconds',
      help: 'Time between a token expiry due time and the expired notification, by kind.',
      labelNames: ['kind'],
      buckets: LAG_BUCKETS,
      registers: [registry],
    }),
    keysUnmatched: new Counter({
      name: 'tokenwatch_keys_unmatched_total',
      help: 'Keyspace notifications for keys that matched no token rule (or exceeded redis.maxKeyBytes).',
      registers: [registry],
    }),
    keyspaceGaps: new Counter({
      name: 'tokenwatch_keyspace_gaps_total',
      help: 'Blind spots: times the keyspace subscriber was disconnected or events were dropped, by node.',
      labelNames: ['node'],
      registers: [registry],
    }),
    fastPathFallbacks: new Counter({
      name: 'tokenwatch_keyspace_fast_path_fallbacks_total',
      help: "Keyspace subscriber connections whose messages went back to ioredis' decoder (unsupported_frame, pending_limit, decoder_not_found) or that were ended by a fault of the fast path's own reading (read_fault), by node and reason.",
      labelNames: ['node', 'reason'],
      registers: [registry],
    }),
    notificationsDropped: new Counter({
      name: 'tokenwatch_keyspace_notifications_dropped_total',
      help: "Keyspace notifications received but dropped because the node's backlog reached redis.maxPendingNotifications (each drop opens a blind spot, reconciled by SCAN), by node.",
      labelNames: ['node'],
      registers: [registry],
    }),
    keyspaceGapSeconds: new Counter({
      name: 'tokenwatch_keyspace_gap_seconds_total',
      help: 'Total duration of keyspace blind spots, by node.',
      labelNames: ['node'],
      registers: [registry],
    }),
    reconcileChanges: new Counter({
      name: 'tokenwatch_reconcile_changes_total',
      help: 'Differences found by SCAN reconciliation after blind spots, by kind and change.',
      labelNames: ['kind', 'change'],
      registers: [registry],
    }),
    redisUp: new Gauge({
      name: 'tokenwatch_redis_up',
      help: '1 when the Redis node answers and its keyspace subscriber is connected.',
      labelNames: ['node'],
      registers: [registry],
    }),
    notificationsEnabled: new Gauge({
      name: 'tokenwatch_keyspace_notifications_enabled',
      help: '1 when notify-keyspace-events on the node holds every flag tokenwatch needs.',
      labelNames: ['node'],
      registers: [registry],
    }),
    redisHits: new Counter({
      name: 'tokenwatch_redis_keyspace_hits_total',
      help: 'keyspace_hits from INFO stats, by node (all keys, not only tokens).',
      labelNames: ['node'],
      registers: [registry],
    }),
    redisMisses: new Counter({
      name: 'tokenwatch_redis_keyspace_misses_total',
      help: 'keyspace_misses from INFO stats, by node (all keys, not only tokens).',
      labelNames: ['node'],
      registers: [registry],
    }),
    auditRecords: new Counter({
      name: 'tokenwatch_audit_records_total',
      help: 'Records committed to the audit ledger, by record type.',
      labelNames: ['type'],
      registers: [registry],
    }),
    auditDegraded: new Gauge({
      name: 'tokenwatch_audit_degraded',
      help: '1 while the audit ledger cannot write (fail-closed state).',
      registers: [registry],
    }),
    auditDropped: new Counter({
      name: 'tokenwatch_audit_dropped_records_total',
      help: 'Records dropped because the ledger could not write and the pending queue was full (each drop is covered by a keyspace.gap).',
      registers: [registry],
    }),
    auditEncodeMismatches: new Counter({
      name: 'tokenwatch_audit_encoding_check_failures_total',
      help: 'Records whose sampled decode check of the compact storage encoding failed (a tokenwatch bug; the records since the last passed check may not verify).',
      registers: [registry],
    }),
    auditPending: new Gauge({
      name: 'tokenwatch_audit_pending_records',
      help: 'Records queued for the next audit batch.',
      registers: [registry],
    }),
    notificationsWaiting: new Gauge({
      name: 'tokenwatch_keyspace_notifications_waiting',
      help: "Keyspace notifications received and not yet applied, by node: a backlog, held there while the audit ledger's queue is over audit.maxPending / 20 records (at most redis.maxPendingNotifications).",
      labelNames: ['node'],
      registers: [registry],
      collect() {
        if (!notificationsWaiting) return;
        this.reset(); // a node that left the topology is not shown waiting
        for (const [node, n] of notificationsWaiting()) this.set({ node }, n);
      },
    }),
    heapGrowthLifted: new Gauge({
      name: 'tokenwatch_heap_growth_lifted',
      help: '1 while a backlog has lifted the V8 heap growth bound until it drains (runtime.heapGrowthLiftAbove), else 0.',
      registers: [registry],
    }),
    auditLastSeq: new Gauge({
      name: 'tokenwatch_audit_last_seq',
      help: 'Sequence number of the last committed audit record.',
      registers: [registry],
    }),
    eventToAudit: new HotHistogram({
      name: 'tokenwatch_event_to_audit_seconds',
      help: 'Time from receiving a keyspace notification to its audit record being committed.',
      buckets: AUDIT_BUCKETS,
      registers: [registry],
    }),
  };
  for (const kind of kinds) {
    for (const event of TOKEN_EVENT_TYPES) m.tokenEvents.inc({ kind, event }, 0);
    m.tokensLive.set({ kind }, 0);
    m.tokensPastDue.set({ kind }, 0);
    m.expiryBacklog.inc({ kind }, 0);
    // Histogram series exist from the start too: rules subtract _count series per kind and
    // rate() needs the series before the first observation.
    m.tokenTtl.zero({ kind });
    m.expiryLag.zero({ kind });
    for (const end of LIFETIME_ENDS) m.tokenLifetime.zero({ kind, end });
    for (const change of ['appeared', 'vanished', 'ttl_changed'])
      m.reconcileChanges.inc({ kind, change }, 0);
  }
  for (const type of KNOWN_AUDIT_TYPES) m.auditRecords.inc({ type }, 0);
  m.keysUnmatched.inc(0);
  m.auditDegraded.set(0);
  m.auditDropped.inc(0);
  m.auditEncodeMismatches.inc(0);
  return m;
}

/** Only record types from a fixed vocabulary become label values; anything else is `other`. */
export function auditTypeLabel(type: string): string {
  return /^[a-z_]+\.[a-z_]+$/.test(type) && type.length <= 48 ? type : 'other';
}
