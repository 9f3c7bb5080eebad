import { z } from 'zod';
import { isTokenwatchError } from '../errors.js';
import { KeyTemplate } from '../keyspace/key-template.js';

/**
 * Cache-health options (issue #21): per-kind misses from `keymiss` notifications, per-kind hit
 * ratio from sampled MONITOR windows, and index keys whose members outlive their tokens.
 * Both metric sources are opt-in: they cost Redis throughput (see docs/benchmarks.md).
 */
export const cacheMetricsSchema = z
  .strictObject({
    /**
     * Add `m` to the managed notification flags and count `keymiss` notifications per token kind
     * (tokenwatch_token_lookups_total{result="miss"}, tokenwatch_token_misses_after_end_total).
     */
    keyMisses: z.boolean().default(false),
    /**
     * Observe the command stream with MONITOR for `windowMs` every `everySeconds` on a dedicated
     * connection (needs keyMisses). Absent: no sampling.
     */
    readSampling: z
      .strictObject({
        windowMs: z.number().int().min(100).max(60_000).default(1000),
        everySeconds: z.number().positive().max(86_400).default(300),
      })
      .optional(),
    /** Recently-ended tokens remembered for misses_after_end (fingerprint digests only). */
    recentlyEnded: z
      .strictObject({
        maxEntries: z.number().int().min(1).max(10_000_000).default(100_000),
        horizonSeconds: z
          .number()
          .positive()
          .max(30 * 86_400)
          .default(3600),
      })
      .prefault({}),
  })
  .superRefine((m, ctx) => {
    if (m.readSampling && !m.keyMisses) {
      ctx.addIssue({
        code: 'custom',
        path: ['readSampling'],
        message: 'readSampling needs keyMisses: true (misses come from keymiss notifications)',
      });
    }
    if (m.readSampling && m.readSampling.windowMs >= m.readSampling.everySeconds * 1000) {
      ctx.addIssue({
        code: 'custom',
        path: ['readSampling', 'windowMs'],
        message: 'windowMs must be shorter than everySeconds',
      });
    }
  });

const indexName = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,39}$/, 'must be lower_snake_case, 1-40 chars, starting with a letter');

/**
 * An index rule: a key template for a set or hash whose members (set) or fields (hash) are the
 * ids of tokens of `kind` (e.g. Spring Session's principal index, a user's refresh tokens).
 */
export const indexRuleSchema = z
  .strictObject({
    /** Index name, used as metric label: keep it to a handful of values. */
    name: indexName,
    /** Key template of the index key, e.g. `user:{sub}:sessions`. */
    key: z.string().min(3).max(512),
    /** Token kind the members refer to (a `tokens[].kind`). */
    kind: z.string().min(1),
    /**
     * How a member becomes the token's key: the template of that kind with `{member}` standing
     * for the member, e.g. `session:{member}`. Default: the kind's first token rule key, with
     * the member as its secret placeholder.
     */
    memberKey: z.string().min(3).max(512).optional(),
  })
  .superRefine((rule, ctx) => {
    try {
      new KeyTemplate(rule.key);
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        path: ['key'],
        message: isTokenwatchError(err) ? err.message : String(err),
      });
    }
    if (rule.memberKey !== undefined && !rule.memberKey.includes('{member}')) {
      ctx.addIssue({ code: 'custom', path: ['memberKey'], message: 'must contain {member}' });
    }
  });

export const indexesSchema = z
  .strictObject({
    rules: z.array(indexRuleSchema).default([]),
    /** How often every index is reconciled against the inventory (and after each gap). */
    intervalSeconds: z.number().positive().max(86_400).default(300),
    /** Fingerprints of orphaned members kept per index in a finding (counts are exact). */
    maxFingerprints: z.number().int().min(0).max(1000).default(20),
  })
  .prefault({});

export type CacheMetricsConfig = z.infer<typeof cacheMetricsSchema>;
export type IndexRuleConfig = z.infer<typeof indexRuleSchema>;
export type IndexesConfig = z.infer<typeof indexesSchema>;
