import type { Config } from '../config/schema.js';
import type { CorrelatorOptions, KindRule } from '../correlate/index.js';
import { resolveCorrelatorOptions } from '../correlate/index.js';

/**
 * Correlator options from the config: `correlate:` thresholds plus, per token kind, the join
 * keys, maxTtlSeconds and requireProviderEvent of its (first) token rule.
 */
export function correlatorOptionsFrom(
  config: Pick<Config, 'tokens' | 'correlate'>,
): CorrelatorOptions {
  const kinds = new Map<string, KindRule>();
  for (const rule of config.tokens) {
    if (kinds.has(rule.kind)) continue;
    kinds.set(rule.kind, {
      kind: rule.kind,
      joins: rule.joins,
      maxTtlSeconds: rule.maxTtlSeconds,
      requireProviderEvent: rule.requireProviderEvent,
    });
  }
  const correlate = config.correlate as CorrelatorOptions;
  return {
    // A tokenwatch default: 200k tracked tokens (~220 MB) rather than the engine's 2M.
    ...correlate,
    limits: { maxTrackedTokens: 200_000, ...(correlate.limits ?? {}) },
    kinds: [...kinds.values()],
  };
}

/** Throws ConfigError (paths `correlate.<key>`) when the thresholds are invalid. */
export function validateCorrelatorConfig(config: Pick<Config, 'tokens' | 'correlate'>): void {
  resolveCorrelatorOptions(correlatorOptionsFrom(config));
}
