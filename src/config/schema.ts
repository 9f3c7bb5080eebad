import { z } from 'zod';
import { alertsSchema, correlateSchema } from './correlate-schema.js';
import { KeyTemplate } from '../keyspace/key-template.js';
import { MARKER_TAG_CHARS } from '../keyspace/marker-auth.js';
import { isTokenwatchError } from '../errors.js';
import { providersSchema } from './providers-schema.js';
import { otelSchema } from './otel-schema.js';
import { adminSchema } from './admin-schema.js';
import { cacheMetricsSchema, indexesSchema } from './cache-health-schema.js';
import { coordinationSchema } from './coordination-schema.js';

/**
 * The configuration schema. Every option has a default that works on one machine; the
 * documented defaults live in config/tokenwatch.yaml and docs in config/README.md.
 */

const kind = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,39}$/, 'must be lower_snake_case, 1-40 chars, starting with a letter');

export const tokenRuleSchema = z
  .strictObject({
    /** Token kind, used as a metric label: keep it to a handful of values. */
    kind,
    /** Key template: literal text and {name} placeholders. */
    key: z.string().min(3).max(512),
    /** Policy: TTLs above this are a finding (ttl_exceeds_policy). */
    maxTtlSeconds: z.number().int().positive().optional(),
    /** Extra placeholder names to treat as secrets (token, jti and sid always are). */
    secret: z.array(z.string()).default([]),
    /** Require a matching provider issuance event for every write (unattributed_token). */
    requireProviderEvent: z.boolean().default(false),
    /** Which placeholder carries which correlation join key. */
    joins: z
      .strictObject({
        tokenId: z.string().optional(),
        sessionId: z.string().optional(),
        subject: z.string().optional(),
        clientId: z.string().optional(),
      })
      .optional(),
  })
  .superRefine((rule, ctx) => {
    let tpl: KeyTemplate;
    try {
      tpl = new KeyTemplate(rule.key);
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        path: ['key'],
        message: isTokenwatchError(err) ? err.message : String(err),
      });
      return;
    }
    for (const [i, name] of rule.secret.entries()) {
      if (!tpl.placeholders.includes(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['secret', i],
          message: `{${name}} is not a placeholder of ${rule.key}`,
        });
      }
    }
    for (const [join, name] of Object.entries(rule.joins ?? {})) {
      if (name !== undefined && !tpl.placeholders.includes(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['joins', join],
          message: `{${name}} is not a placeholder of ${rule.key}`,
        });
      }
    }
  });

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port');

const hmacKeySchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, 'must be 1-32 of A-Z a-z 0-9 _ . -'),
  /** The key itself (>= 16 bytes once decoded), or a file holding it. */
  key: z.string().min(16).optional(),
  file: z.string().optional(),
});

export const configSchema = z
  .strictObject({
    server: z
      .strictObject({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(9464),
        /** Largest accepted request body, bytes. */
        bodyLimit: z
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .default(1024 * 1024),
        /**
         * Time limits of every HTTP request (webhooks, admin API, /metrics): a slow or stalled
         * client is cut off (408 or a closed socket) instead of holding resources.
         */
        timeouts: z
          .strictObject({
            /** Whole request (headers and body) received within this, seconds. */
            requestSeconds: z.number().positive().max(3600).default(30),
            /** Request headers received within this, seconds (at most requestSeconds). */
            headersSeconds: z.number().positive().max(3600).default(10),
            /** Idle keep-alive connections closed after this, seconds. */
            keepAliveSeconds: z.number().positive().max(3600).default(5),
            /** Any connection without traffic in either direction closed after this, seconds. */
            idleSeconds: z.number().positive().max(3600).default(60),
          })
          .prefault({})
          .superRefine((t, ctx) => {
            if (t.headersSeconds > t.requestSeconds)
              ctx.addIssue({
                code: 'custom',
                path: ['headersSeconds'],
                message: 'must not exceed requestSeconds',
              });
          }),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info'),
      })
      .prefault({}),
    redis: z
      .strictObject({
        url: z
          .string()
          .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
          .default('redis://127.0.0.1:6379'),
        db: z.number().int().min(0).max(15).default(0),
        /** Add missing notify-keyspace-events flags with CONFIG SET (merged, never dropped). */
        configureNotifications: z.boolean().default(true),
        /** How often the notification config is re-read (a restarted Redis forgets it). */
        recheckIntervalSeconds: z.number().positive().max(3600).default(60),
        /** INFO poll interval for hit/miss counters and redis_up. */
        infoIntervalSeconds: z.number().positive().max(3600).default(15),
        /** How often INFO commandstats is read to detect FLUSHDB/FLUSHALL (no per-key events). */
        flushCheckIntervalSeconds: z.number().positive().max(3600).default(1),
        /**
         * An `expired` notification (or a token that vanished while blind) this long after its
         * due time is expiry backlog (Redis deleting long-expired keys lazily, e.g. because a SCAN
         * touched them), counted apart and marked `backlog`, not churn.
         */
        expiryBacklogToleranceSeconds: z.number().min(0).max(3600).default(2),
        /** SCAN COUNT hint during baseline and reconciliation. */
        scanCount: z.number().int().min(10).max(100_000).default(1000),
        /**
         * Most keyspace notifications one node's watcher holds received but not yet applied.
         * Past it (Redis delivers faster than they are applied, for long) what waits is dropped
         * and reconciled by SCAN as a blind spot (`backlog_overflow`): memory stays bounded.
         */
        maxPendingNotifications: z.number().int().min(1000).max(100_000_000).default(1_000_000),
        /** Keys longer than this are counted as unmatched without matching (hostile input). */
        maxKeyBytes: z
          .number()
          .int()
          .min(64)
          .max(512 * 1024 * 1024)
          .default(64 * 1024),
        /** Redis Cluster: seed nodes; masters are discovered and each gets its own subscriber. */
        cluster: z
          .strictObject({
            nodes: z.array(hostPort).min(1, 'at least one seed node'),
            /** How often the topology (masters, failovers, resharding) is re-read. */
            refreshIntervalSeconds: z.number().positive().max(300).default(2),
          })
          .optional(),
        /** Redis Sentinel: follow the named master through failovers. */
        sentinel: z
          .strictObject({
            name: z.string().min(1),
            sentinels: z.array(hostPort).min(1, 'at least one sentinel'),
            /** Password of the sentinels themselves, when they require one. */
            password: z.string().optional(),
          })
          .optional(),
        /** TLS (also implied by rediss://). Files are read at start-up. */
        tls: z
          .strictObject({
            ca: z.string().optional(),
            cert: z.string().optional(),
            key: z.string().optional(),
            servername: z.string().optional(),
            rejectUnauthorized: z.boolean().default(true),
          })
          .optional(),
        /** ACL user and password (override those in the URL). */
        username: z.string().optional(),
        password: z.string().optional(),
      })
      .prefault({})
      .superRefine((r, ctx) => {
        if (r.cluster && r.sentinel) {
          ctx.addIssue({
            code: 'custom',
            path: ['sentinel'],
            message: 'use either redis.cluster or redis.sentinel, not both',
          });
        }
      }),
    tokens: z.array(tokenRuleSchema).min(1, 'at least one token rule is needed'),
    audit: z
      .strictObject({
        /** SQLite file of the audit ledger. */
        path: z.string().min(1).default('./data/tokenwatch.db'),
        /** HMAC keys for fingerprints; the first one writes, the others stay resolvable. */
        hmacKeys: z.array(hmacKeySchema).default([]),
        /** Records per transaction at most. */
        batchSize: z.number().int().min(1).max(100_000).default(1000),
        /**
         * Inline writer (writerThread false): longest a record waits before its batch commits, ms.
         * The writer thread needs no timer: it commits as soon as it is idle (group commit).
         * Formerly `flushIntervalMs` (still read, with a warning: src/config/deprecated-keys.ts).
         */
        maxBatchDelayMs: z.number().int().min(1).max(10_000).default(25),
        /**
         * Commit on a writer thread: a worker chains, INSERTs, seals and fsyncs, and encodes the
         * records while the event loop is saturated and it has room (commits never block the
         * event loop). false: commit inline.
         */
        writerThread: z.boolean().default(true),
        /** Most records held in memory while the ledger cannot write (then: dropped + gap). */
        maxPending: z.number().int().min(1000).default(200_000),
        /** Ed25519 private key (PEM) signing checkpoints; unset: generated beside the database. */
        signingKey: z.string().min(1).optional(),
        /** JSON-lines file every checkpoint is appended to (fsync'd), on write-once storage. */
        checkpointLog: z.string().min(1).optional(),
        /** Sign a checkpoint after this many records. */
        checkpointEveryRecords: z.number().int().min(1).max(10_000_000).default(10_000),
        /** Sign a checkpoint this often when records arrived, seconds. */
        checkpointIntervalSeconds: z.number().positive().max(86_400).default(60),
        /** Sign one this often even when none did (provable silence), seconds. */
        checkpointHeartbeatSeconds: z.number().positive().max(86_400).default(300),
        /** Sealed segments older than this are pruned (whole segments only), days. */
        retentionDays: z.number().int().min(1).max(36_500).default(400),
        /** A clock reading earlier than the last by more than this is flagged (audit.clock_skew), ms. */
        clockSkewToleranceMs: z.number().int().min(0).max(3_600_000).default(1000),
        /**
         * Moves sealed segments older than `afterDays` to compressed, verifiable files
         * (docs/ledger-format.md#archive-files). `afterDays` null (default): off. `dir` unset:
         * `archive/` beside the database.
         */
        archive: z
          .strictObject({
            afterDays: z.number().int().min(1).max(36_500).nullable().default(null),
            dir: z.string().min(1).optional(),
          })
          .prefault({}),
      })
      .superRefine((a, ctx) => {
        // Archiving at or after retention would archive what the purge is about to remove.
        if (a.archive.afterDays !== null && a.archive.afterDays >= a.retentionDays) {
          ctx.addIssue({
            code: 'custom',
            path: ['archive', 'afterDays'],
            message: `must be less than audit.retentionDays (${a.retentionDays})`,
          });
        }
      })
      .prefault({}),
    /** Correlation thresholds (src/config/correlate-schema.ts; defaults: src/correlate/options.ts). */
    correlate: correlateSchema.prefault({}),
    /** Alert delivery of findings. */
    alerts: alertsSchema.prefault({}),
    /** Identity-provider webhooks and pollers (src/config/providers-schema.ts). */
    providers: providersSchema.prefault({}),
    /** OpenTelemetry traces and OTLP metrics export (src/config/otel-schema.ts). */
    otel: otelSchema.prefault({}),
    /** Admin API authentication; absent: loopback clients only (src/config/admin-schema.ts). */
    admin: adminSchema.optional(),
    /** Opt-in cache-health metrics: keymiss counts, read sampling (src/config/cache-health-schema.ts). */
    metrics: cacheMetricsSchema.prefault({}),
    /** Index keys whose members are token ids, reconciled for orphans (cache-health-schema.ts). */
    indexes: indexesSchema,
    /** The Node process itself (src/runtime/heap-growth.ts). */
    runtime: z
      .strictObject({
        /**
         * After each full GC, V8 lets the heap grow to (1 + this/100) x what survived before the
         * next one. V8's own choice (null) lets a busy service's heap, and with it RSS, reach 2-4x
         * its live data: RSS then follows peak garbage, not tokens (docs/benchmarks.md, memory).
         */
        heapGrowthPercent: z.number().int().min(10).max(400).nullable().default(50),
        /**
         * Keyspace notifications received and not yet applied (all nodes) at or above which that
         * bound lifts until the backlog drained, then comes back with one memory-reducing GC
         * (src/runtime/backlog-heap-growth.ts); null: never lifted.
         */
        heapGrowthLiftAbove: z.number().int().min(1000).nullable().default(20_000),
        /**
         * After a reconciliation (baseline or gap) that SCANned at least this many keys, one
         * memory-reducing GC hands the SCAN's garbage back to the OS (src/runtime/memory-release.ts);
         * null: never.
         */
        releaseMemoryAfterScan: z.number().int().min(1000).nullable().default(100_000),
      })
      .prefault({}),
    /** Several instances: leases, hot standby, takeover (src/config/coordination-schema.ts). */
    coordination: coordinationSchema.prefault({}),
  })
  .superRefine((c, ctx) => {
    if (!c.coordination.enabled) return;
    // Marker tags and fingerprints must agree across instances: a key generated beside each
    // instance's database would differ per instance, and every instance would refuse the
    // others' markers (docs/ha.md, threat model).
    if (c.audit.hmacKeys.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['audit', 'hmacKeys'],
        message:
          'coordination.enabled needs the same audit.hmacKeys (TOKENWATCH_HMAC_KEY) on every instance: stream markers are authenticated with them',
      });
    }
    // Marker keys are written on the watched nodes: a token rule that matched them would
    // record the coordination's own writes as tokens.
    const p = c.coordination.keyPrefix;
    const mac = '0'.repeat(MARKER_TAG_CHARS);
    const samples = [`${p}marker:1:1:${mac}`, `${p}marker:{x}:1:1:${mac}`];
    for (const [i, rule] of c.tokens.entries()) {
      let tpl: KeyTemplate;
      try {
        tpl = new KeyTemplate(rule.key);
      } catch {
        continue; // reported by the rule's own check
      }
      if (samples.some((k) => tpl.match(k) !== undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: ['tokens', i, 'key'],
          message: `matches the coordination marker keys (${p}marker:...): change the rule or coordination.keyPrefix`,
        });
      }
    }
  });

export type Config = z.infer<typeof configSchema>;
export type TokenRuleConfig = z.infer<typeof tokenRuleSchema>;
