import { Redis, type RedisOptions } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Fingerprinter } from './audit/fingerprint.js';
import { resolveHmacKeys } from './audit/hmac-keys.js';
import { Ledger } from './audit/ledger.js';
import type { Config } from './config/schema.js';
import { buildHttp } from './http/server.js';
import { Inventory } from './keyspace/inventory.js';
import { NodeWatcher } from './keyspace/node-watcher.js';
import { KeyspaceRecorder } from './keyspace/recorder.js';
import { TokenRules } from './keyspace/token-rules.js';
import { auditTypeLabel, createMetrics, type Metrics } from './metrics/registry.js';
import { nodeLabel, redactUrl } from './redis-url.js';
import { VERSION } from './version.js';

export interface AppOptions {
  config: Readonly<Config>;
  logger: Logger;
  now?: () => number;
  /** Process metrics on /metrics (off in tests that build many apps). */
  defaultMetrics?: boolean;
}

/**
 * Builds tokenwatch from its parts: no env, no signals, no listening until start().
 * Whoever opens a connection closes it: stop() is idempotent and flushes the audit batch.
 */
export class TokenwatchApp {
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly now: () => number;
  readonly fingerprinter: Fingerprinter;
  readonly ledger: Ledger;
  readonly metrics: Metrics;
  readonly inventory: Inventory;
  readonly rules: TokenRules;
  readonly recorder: KeyspaceRecorder;
  readonly watchers: NodeWatcher[] = [];
  readonly http: FastifyInstance;
  #started = false;
  #stopped = false;

  constructor(options: AppOptions) {
    const { config, logger } = options;
    this.config = config;
    this.logger = logger;
    this.now = options.now ?? Date.now;
    const { keys, generated } = resolveHmacKeys(config.audit.hmacKeys, config.audit.path);
    if (generated)
      logger.warn(
        { path: generated },
        'generated an HMAC key for fingerprints beside the database; production wants audit.hmacKeys from a secret store',
      );
    this.fingerprinter = new Fingerprinter(keys);
    this.rules = new TokenRules(config.tokens, this.fingerprinter);
    this.inventory = new Inventory(this.rules.kinds);
    this.metrics = createMetrics(this.rules.kinds, {
      defaultMetrics: options.defaultMetrics ?? true,
      liveTokens: () => this.inventory.sizes(),
    });
    const m = this.metrics;
    this.ledger = new Ledger({
      path: config.audit.path,
      batchSize: config.audit.batchSize,
      flushIntervalMs: config.audit.flushIntervalMs,
      maxPending: config.audit.maxPending,
      hmacKeyIds: keys.map((k) => k.id),
      now: this.now,
      logger,
      onCommit: (batch) => {
        const t = this.now();
        for (const c of batch) {
          m.auditRecords.inc({ type: auditTypeLabel(c.input.type) });
          if (c.input.source === 'redis' && c.input.type.startsWith('token.')) {
            m.eventToAudit.observe(Math.max(0, t - c.input.time) / 1000);
          }
        }
        const last = batch.at(-1);
        if (last) m.auditLastSeq.set(last.seq);
      },
      onDegradedChange: (degraded) => m.auditDegraded.set(degraded ? 1 : 0),
      onDropped: (n) => {
        m.auditDropped.inc(n);
      },
    });
    this.recorder = new KeyspaceRecorder(this.ledger, m, config.redis.db);
    this.http = buildHttp(
      {
        notReadyReasons: () => this.notReadyReasons(),
        metricsText: async () => {
          const s = this.ledger.state();
          m.auditPending.set(s.pending);
          return m.registry.metrics();
        },
        metricsContentType: m.registry.contentType,
      },
      { bodyLimit: config.server.bodyLimit, logger },
    );
  }

  /** Why /readyz answers 503; empty when ready. */
  notReadyReasons(): string[] {
    const reasons: string[] = [];
    if (this.watchers.length === 0) reasons.push('not started');
    for (const w of this.watchers) {
      if (!w.subscribed) reasons.push(`redis ${w.label}: keyspace subscriber not connected`);
      else if (!w.baselined) reasons.push(`redis ${w.label}: baseline SCAN in progress`);
      if (w.notifications && !w.notifications.enabled)
        reasons.push(`redis ${w.label}: ${w.notifications.problem ?? 'notifications disabled'}`);
    }
    if (this.ledger.degraded)
      reasons.push(`audit ledger cannot write: ${this.ledger.state().degradedReason ?? 'unknown'}`);
    return reasons;
  }

  /** Opens Redis connections and starts watching; does not listen on HTTP (see listen()). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const c = this.config;
    const prev = this.ledger.list({ afterSeq: Math.max(0, this.ledger.lastSeq - 1) })[0];
    const started = this.now();
    this.ledger.append({
      time: started,
      source: 'system',
      type: 'system.started',
      attrs: {
        version: VERSION,
        pid: process.pid,
        redis: redactUrl(c.redis.url),
        db: c.redis.db,
        kinds: this.rules.kinds,
        previous:
          prev && prev.type !== 'ledger.genesis'
            ? {
                lastSeq: prev.seq,
                lastTime: prev.time,
                cleanShutdown: prev.type === 'system.stopped',
              }
            : null,
      },
    });
    if (prev && prev.type !== 'ledger.genesis') {
      // While tokenwatch was down nothing was observed: that window is a blind spot.
      this.recorder.gap({
        node: nodeLabel(c.redis.url),
        start: prev.time,
        end: started,
        reason: prev.type === 'system.stopped' ? 'tokenwatch_stopped' : 'tokenwatch_crashed',
        changes: [],
        scanned: 0,
        durationMs: 0,
      });
    }
    const label = nodeLabel(c.redis.url);
    this.logger.info({ redis: redactUrl(c.redis.url), db: c.redis.db }, 'connecting to redis');
    const base: RedisOptions = {
      lazyConnect: true,
      db: c.redis.db,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5000),
    };
    const subscriber = new Redis(c.redis.url, {
      ...base,
      autoResubscribe: false,
      maxRetriesPerRequest: null,
      connectionName: 'tokenwatch-keyspace',
    });
    const commands = new Redis(c.redis.url, {
      ...base,
      maxRetriesPerRequest: 1,
      connectionName: 'tokenwatch-commands',
    });
    const watcher = new NodeWatcher({
      nodeIndex: 0,
      label,
      db: c.redis.db,
      subscriber,
      commands,
      rules: this.rules,
      inventory: this.inventory,
      sink: this.recorder,
      maxKeyBytes: c.redis.maxKeyBytes,
      scanCount: c.redis.scanCount,
      configureNotifications: c.redis.configureNotifications,
      recheckIntervalMs: c.redis.recheckIntervalSeconds * 1000,
      infoIntervalMs: c.redis.infoIntervalSeconds * 1000,
      now: this.now,
      logger: this.logger,
    });
    this.metrics.redisUp.set({ node: label }, 0);
    this.metrics.notificationsEnabled.set({ node: label }, 0);
    this.metrics.keyspaceGaps.inc({ node: label }, 0);
    this.metrics.keyspaceGapSeconds.inc({ node: label }, 0);
    this.metrics.redisHits.inc({ node: label }, 0);
    this.metrics.redisMisses.inc({ node: label }, 0);
    this.watchers.push(watcher);
    watcher.start();
  }

  async listen(): Promise<string> {
    return this.http.listen({ host: this.config.server.host, port: this.config.server.port });
  }

  /** Resolves when every watcher is subscribed and baselined (tests, CLI). */
  async whenReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.notReadyReasons().length > 0) {
      if (Date.now() > deadline) throw new Error(`not ready: ${this.notReadyReasons().join('; ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Every notification received so far is applied and queued for audit. */
  async settle(): Promise<void> {
    for (const w of this.watchers) await w.settled();
  }

  /** Drain, write system.stopped as the last record, close everything. Idempotent. */
  async stop(reason = 'shutdown'): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const w of this.watchers) await w.close();
    await this.http.close();
    this.ledger.append({
      time: this.now(),
      source: 'system',
      type: 'system.stopped',
      attrs: { reason },
    });
    this.ledger.close();
  }
}
