import { z } from 'zod';

/**
 * `correlate:` thresholds of the correlation engine. The engine validates every key itself
 * (src/correlate/options.ts, errors name `correlate.<key>`); here it is an open mapping so the
 * engine stays the one place that knows its options. Kinds, join keys, maxTtlSeconds and
 * requireProviderEvent come from the token rules.
 */
export const correlateSchema = z.record(z.string(), z.unknown());

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
