import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Fingerprinter } from './audit/fingerprint.js';
import { resolveHmacKeys } from './audit/hmac-keys.js';
import { BackgroundVerifier } from './audit/background-verify.js';
import { Checkpointer } from './audit/checkpointer.js';
import { POLICY_RECORD_TYPE, policyAttrs } from './compliance/policy-record.js';
import { Ledger } from './audit/ledger.js';
import type { Committed } from './audit/record.js';
import { ArchiveJob, defaultArchiveDir } from './audit/archive.js';
import { RetentionJob } from './audit/retention.js';
import { defaultCheckpointLogPath, resolveSigningKey } from './audit/signing-keys.js';
import { checkLedgerAtStart, type StartupCheck } from './audit/startup-check.js';
import type { Config } from './config/schema.js';
import { FindingsService } from './findings/findings-service.js';
import { AdminAuth } from './http/admin-auth.js';
import { registerAdminRoutes } from './http/admin-routes.js';
import { registerFindingsRoute } from './http/findings-route.js';
import { buildHttp } from './http/server.js';
import { Inventory } from './keyspace/inventory.js';
import { CacheHealth } from './keyspace/cache-health.js';
import { IndexReconciler } from './keyspace/index-reconcile.js';
import { IndexRules } from './keyspace/index-rules.js';
import { KeyspaceService } from './keyspace/keyspace-service.js';
import { restoreInventory } from './keyspace/restore.js';
import type { NodeWatcher } from './keyspace/node-watcher.js';
import type { KeyspaceRecorder } from './keyspace/recorder.js';
import { TokenRules } from './keyspace/token-rules.js';
import { registerArchiveMetrics } from './metrics/archive-metrics.js';
import { registerCheckpointMetrics, registerLedgerVerifyMetrics } from './metrics/audit-metrics.js';
import { createCacheHealthMetrics } from './metrics/cache-health-metrics.js';
import { INDEX_RECONCILE_RECORD } from './findings/findings-service.js';
import { commitMetrics } from './metrics/commit-metrics.js';
import { createMetrics, type Metrics } from './metrics/registry.js';
import { createCoordinationMetrics } from './metrics/coordination-metrics.js';
import { Coordinator } from './coordination/coordinator.js';
import { LeaseStore } from './coordination/lease.js';
import { InstanceRegistry } from './coordination/registry.js';
import { RedisConnector } from './keyspace/connections.js';
import { MarkerAuth } from './keyspace/marker-auth.js';
import { OwnershipSink } from './keyspace/ownership-sink.js';
import { createProviderIngest, type ProviderIngest } from './providers/service.js';
import { redactUrl } from './redis-url.js';
import { createAuditLogExport, type AuditLogExport } from './telemetry/audit-log-export.js';
import { Telemetry } from './telemetry/otel.js';
import { TracedKeyspaceRecorder } from './telemetry/traced-recorder.js';
import type { Tracing } from './telemetry/tracing.js';
import { TokenwatchError } from './errors.js';
import { VERSION } from './version.js';
import { BacklogHeapGrowth } from './runtime/backlog-heap-growth.js';
import { MemoryRelease, type ReducingGc } from './runtime/memory-release.js';

/** Token records of the previous run replayed at most; beyond, a restart is a plain baseline. */
const RESTORE_MAX_RECORDS = 2_000_000;

export interface AppOptions {
  config: Readonly<Config>;
  logger: Logger;
  now?: () => number;
  /** Process metrics on /metrics (off in tests that build many apps). */
  defaultMetrics?: boolean;
  /**
   * Start even when the start-up check finds damage, after appending a signed
   * `ledger.discontinuity` record stating it (`serve --accept-discontinuity`).
   */
  acceptDiscontinuity?: boolean;
  /** Verify the whole ledger file on a worker thread after start (default true). */
  backgroundVerify?: boolean;
  /**
   * A memory-reducing GC (src/runtime/memory-release.ts), given by `tokenwatch serve`: with it,
   * large reconciliations are followed by one (`runtime.releaseMemoryAfterScan`).
   */
  reducingGc?: ReducingGc;
  /**
   * Sets a V8 flag (`v8.setFlagsFromString`, process-wide), given by `tokenwatch serve`: with it,
   * a backlog lifts the heap growth bound until it drained (`runtime.heapGrowthLiftAbove`).
   */
  setV8Flag?: (flag: string) => void;
}

/** How often the work waiting is sampled for BacklogHeapGrowth (ms). */
const BACKLOG_SAMPLE_MS = 250;

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
  readonly checkpointer: Checkpointer;
  readonly retention: RetentionJob;
  /** Undefined unless audit.archive.afterDays is set. */
  readonly archive: ArchiveJob | undefined;
  /** What the start-up check found before anything was written or signed. */
  readonly startupCheck: StartupCheck;
  readonly backgroundVerifier: BackgroundVerifier | undefined;
  readonly metrics: Metrics;
  readonly inventory: Inventory;
  readonly rules: TokenRules;
  readonly recorder: KeyspaceRecorder;
  readonly keyspace: KeyspaceService;
  /** Issue #21: misses per kind, read sampling (hit ratio), recently ended tokens. */
  readonly cacheHealth: CacheHealth;
  /** Issue #21: index keys whose members outlive their tokens. */
  readonly indexes: IndexReconciler;
  readonly findings: FindingsService;
  readonly http: FastifyInstance;
  /** Admin API authentication (or loopback-only when `admin` configures none) and accounting. */
  readonly admin: AdminAuth;
  readonly providers: ProviderIngest;
  /** OpenTelemetry export: started in start(), flushed and stopped in stop(). */
  readonly telemetry: Telemetry;
  /** Span helper for the service's parts; a cheap no-op unless OpenTelemetry export is on. */
  readonly tracing: Tracing;
  /** The audit stream as OTLP logs (`otel.logs`); undefined when not configured. */
  readonly auditLogs: AuditLogExport | undefined;
  /** Several instances (`coordination.enabled`): leases, standby, takeover; else undefined. */
  readonly coordinator: Coordinator | undefined;
  #coordinationClient: Redis | Cluster | undefined;
  #ownership: OwnershipSink | undefined;
  #verifiedAt = 0;
  #started = false;
  #stopped = false;
  /** Undefined unless serve handed over a GC and runtime.releaseMemoryAfterScan is set. */
  readonly memoryRelease: MemoryRelease | undefined;
  /** Undefined unless serve handed over setV8Flag and both runtime.heapGrowth* are set. */
  readonly heapGrowth: BacklogHeapGrowth | undefined;
  #backlogTimer: NodeJS.Timeout | undefined;

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
    const signing = resolveSigningKey(config.audit.signingKey, config.audit.path);
    const checkpointLog = config.audit.checkpointLog ?? defaultCheckpointLogPath(config.audit.path);
    if (signing.generated || config.audit.checkpointLog === undefined)
      logger.warn(
        { signingKey: signing.path, checkpointLog },
        'checkpoint signing key and/or checkpoint log beside the database: whoever can write the database can then replace them too, and verify calls such evidence unanchored. Production: audit.signingKey (TOKENWATCH_SIGNING_KEY) from a secret store, created with tokenwatch keygen; audit.checkpointLog (TOKENWATCH_CHECKPOINT_LOG) on write-once or append-only storage the tokenwatch host cannot rewrite',
      );
    this.rules = new TokenRules(config.tokens, this.fingerprinter);
    this.inventory = new Inventory(this.rules.kinds, this.fingerprinter.prefix);
    this.metrics = createMetrics(this.rules.kinds, {
      defaultMetrics: options.defaultMetrics ?? true,
      liveTokens: () => this.keyspace.dueCounts(),
      notificationsWaiting: () => this.keyspace.watchers.map((w) => [w.label, w.waiting] as const),
    });
    const m = this.metrics;
    this.telemetry = new Telemetry({
      config: config.otel,
      registry: m.registry,
      logger,
      now: this.now,
      beforeCollect: () => m.auditPending.set(this.ledger.state().pending),
    });
    this.tracing = this.telemetry.tracing;
    this.ledger = new Ledger({
      path: config.audit.path,
      batchSize: config.audit.batchSize,
      flushIntervalMs: config.audit.maxBatchDelayMs,
      maxPending: config.audit.maxPending,
      writerThread: config.audit.writerThread,
      hmacKeyIds: keys.map((k) => k.id),
      signingKey: signing.key,
      retentionDays: config.audit.retentionDays,
      clockSkewToleranceMs: config.audit.clockSkewToleranceMs,
      now: this.now,
      logger,
      onCommitTimed: (records, startMs, endMs) => {
        if (this.tracing.enabled) {
          this.tracing.record({
            name: 'tokenwatch.audit.commit',
            attrs: { batch_size: records },
            startMs,
            endMs,
          });
        }
      },
      onCommit: commitMetrics(m, this.now),
      onDegradedChange: (degraded) => m.auditDegraded.set(degraded ? 1 : 0),
      onDropped: (n) => {
        m.auditDropped.inc(n);
      },
      onEncodeMismatch: () => m.auditEncodeMismatches.inc(),
    });
    // Before anything is written or signed: the file against the external log and the seals.
    const trustedSelf = [
      { keyId: signing.key.keyId, publicKey: signing.key.publicKey, source: signing.path },
    ];
    try {
      this.startupCheck = checkLedgerAtStart(this.ledger, {
        dbPath: config.audit.path,
        logPath: checkpointLog,
        trusted: trustedSelf,
      });
    } catch (err) {
      this.ledger.close();
      throw err;
    }
    const sc = this.startupCheck;
    for (const w of sc.warnings) logger.warn({ checkpointLog }, w);
    if (sc.finding) {
      const f = sc.finding;
      if (!options.acceptDiscontinuity) {
        this.ledger.close(); // refusing to start: release the file, write nothing
        throw new TokenwatchError(
          'ERR_LEDGER_INTEGRITY',
          `refusing to start: the ledger does not match the checkpoint log and its seals: ${f.class} at seq ${f.seq}: ${f.detail}. Run tokenwatch verify; to start anyway with the break recorded in the ledger for good, run tokenwatch serve --accept-discontinuity`,
        );
      }
      logger.error(
        { class: f.class, seq: f.seq },
        'ledger damaged at start; starting anyway (--accept-discontinuity): a ledger.discontinuity record states it',
      );
    } else {
      logger.info(
        { records: sc.checkedRecords, ms: sc.durationMs, anchor: sc.anchor.source, n: sc.anchor.n },
        'ledger tail verified against the checkpoint log and batch seals',
      );
    }
    try {
      this.checkpointer = new Checkpointer({
        ledger: this.ledger,
        key: signing.key,
        logPath: checkpointLog,
        everyRecords: config.audit.checkpointEveryRecords,
        intervalMs: config.audit.checkpointIntervalSeconds * 1000,
        heartbeatMs: config.audit.checkpointHeartbeatSeconds * 1000,
        retentionDays: config.audit.retentionDays,
        now: this.now,
        logger,
      });
    } catch (err) {
      this.ledger.close(); // refusing to start (rolled-back database): release the file
      throw err;
    }
    registerCheckpointMetrics(m.registry, () => this.checkpointer);
    this.auditLogs = createAuditLogExport({
      config: config.otel,
      auditPath: config.audit.path,
      ledger: this.ledger,
      registry: m.registry,
      logger,
    });
    // Commits only wake the exporter: it reads what committed from the ledger itself.
    if (this.auditLogs) this.onCommitted(() => this.auditLogs?.notify());
    this.backgroundVerifier =
      options.backgroundVerify === false
        ? undefined
        : new BackgroundVerifier({
            ledger: this.ledger,
            dbPath: config.audit.path,
            checkpointLog,
            key: signing.key,
            now: this.now,
            logger,
          });
    registerLedgerVerifyMetrics(m.registry, () => {
      const last = this.backgroundVerifier?.last;
      return {
        startupCheckSeconds: this.startupCheck.durationMs / 1000,
        full: last && {
          problems: last.problemCount,
          at: this.#verifiedAt,
          durationMs: last.durationMs,
        },
      };
    });
    const archiveDir = config.audit.archive.dir ?? defaultArchiveDir(config.audit.path);
    this.retention = new RetentionJob({
      ledger: this.ledger,
      key: signing.key,
      retentionDays: config.audit.retentionDays,
      now: this.now,
      logger,
      // Files written while archiving was on expire even if it is off now.
      archive: { dir: archiveDir },
    });
    const archiveMetrics = registerArchiveMetrics(m.registry);
    this.archive =
      config.audit.archive.afterDays === null
        ? undefined
        : new ArchiveJob({
            ledger: this.ledger,
            key: signing.key,
            afterDays: config.audit.archive.afterDays,
            dir: archiveDir,
            now: this.now,
            logger,
            observer: archiveMetrics,
          });
    this.findings = new FindingsService({
      config,
      ledger: this.ledger,
      registry: m.registry,
      logger,
      now: this.now,
      tracing: this.tracing,
    });
    // Committed token, provider and index events reach the correlator with their seqs.
    this.ledger.committed.subscribe((batch) => this.findings.onCommitted(batch));
    this.recorder = new TracedKeyspaceRecorder(this.ledger, m, config.redis.db, this.tracing);
    this.recorder.setQueueLimit(config.audit.maxPending);
    const indexRules = new IndexRules(config.indexes.rules, config.tokens);
    const cacheMetrics = createCacheHealthMetrics(m.registry, {
      kinds: this.rules.kinds,
      indexes: indexRules.names,
      keyMisses: config.metrics.keyMisses,
      sampling: config.metrics.readSampling !== undefined,
    });
    this.cacheHealth = new CacheHealth({
      config: config.metrics,
      rules: this.rules,
      metrics: cacheMetrics,
      fingerprintPrefix: this.fingerprinter.prefix,
      maxKeyBytes: config.redis.maxKeyBytes,
      revocationTypes: this.findings.correlator.options.revocationEventTypes,
      append: (input) => this.ledger.append(input),
      now: this.now,
      logger,
    });
    const coordination = this.#coordination();
    this.coordinator = coordination?.coordinator;
    const minScanned = config.runtime.releaseMemoryAfterScan;
    this.memoryRelease =
      options.reducingGc && minScanned !== null
        ? new MemoryRelease({
            minScanned,
            gc: options.reducingGc,
            logger,
            others: () => this.ledger.releaseWriterMemory(),
          })
        : undefined;
    const { heapGrowthPercent: percent, heapGrowthLiftAbove: liftAbove } = config.runtime;
    this.heapGrowth =
      options.setV8Flag && percent !== null && liftAbove !== null
        ? new BacklogHeapGrowth({
            percent,
            liftAbove,
            setFlag: options.setV8Flag,
            afterBacklog: () => this.memoryRelease?.schedule(),
            logger,
          })
        : undefined;
    this.keyspace = new KeyspaceService({
      config,
      rules: this.rules,
      inventory: this.inventory,
      recorder: coordination?.sink ?? this.recorder,
      metrics: m,
      logger,
      now: this.now,
      cacheHealth: this.cacheHealth,
      onNodesChanged: coordination && (() => void coordination.coordinator.tick()),
      streamPositions: coordination && ((label) => coordination.sink.trackerFor(label)),
      onScanned: (n) => this.memoryRelease?.afterScan(n),
    });
    this.indexes = new IndexReconciler({
      rules: indexRules,
      tokenRules: this.rules,
      inventory: this.inventory,
      nodes: () =>
        this.keyspace.watchers.map((w) => ({
          label: w.label,
          client: w.commands,
          ready: w.subscribed && w.baselined,
        })),
      metrics: cacheMetrics,
      scanCount: config.redis.scanCount,
      maxKeyBytes: config.redis.maxKeyBytes,
      maxFingerprints: config.indexes.maxFingerprints,
      intervalMs: config.indexes.intervalSeconds * 1000,
      now: this.now,
      logger,
      onReport: (r) => {
        const obs = Object.entries(r.indexes).map(([index, f]) => ({ index, ...f }));
        // The correlator judges it once committed, citing this record's seq as evidence.
        this.ledger.append(
          {
            time: r.at,
            source: 'redis',
            type: INDEX_RECONCILE_RECORD,
            attrs: { durationMs: r.durationMs, indexes: r.indexes, reason: r.reason },
          },
          { type: 'index', observations: obs },
        );
      },
    });
    this.onCommitted((batch) => {
      this.cacheHealth.onCommitted(batch);
      // After every gap the inventory was reconciled: judge the indexes against it again.
      if (batch.some((c) => c.input.type === 'keyspace.gap')) void this.indexes.run('gap');
    });
    this.http = buildHttp(
      {
        notReadyReasons: () => this.notReadyReasons(),
        metricsText: async () => {
          const s = this.ledger.state();
          m.auditPending.set(s.pending);
          return m.registry.metrics();
        },
        metricsContentType: m.registry.contentType,
        readyDetails: () => {
          const c = this.cacheHealth.details();
          const k = this.coordinator && {
            instance: this.coordinator.instanceId,
            instances: this.coordinator.liveInstances,
            nodes: this.coordinator.roles(),
          };
          if (c === undefined && k === undefined) return undefined;
          return { ...(c && { cacheHealth: c }), ...(k && { coordination: k }) };
        },
      },
      {
        bodyLimit: config.server.bodyLimit,
        logger,
        timeouts: {
          requestMs: config.server.timeouts.requestSeconds * 1000,
          headersMs: config.server.timeouts.headersSeconds * 1000,
          keepAliveMs: config.server.timeouts.keepAliveSeconds * 1000,
          idleMs: config.server.timeouts.idleSeconds * 1000,
        },
      },
    );
    this.admin = new AdminAuth({
      config: config.admin,
      ledger: this.ledger,
      registry: m.registry,
      logger,
      now: this.now,
      refusals: {
        perWindow: config.admin?.refusals.perSource ?? 20,
        windowMs: (config.admin?.refusals.windowSeconds ?? 60) * 1000,
        total: config.admin?.refusals.total ?? 200,
      },
      fingerprint: (v) => this.fingerprinter.of(v),
    });
    this.admin.register(this.http);
    registerFindingsRoute(this.http, {
      findings: this.findings,
      ledger: this.ledger,
      guard: this.admin.guard('findings'),
      precheck: this.admin.precheck('findings'),
    });
    registerAdminRoutes(this.http, {
      auth: this.admin,
      dbPath: config.audit.path,
      checkpointLog,
      signingKey: signing.key,
      signingKeyPath: signing.path,
      exportDir: config.admin?.exportDir ?? join(dirname(config.audit.path), 'exports'),
      maxPeriodDays: config.admin?.maxPeriodDays ?? 400,
      seal: () => {
        if (this.ledger.lastSeq > (this.checkpointer.state().last?.seq ?? 0))
          this.checkpointer.checkpoint('interval');
      },
      now: this.now,
      logger,
    });
    this.providers = createProviderIngest({
      tracing: this.tracing,
      config,
      ledger: this.ledger,
      fingerprinter: this.fingerprinter,
      registry: m.registry,
      logger,
      now: this.now,
    });
    this.providers.register(this.http);
  }

  /**
   * `coordination.enabled`: the lease store and registry on the coordination Redis, the
   * coordinator, and the ownership gate the watchers report to instead of the recorder.
   */
  #coordination(): { coordinator: Coordinator; sink: OwnershipSink } | undefined {
    const c = this.config.coordination;
    if (!c.enabled) return undefined;
    const instanceId =
      c.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const renewMs = c.renewEveryMs ?? Math.floor(c.leaseMs / 3);
    const client = new RedisConnector(this.config.redis).forCoordination(c.redis, renewMs);
    client.on('error', (err: Error) => {
      this.logger.warn({ err: err.message }, 'coordination redis connection error');
    });
    this.#coordinationClient = client;
    const leases = new LeaseStore({ client, keyPrefix: c.keyPrefix, instanceId });
    const registry = new InstanceRegistry({
      client,
      keyPrefix: c.keyPrefix,
      instanceId,
      ttlMs: c.leaseMs,
    });
    let coordinator: Coordinator | undefined = undefined;
    const metrics = createCoordinationMetrics(this.metrics.registry, {
      leaseAges: () => coordinator?.leaseAges() ?? new Map(),
    });
    const sink = new OwnershipSink({
      recorder: this.recorder,
      nodes: {
        markBlind: (node, reason, since) => this.keyspace.markNodeBlind(node, reason, since),
        rebaseline: (node) => this.keyspace.rebaselineNode(node),
        settleNode: (node) => this.keyspace.settleNode(node),
        commandsOf: (node) => this.keyspace.commandsOf(node),
        markerTag: (node) => this.keyspace.markerTag(node),
      },
      append: (input) => this.ledger.append(input),
      appendDurable: (inputs) => this.ledger.appendDurable(inputs),
      readCommitted: (node) => leases.readCommitted(node),
      publishCommitted: (node, epoch, pos) => leases.publishCommitted(node, epoch, pos),
      fingerprint: (value) => this.fingerprinter.of(value),
      closed: () => this.ledger.closed,
      keyPrefix: c.keyPrefix,
      markerAuth: new MarkerAuth(this.fingerprinter.keys),
      markerEveryMs: c.markerEveryMs,
      standby: c.standby,
      metrics,
      instanceId,
      ledgerId: this.ledger.ledgerId,
      now: this.now,
      logger: this.logger,
    });
    this.ledger.committed.subscribe((batch) => sink.onCommitted(batch));
    coordinator = new Coordinator({
      config: c,
      leases,
      registry,
      nodes: () => this.keyspace.nodeLabels(),
      assignmentKey: (node) => this.keyspace.assignmentKey(node),
      vacant: () => this.keyspace.vacantAssignmentKeys(),
      readyToJoin: () =>
        this.keyspace.notReadyReasons().length === 0 &&
        sink.positionsKnown(this.keyspace.nodeLabels()),
      hooks: sink,
      metrics,
      logger: this.logger,
      now: this.now,
    });
    sink.attach(coordinator);
    this.#ownership = sink;
    this.logger.info({ instance: instanceId, leaseMs: c.leaseMs }, 'coordination enabled');
    return { coordinator, sink };
  }

  /** Listen to every committed audit batch (benchmarks, embedding). */
  onCommitted(listener: (batch: readonly Committed[]) => void): void {
    this.ledger.committed.subscribe(listener);
  }

  /** Why /readyz answers 503; empty when ready. */
  notReadyReasons(): string[] {
    const reasons = this.keyspace.notReadyReasons();
    if (this.ledger.degraded)
      reasons.push(`audit ledger cannot write: ${this.ledger.state().degradedReason ?? 'unknown'}`);
    const logProblem = this.checkpointer.state().logProblem;
    if (logProblem) reasons.push(`checkpoint log cannot be written: ${logProblem}`);
    return reasons;
  }

  /** Opens Redis connections and starts watching; does not listen on HTTP (see listen()). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.telemetry.start();
    const c = this.config;
    const prev = this.ledger.list({ afterSeq: Math.max(0, this.ledger.lastSeq - 1) })[0];
    // From the signed shutdown checkpoint, never from the type of the last record.
    const clean = this.startupCheck.cleanShutdown;
    const found = this.startupCheck.finding;
    if (found) {
      // Committed (and sealed) before anything else, then signed by the start checkpoint: the
      // break stays visible to every later verify, report and export.
      const a = this.startupCheck.anchor;
      this.ledger.commitWith(
        [
          {
            time: this.now(),
            source: 'system',
            type: 'ledger.discontinuity',
            attrs: {
              class: found.class,
              seq: found.seq,
              detail: found.detail,
              anchor: { source: a.source, n: a.n, seq: a.seq, chain: a.chain },
              head: { seq: this.ledger.lastSeq, chain: this.ledger.head().chain.toString('hex') },
              acceptedBy: 'serve --accept-discontinuity',
            },
          },
        ],
        () => undefined,
      );
    }
    // With several instances, this one's downtime was (or was not) covered by another owner:
    // the takeover decides, not a restart gap of its own (docs/ha.md).
    const restart =
      prev && prev.type !== 'ledger.genesis' && !this.coordinator
        ? this.#restore(prev, clean)
        : undefined;
    this.checkpointer.start(); // seals what a crashed run left unsealed
    this.auditLogs?.start(); // resumes after the last record the collector acknowledged
    this.archive?.start(); // at start, then hourly; before retention, which removes what is older
    this.retention.start(); // at start, then daily
    const growth = this.heapGrowth;
    if (growth) {
      this.#backlogTimer = setInterval(() => {
        growth.sample(this.#waiting(), performance.now());
        this.metrics.heapGrowthLifted.set(growth.lifted ? 1 : 0);
      }, BACKLOG_SAMPLE_MS);
      this.#backlogTimer.unref();
    }
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
                cleanShutdown: clean,
              }
            : null,
      },
    });
    // The policy in force, so a report needs no config file of the day (docs/compliance.md).
    this.ledger.append({
      time: started,
      source: 'system',
      type: POLICY_RECORD_TYPE,
      attrs: { ...policyAttrs(c) },
    });
    if (restart && !restart.restored) {
      // While tokenwatch was down nothing was observed: that window is a blind spot. Without
      // the previous inventory its changes are unknown (the baseline records what is there).
      this.recorder.gap({
        node: this.keyspace.scopeLabel,
        start: restart.since,
        end: started,
        reason: clean ? 'tokenwatch_stopped' : 'tokenwatch_crashed',
        changes: [],
        scanned: 0,
        durationMs: 0,
        unreconciled: restart.why,
      });
    }
    // Restores the correlator from the ledger before any new event can reach it.
    this.findings.start();
    // Restored: the watcher's first reconciliation is the downtime's gap, with what it found.
    if (this.coordinator) {
      // Leases first: the first owner's baseline is then recorded in its own ledger.
      void this.coordinator.start().finally(() => {
        if (!this.#stopped) this.keyspace.start(restart);
      });
    } else this.keyspace.start(restart);
    this.cacheHealth.start();
    this.indexes.start();
    this.providers.start();
    if (this.backgroundVerifier) {
      this.backgroundVerifier.start();
      void this.backgroundVerifier.done.then((r) => {
        if (r) this.#verifiedAt = this.now();
      });
    }
  }

  /**
   * The previous run's inventory from its ledger records, so the restart's blind spot is
   * reconciled like any other gap (issue #16 item 5).
   */
  #restore(
    prev: { time: number },
    clean: boolean,
  ): {
    since: number;
    reason: string;
    restored: boolean;
    why?: string;
  } {
    const since = prev.time;
    // Clean or not comes from the signed shutdown checkpoint, never from a record's type.
    const reason = clean ? 'tokenwatch_stopped' : 'tokenwatch_crashed';
    const target = this.keyspace.restoreTarget();
    if (!target) return { since, reason, restored: false, why: 'cluster: not restored' };
    const started = this.ledger.list({ type: 'system.started' }).at(-1);
    if (!started) return { since, reason, restored: false, why: 'no previous start' };
    const r = restoreInventory({
      ledger: this.ledger,
      inventory: this.inventory,
      ...target,
      fromSeq: started.seq,
      maxRecords: RESTORE_MAX_RECORDS,
    });
    if (!r.restored) {
      this.logger.warn({ why: r.why }, 'previous inventory not restored: plain baseline');
      return { since, reason, restored: false, why: r.why };
    }
    this.logger.info({ tokens: r.tokens, records: r.records }, 'previous inventory restored');
    return { since, reason, restored: true };
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
    await this.keyspace.settle();
  }

  /**
   * Keyspace notifications received and not applied yet, on every node. Not the ledger's queue:
   * a baseline SCAN fills that (up to a quarter of audit.maxPending) without a backlog of events,
   * and lifting the bound there only raised the peak (1 000 000 tokens: 672 against 468 MB RSS
   * at the end of the baseline, as fast).
   */
  #waiting(): number {
    let n = 0;
    for (const w of this.keyspace.watchers) n += w.waiting;
    return n;
  }

  /** The node watchers currently running. */
  get watchers(): NodeWatcher[] {
    return this.keyspace.watchers;
  }

  /** Drain, write system.stopped as the last record, close everything. Idempotent. */
  async stop(reason = 'shutdown'): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.indexes.close();
    await this.cacheHealth.close();
    // Graceful handover before the watchers stop: what was received is recorded, then released.
    await this.coordinator?.close();
    this.#ownership?.close();
    await this.keyspace.close();
    this.memoryRelease?.close();
    clearInterval(this.#backlogTimer);
    this.heapGrowth?.close();
    this.#coordinationClient?.disconnect();
    await this.findings.close();
    await this.http.close();
    this.admin.close();
    await this.providers.close();
    this.ledger.append({
      time: this.now(),
      source: 'system',
      type: 'system.stopped',
      attrs: { reason },
    });
    this.retention.close();
    this.archive?.close();
    await this.backgroundVerifier?.close();
    this.checkpointer.close(); // flushes, then signs the shutdown checkpoint
    await this.auditLogs?.close(); // exports up to system.stopped unless the collector is down
    this.ledger.close();
    await this.telemetry.shutdown(); // last: exports the spans and metrics of the shutdown
  }
}
