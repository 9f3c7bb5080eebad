import { z } from 'zod';
import { FINDING_RULES } from '../domain/finding.js';
import { PROVIDER_EVENT_TYPES } from '../domain/provider-event.js';
import { DEFAULT_CHURN, DEFAULT_LIMITS } from '../correlate/options.js';

/*
 * `correlate:` thresholds of the correlation engine. This schema is the one validation of the
 * section (errors name `correlate.<key>`); the defaults are declared once, by the engine
 * (src/correlate/options.ts), which fills every key left out. Kinds, join keys, maxTtlSeconds
 * and requireProviderEvent come from the token rules, not from here.
 */

const seconds = z.number().min(0);
const providerEventTypes = z.array(z.enum(PROVIDER_EVENT_TYPES));
const severity = z.enum(['info', 'low', 'medium', 'high', 'critical']);
const criterion = z.enum(['CC6.1', 'CC6.2', 'CC6.3', 'CC7.2', 'CC7.3', 'CC7.4', 'A1.2']);

const ruleSettingsSchema = z.strictObject({
  enabled: z.boolean().optional(),
  severity: severity.optional(),
  /** SOC 2 criteria the finding evidences. */
  criteria: z.array(criterion).optional(),
});

const churnSchema = z
  .strictObject({
    warmupBuckets: z.number().int().min(0).optional(),
    baselineBuckets: z.number().int().min(10).optional(),
    minRatePerSecond: z.number().min(0).optional(),
    openSigmas: z.number().min(0).optional(),
    resolveSigmas: z.number().min(0).optional(),
    resolveAfterBuckets: z.number().int().min(1).optional(),
    learnWhileOpen: z.number().min(0).max(1).optional(),
    /** Seconds whose shortfall a later excess is credited against (a stall's clump); 0: off. */
    carryBuckets: z.number().int().min(0).max(60).optional(),
    /** The former EWMA smoothing factor: named so old configs get a message, not a silent ignore. */
    alpha: z
      .never({
        error:
          'removed: the churn baseline is a rolling median/MAD, not an EWMA; set churn.baselineBuckets',
      })
      .optional(),
  })
  .superRefine((c, ctx) => {
    const warmup = c.warmupBuckets ?? DEFAULT_CHURN.warmupBuckets;
    const baseline = c.baselineBuckets ?? DEFAULT_CHURN.baselineBuckets;
    if (warmup > baseline)
      ctx.addIssue({
        code: 'custom',
        path: ['warmupBuckets'],
        message: 'must not exceed churn.baselineBuckets',
      });
    const open = c.openSigmas ?? DEFAULT_CHURN.openSigmas;
    if ((c.resolveSigmas ?? DEFAULT_CHURN.resolveSigmas) > open)
      ctx.addIssue({
        code: 'custom',
        path: ['resolveSigmas'],
        message: 'must not exceed churn.openSigmas (hysteresis)',
      });
  });

/** Upper bound of every `correlate.limits` entry. */
export const MAX_LIMIT = 10_000_000;

const limitsSchema = z.strictObject(
  Object.fromEntries(
    // At most 10 000 000 each: the live view keys its (subject, client) index by two interned
    // codes in one safe integer (src/correlate/token-store.ts, pairKey), exact below 2^26 codes,
    // i.e. up to ~16 million tracked tokens with four join values each.
    Object.keys(DEFAULT_LIMITS).map((key) => [
      key,
      z.number().int().min(1).max(MAX_LIMIT).optional(),
    ]),
  ) as Record<keyof typeof DEFAULT_LIMITS, z.ZodOptional<z.ZodNumber>>,
);

export const correlateSchema = z.strictObject({
  /** Matching tokens must leave Redis within this after a revocation, seconds. */
  revocationSlaSeconds: seconds.optional(),
  /** Provider event types that revoke. */
  revocationEventTypes: providerEventTypes.optional(),
  /** Out-of-order window: tokens gone up to this long before a revocation count as propagated. */
  revocationLookbackSeconds: seconds.optional(),
  /** Clock-skew allowance after a revocation. */
  revocationGraceSeconds: seconds.optional(),
  /** How long revoked ids, sessions and subjects are remembered (write_after_revocation). */
  revocationMemorySeconds: seconds.optional(),
  /** Revocations after which any write for the subject is suspicious. */
  writeAfterRevocationSubjectTypes: providerEventTypes.optional(),
  /** Issuance must occur within ± this of a write (unattributed_token). */
  attributionWindowSeconds: seconds.optional(),
  /** TTL above maxTtlSeconds by at most this is tolerated. */
  ttlToleranceSeconds: seconds.optional(),
  refreshReuseSlaSeconds: seconds.optional(),
  rotationSlaSeconds: seconds.optional(),
  rotationRequireSuccessor: z.boolean().optional(),
  /** Evictions closer than this are one burst. */
  evictionBurstGapSeconds: z.number().positive().optional(),
  evictionBurstMinCount: z.number().int().min(1).optional(),
  /** The correlator's state goes to the ledger this often, seconds. */
  snapshotIntervalSeconds: z.number().min(1).optional(),
  /**
   * An interval snapshot is written only once this many records were correlated since the last
   * one (bounds a crash's replay and the snapshot bytes per day). Default 100 000.
   */
  snapshotMinRecords: z.number().int().min(1).optional(),
  /** Per finding rule `{enabled, severity, criteria}` overrides. */
  rules: z.partialRecord(z.enum(FINDING_RULES), ruleSettingsSchema).optional(),
  churn: churnSchema.optional(),
  limits: limitsSchema.optional(),
});

/** `alerts:` where findings are delivered. */
export const alertsSchema = z.strictObject({
  /** Alertmanager base URL; findings are POSTed to `<url>/api/v2/alerts`. */
  alertmanagerUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Generic JSON webhook receiving every finding state change. */
  webhookUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Extra headers for the webhook (e.g. authorization). */
  webhookHeaders: z.record(z.string(), z.string()).default({}),
  /** Open findings are re-sent this often so Alertmanager does not resolve them on its own. */
  resendIntervalSeconds: z.number().positive().max(3600).default(60),
  /** Deliveries waiting for retry at most; beyond it the oldest are dropped and counted. */
  maxQueue: z.number().int().min(10).max(1_000_000).default(10_000),
  /** Per-request timeout, ms. */
  timeoutMs: z.number().int().min(100).max(60_000).default(5000),
  /** Attempts per delivery before it is given up (and counted). */
  maxAttempts: z.number().int().min(1).max(100).default(8),
});
